"""The transitions of a turn: user input -> model call -> each tool call checked, approved,
run -> model call again, until a reply without tool calls, the step budget, a failure
for good, or an interrupt. Every tool call gets exactly one tool message, in order.
"""

from __future__ import annotations

import attrs

from nano_code.kernel import policy
from nano_code.kernel.actions import (
    Action,
    AskApproval,
    CheckToolCall,
    RetryModel,
    RunTool,
    ShowText,
    TextKind,
    TurnEnd,
)
from nano_code.kernel.compaction_steps import learn_context_window, on_overflow, start_compaction
from nano_code.kernel.errors import DriverMisuseError
from nano_code.kernel.events import (
    ApprovalDecision,
    ClearConversation,
    Event,
    FailureKind,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolCallFacts,
    ToolResult,
    UserInput,
    Verdict,
)
from nano_code.kernel.policy import Approval
from nano_code.kernel.prompt_cache import refuses_markers
from nano_code.kernel.request import clean_text
from nano_code.kernel.state import (
    AfterSummary,
    PendingCall,
    Phase,
    State,
    Transition,
    answer,
    call_model,
    count_usage,
    end_turn,
    new_turn,
    request_body,
)
from nano_code.kernel.types import (
    AssistantMessage,
    Message,
    PromptCache,
    SystemMessage,
    ToolCall,
    UserMessage,
)

INTERRUPTED_CALL = "Not run: the user interrupted before this call finished."


def on_user_input(state: State, event: UserInput) -> Transition:
    return _next_step(new_turn(state, history=(*state.history, UserMessage(clean_text(event.text)))), [])


def used_call_ids(history: tuple[Message, ...]) -> set[str]:
    return {call.id for m in history if isinstance(m, AssistantMessage) for call in m.tool_calls}


def _unique_id(raw: str, taken: set[str], position: int) -> str:
    """The server's id when usable, else a fresh, deterministic one of exactly 9
    alphanumerics (Mistral rejects anything else in replayed history, QUIRKS A-5)."""
    if raw and raw not in taken and len(raw) <= 256:
        return raw
    number = position
    while (candidate := f"nc{number % 10_000_000:07d}") in taken:
        number += 1
    return candidate


def on_model_reply(state: State, event: ModelReply) -> Transition:
    due = (
        event.usage is not None
        and event.usage.prompt_tokens >= state.config.compact_at * state.context_window
    )
    state = attrs.evolve(
        count_usage(state, event.usage),
        overflow_compacted=False,
        compact_due=state.compact_due or (due and state.config.summary_prompt is not None),
    )
    actions: list[Action] = []
    if not state.config.stream and event.content:
        actions.append(ShowText(event.content, TextKind.ASSISTANT))
    if not event.tool_calls:
        if not event.content.strip() and not event.reasoning.strip():
            actions.append(ShowText(_empty_reply_notice(event.finish_reason), TextKind.WARNING))
        message = AssistantMessage(content=event.content, reasoning=event.reasoning or None)
        state = attrs.evolve(state, history=(*state.history, message), malformed_streak=0)
        detail = "the reply was cut off at the token limit" if event.finish_reason == "length" else ""
        return end_turn(state, TurnEnd.COMPLETED, detail, actions)

    taken = set(state.call_ids) if state.call_ids else used_call_ids(state.history)
    pending: list[PendingCall] = []
    base = len(state.history) * 100
    for position, raw in enumerate(event.tool_calls):
        call_id = _unique_id(raw.id, taken, base + position)
        taken.add(call_id)
        spec = state.config.tool(raw.name)
        parsed = policy.parse_arguments(spec, raw.name, raw.arguments)
        if isinstance(parsed, str):
            # Unparseable arguments are never sent back (QUIRKS B-11); the tool message explains.
            call = ToolCall(id=call_id, name=raw.name or "unnamed", arguments="{}")
            pending.append(PendingCall(call=call, problem=parsed))
        else:
            arguments_json = raw.arguments if raw.arguments and raw.arguments.strip() else "{}"
            call = ToolCall(id=call_id, name=raw.name, arguments=arguments_json)
            pending.append(PendingCall(call=call, arguments=parsed))
    all_unusable = all(p.problem is not None for p in pending)
    message = AssistantMessage(
        content=event.content or None,
        tool_calls=tuple(p.call for p in pending),
        reasoning=event.reasoning or None,
    )
    state = attrs.evolve(
        state,
        history=(*state.history, message),
        call_ids=frozenset(taken),
        pending=tuple(pending),
        malformed_streak=state.malformed_streak + 1 if all_unusable else 0,
    )
    state, more = _advance(state)
    return state, actions + more


def _empty_reply_notice(finish_reason: str | None) -> str:
    """The warning for a reply with nothing in it (else the turn would end in silence)."""
    shown = " ".join(clean_text(finish_reason or "").split())
    if not shown:
        return "the model sent an empty reply (no finish_reason)"
    shown = shown if len(shown) <= 40 else shown[:39] + "\u2026"
    return f"the model sent an empty reply (finish_reason: {shown})"


def _advance(state: State) -> Transition:
    """Work through pending calls until one needs the driver, then ask for it."""
    actions: list[Action] = []
    while state.pending:
        head = state.pending[0]
        if head.problem is not None or head.arguments is None:
            state = answer(state, head.call.id, head.problem or "Error: unusable call")
            state = attrs.evolve(state, pending=state.pending[1:])
            continue
        spec = state.config.tool(head.call.name)
        assert spec is not None  # parse_arguments refused unknown tools
        decision = policy.approval_requirement(
            spec, state.config.approval, state.always_approved, None, state.config.sandbox
        )
        if decision is Approval.NEEDS_FACTS:
            path = head.arguments.get(spec.path_parameter or "")
            if isinstance(path, str):
                state = attrs.evolve(state, phase=Phase.AWAITING_TOOL_FACTS)
                return state, [*actions, CheckToolCall(call=head.call, path=path)]
            # No string path to check: a write asks, a read runs.
            decision = Approval.ASK if spec.mutates else Approval.RUN
        return _decide(state, decision, actions)
    return _after_tools(state, actions)


def _decide(state: State, decision: Approval, actions: list[Action]) -> Transition:
    head = state.pending[0]
    assert head.arguments is not None
    if decision is Approval.RUN:
        state = attrs.evolve(state, phase=Phase.AWAITING_TOOL_RESULT)
        return state, [*actions, RunTool(call=head.call, arguments=head.arguments)]
    spec = state.config.tool(head.call.name)
    reason = (
        "it can change files or run commands" if spec and spec.mutates else "it reaches outside the workspace"
    )
    state = attrs.evolve(state, phase=Phase.AWAITING_APPROVAL)
    return state, [*actions, AskApproval(call=head.call, arguments=head.arguments, reason=reason)]


def _after_tools(state: State, actions: list[Action]) -> Transition:
    if state.malformed_streak >= state.config.max_consecutive_malformed:
        detail = f"the model sent {state.malformed_streak} unusable replies in a row"
        return end_turn(state, TurnEnd.FAILED, detail, actions)
    if state.steps_this_turn >= state.config.max_steps_per_turn:
        detail = f"stopped after {state.steps_this_turn} model calls (the step budget)"
        return end_turn(state, TurnEnd.STEP_BUDGET, detail, actions)
    return _next_step(state, actions)


def _next_step(state: State, actions: list[Action]) -> Transition:
    """The turn's next model call, after a compaction when the last reply made one due."""
    if state.compact_due:
        state = attrs.evolve(state, compact_due=False)
        notice = (
            f"the conversation is near the context window ({state.config.compact_at:.0%} of "
            f"{state.context_window:,} tokens): summarising its older part"
        )
        started = start_compaction(state, AfterSummary.NEXT_STEP, [*actions, ShowText(notice)])
        if started is not None:
            return started
        warning = (
            "the conversation is near the context window, but nothing in it is old enough to compact yet"
        )
        actions = [*actions, ShowText(warning, TextKind.WARNING)]
    state, more = call_model(state)
    return state, actions + more


def _require_head(state: State, call_id: str) -> PendingCall:
    if not state.pending or state.pending[0].call.id != call_id:
        expected = state.pending[0].call.id if state.pending else "none"
        raise DriverMisuseError(f"answer for call {call_id!r}, but the pending call is {expected!r}")
    return state.pending[0]


def on_tool_facts(state: State, event: ToolCallFacts) -> Transition:
    head = _require_head(state, event.call_id)
    spec = state.config.tool(head.call.name)
    assert spec is not None
    decision = policy.approval_requirement(
        spec, state.config.approval, state.always_approved, event.inside_workspace, state.config.sandbox
    )
    return _decide(state, decision, [])


def on_approval(state: State, event: ApprovalDecision) -> Transition:
    head = _require_head(state, event.call_id)
    if event.verdict is Verdict.DENY:
        why = f" ({event.reason})" if event.reason else ""
        state = answer(state, head.call.id, f"Not run: the user did not approve this call{why}.")
        state = attrs.evolve(state, pending=state.pending[1:])
        return _advance(state)
    if event.verdict is Verdict.ALWAYS:
        state = attrs.evolve(state, always_approved=state.always_approved | {head.call.name})
    return _decide(state, Approval.RUN, [])


def on_tool_result(state: State, event: ToolResult) -> Transition:
    head = _require_head(state, event.call_id)
    content = policy.format_tool_output(
        clean_text(event.output), event.exit_status, state.config.max_tool_output_chars
    )
    if event.is_error and not content.startswith("Error"):
        content = f"Error: {content}"
    state = answer(state, head.call.id, content)
    state = attrs.evolve(state, pending=state.pending[1:])
    return _advance(state)


MARKERS_REFUSED = (
    "the server refused the prompt-cache markers: sending this step again without them, "
    "and no markers for the rest of the session"
)


def on_model_failure(state: State, event: ModelFailure) -> Transition:
    if refuses_markers(state.config, event):
        config = attrs.evolve(state.config, prompt_cache=PromptCache.OFF)
        state = attrs.evolve(state, config=config, attempt=state.attempt + 1)
        retry = RetryModel(0.0, request_body(state), state.steps_this_turn, state.attempt, event)
        return state, [ShowText(MARKERS_REFUSED, TextKind.WARNING), retry]
    if event.kind is FailureKind.CONTEXT_OVERFLOW:
        state = learn_context_window(state, event)
        if state.config.summary_prompt is not None:
            return on_overflow(state, event)
    malformed = event.kind is FailureKind.MALFORMED
    if malformed:
        state = attrs.evolve(state, malformed_streak=state.malformed_streak + 1)
    delay = policy.retry_delay(event, state.attempt, state.config.retry)
    if delay is None or (malformed and state.malformed_streak >= state.config.max_consecutive_malformed):
        reason = policy.give_up_reason(event, state.attempt, state.config.retry)
        return end_turn(state, TurnEnd.FAILED, reason, [])
    state = attrs.evolve(state, attempt=state.attempt + 1)
    notice = ShowText(
        f"{event.message} -- retrying in {delay:.1f}s "
        f"(attempt {state.attempt} of {state.config.retry.max_attempts})",
        TextKind.WARNING,
    )
    return state, [
        notice,
        RetryModel(delay, request_body(state), state.steps_this_turn, state.attempt, event),
    ]


def on_clear(state: State, _event: ClearConversation) -> Transition:
    first = state.history[0] if state.history else None
    system = first if isinstance(first, SystemMessage) else SystemMessage(state.config.system_prompt)
    state = State(  # all else starts afresh
        config=state.config,
        history=(system,),
        always_approved=state.always_approved,
        session_usage=state.session_usage,
        learned_context_tokens=state.learned_context_tokens,
    )
    return end_turn(state, TurnEnd.COMPLETED, "", [ShowText("cleared the conversation: starting afresh")])


def on_interrupt(state: State, _event: Interrupt) -> Transition:
    for pending in state.pending:
        state = answer(state, pending.call.id, INTERRUPTED_CALL)
    state = attrs.evolve(state, pending=())
    return end_turn(state, TurnEnd.INTERRUPTED, "interrupted by the user", [])


def ignore(state: State, _event: Event) -> Transition:
    return state, []
