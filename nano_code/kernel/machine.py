"""The agent's state machine: the only place a conversation changes.

Theory of operation. `transition(state, event)` returns the next state and the
actions the driver must perform. It is a pure function: same inputs, same
outputs, no I/O, no clock, no randomness -- which is what lets a recorded
session be replayed exactly and lets hypothesis explore it.

Everything that affects which events are allowed lives in this file:
`PHASE_TABLE` maps each phase to the events it accepts and the phases each
may lead to. The README's diagram is generated from that table
(`phase_diagram`), and a test keeps the two in sync.

A turn goes: user input -> call the model -> (for each requested tool call:
check its path / ask approval / run it) -> call the model again ... until the
model answers without tool calls, the step budget runs out, the model fails
for good, or the user interrupts. Whatever ends a turn, the history stays a
valid Chat Completions conversation: every tool call is answered by exactly
one tool message before anything else is appended.

Compaction keeps a long conversation inside the model's context window. When
a reply's prompt tokens pass the threshold, the next model call waits: the
kernel first asks the model (a `CallModel` whose purpose is SUMMARY, phase
AWAITING_SUMMARY) to summarise the older part of the history, replaces that
part with the summary, and then makes the call. When the server says the
context overflowed, it does the same and sends the step again, once. The
user can ask for it (`CompactRequest`) between turns. What to cut and how to
ask is decided in `compaction`.

Untrusted input (everything inside ModelReply / ModelFailure) never raises.
A driver that feeds an event the phase does not accept, or answers a call
that is not the pending one, gets `DriverMisuseError`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from attrs import validators as v

from nano_code.kernel import compaction
from nano_code.kernel.actions import (
    Action,
    AskApproval,
    CallModel,
    CallPurpose,
    CheckToolCall,
    EndTurn,
    RetryModel,
    RunTool,
    ShowText,
    TextKind,
    TurnEnd,
    WaitForUser,
)
from nano_code.kernel.codec import RequestBody, clean_text
from nano_code.kernel.errors import DriverMisuseError
from nano_code.kernel.events import (
    ApprovalDecision,
    ClearConversation,
    CompactRequest,
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
from nano_code.kernel.policy import (
    Approval,
    approval_requirement,
    format_tool_output,
    give_up_reason,
    parse_arguments,
    retry_delay,
)
from nano_code.kernel.types import (
    MESSAGE_TYPES,
    MIN_CONTEXT_TOKENS,
    AssistantMessage,
    KernelConfig,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
)


class Phase(enum.Enum):
    AWAITING_USER = "awaiting_user"
    AWAITING_MODEL = "awaiting_model"
    AWAITING_TOOL_FACTS = "awaiting_tool_facts"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_TOOL_RESULT = "awaiting_tool_result"
    AWAITING_SUMMARY = "awaiting_summary"
    """A compaction's summary call is in flight (see `Compaction`)."""


@attrs.frozen
class PendingCall:
    """A tool call from the last reply that has not been answered yet."""

    call: ToolCall = attrs.field(validator=v.instance_of(ToolCall))
    arguments: Mapping[str, Any] | None = None
    """Checked arguments; None when the call is unusable (see `problem`)."""
    problem: str | None = attrs.field(default=None, validator=v.optional(v.instance_of(str)))
    """What to tell the model instead of running the call."""


class AfterSummary(enum.Enum):
    """Where a compaction goes once the summary is in."""

    NEXT_STEP = "next_step"
    """The threshold was passed: make the turn's next model call."""
    RETRY_STEP = "retry_step"
    """The step overflowed the context window: send it again, once."""
    USER = "user"
    """The user asked (`CompactRequest`): await the user again."""


@attrs.frozen
class Compaction:
    """A compaction in flight: the history does not change while the summary is awaited."""

    cut: int = attrs.field(validator=[v.instance_of(int), v.ge(2)])
    """`history[1:cut]` is being summarised; `history[cut:]` will be kept verbatim."""
    then: AfterSummary = attrs.field(validator=v.instance_of(AfterSummary))
    transcript_tokens: int = attrs.field(validator=[v.instance_of(int), v.ge(1)])
    """Estimated tokens of old conversation the summary request carries (halved when the
    summary request itself overflows)."""
    attempt: int = attrs.field(default=1, validator=[v.instance_of(int), v.ge(1)])
    """Summary calls made for this compaction, the current one included."""


def _history_validator(_state: object, _attribute: Any, history: object) -> None:
    """A tuple of messages. Only the newest is checked: every transition appends
    at most a few messages to a history that was already valid, and checking
    all of them on every `evolve` would make each step cost O(history)."""
    if not isinstance(history, tuple):
        raise TypeError(f"history must be a tuple, got {type(history).__name__}")
    if history and not isinstance(history[-1], MESSAGE_TYPES):
        raise TypeError(f"history holds a {type(history[-1]).__name__}, not a message")


@attrs.frozen
class State:
    config: KernelConfig = attrs.field(validator=v.instance_of(KernelConfig))
    history: tuple[Message, ...] = attrs.field(validator=_history_validator)
    phase: Phase = Phase.AWAITING_USER
    pending: tuple[PendingCall, ...] = ()
    """Unanswered calls of the last reply, in order; the first is the current one."""
    steps_this_turn: int = 0
    """Model calls made in this turn (retries of one call count once)."""
    attempt: int = 0
    """Calls made for the current step, the first included."""
    malformed_streak: int = 0
    """Consecutive replies whose tool calls were all unusable, or undecodable bodies."""
    always_approved: frozenset[str] = frozenset()
    call_ids: frozenset[str] = frozenset()
    """Every tool call id in the history, kept as calls are added (so a reply's ids are
    made unique without walking the whole history each step)."""
    turn_usage: Usage = attrs.field(factory=Usage)
    session_usage: Usage = attrs.field(factory=Usage)
    learned_context_tokens: int | None = None
    """A context window smaller than the config's, stated by a server's context-length error."""
    compact_due: bool = False
    """A reply's prompt tokens passed the threshold: compact before the next model call."""
    overflow_compacted: bool = False
    """This step already overflowed once and was compacted: another overflow fails the turn."""
    compaction: Compaction | None = None
    """The compaction in flight (phase AWAITING_SUMMARY), else None."""

    @property
    def context_window(self) -> int:
        """The context window decisions use: the config's, or the smaller one learned."""
        learned = self.learned_context_tokens
        window = self.config.context_tokens
        return window if learned is None else min(window, learned)


def initial_state(config: KernelConfig) -> State:
    return State(config=config, history=(SystemMessage(config.system_prompt),))


Transition = tuple[State, list[Action]]
Handler = Callable[[State, Any], Transition]

# ---------------------------------------------------------------- helpers


def _request(state: State) -> RequestBody:
    return RequestBody(state.config, state.history)


def _call_model(state: State) -> Transition:
    state = attrs.evolve(
        state, phase=Phase.AWAITING_MODEL, steps_this_turn=state.steps_this_turn + 1, attempt=1
    )
    return state, [CallModel(body=_request(state), step=state.steps_this_turn, attempt=1)]


def _end_turn(state: State, reason: TurnEnd, detail: str, actions: list[Action]) -> Transition:
    end = EndTurn(reason=reason, detail=detail, usage=state.turn_usage)
    state = attrs.evolve(state, phase=Phase.AWAITING_USER, pending=(), attempt=0, compaction=None)
    return state, [*actions, end, WaitForUser()]


def _answer(state: State, call_id: str, content: str) -> State:
    return attrs.evolve(state, history=(*state.history, ToolMessage(tool_call_id=call_id, content=content)))


def _used_call_ids(history: tuple[Message, ...]) -> set[str]:
    return {call.id for m in history if isinstance(m, AssistantMessage) for call in m.tool_calls}


def _unique_id(raw: str, taken: set[str], position: int) -> str:
    """The server's id when usable, else a fresh one.

    Fresh ids are exactly 9 alphanumerics because Mistral rejects anything
    else in replayed history (QUIRKS A-5); their number comes from the history
    length, so they are deterministic.
    """
    if raw and raw not in taken and len(raw) <= 256:
        return raw
    number = position
    while True:
        candidate = f"nc{number % 10_000_000:07d}"
        if candidate not in taken:
            return candidate
        number += 1


# ---------------------------------------------------------------- handlers


def _on_user_input(state: State, event: UserInput) -> Transition:
    state = attrs.evolve(
        state,
        history=(*state.history, UserMessage(clean_text(event.text))),
        steps_this_turn=0,
        malformed_streak=0,
        turn_usage=Usage(),
        overflow_compacted=False,
    )
    return _next_step(state, [])


def _count_usage(state: State, usage: Usage | None) -> State:
    if usage is None:
        return state
    return attrs.evolve(state, turn_usage=state.turn_usage + usage, session_usage=state.session_usage + usage)


def _on_model_reply(state: State, event: ModelReply) -> Transition:
    state = _count_usage(state, event.usage)
    state = attrs.evolve(state, overflow_compacted=False)
    if (
        state.config.summary_prompt is not None
        and event.usage is not None
        and event.usage.prompt_tokens >= state.config.compact_at * state.context_window
    ):
        state = attrs.evolve(state, compact_due=True)
    actions: list[Action] = []
    if not state.config.stream and event.content:
        actions.append(ShowText(event.content, TextKind.ASSISTANT))
    if not event.tool_calls:
        if not event.content.strip() and not event.reasoning.strip():
            actions.append(ShowText(_empty_reply_notice(event.finish_reason), TextKind.WARNING))
        message = AssistantMessage(content=event.content, reasoning=event.reasoning or None)
        state = attrs.evolve(state, history=(*state.history, message), malformed_streak=0)
        detail = "the reply was cut off at the token limit" if event.finish_reason == "length" else ""
        return _end_turn(state, TurnEnd.COMPLETED, detail, actions)

    taken = set(state.call_ids) if state.call_ids else _used_call_ids(state.history)
    calls: list[ToolCall] = []
    pending: list[PendingCall] = []
    base = len(state.history) * 100
    for position, raw in enumerate(event.tool_calls):
        call_id = _unique_id(raw.id, taken, base + position)
        taken.add(call_id)
        spec = state.config.tool(raw.name)
        parsed = parse_arguments(spec, raw.name, raw.arguments)
        if isinstance(parsed, str):
            # Never send unparseable arguments back: some servers reject the
            # whole history for it (QUIRKS B-11). The tool message explains.
            call = ToolCall(id=call_id, name=raw.name or "unnamed", arguments="{}")
            pending.append(PendingCall(call=call, problem=parsed))
        else:
            arguments_json = raw.arguments if raw.arguments and raw.arguments.strip() else "{}"
            call = ToolCall(id=call_id, name=raw.name, arguments=arguments_json)
            pending.append(PendingCall(call=call, arguments=parsed))
        calls.append(call)
    all_unusable = all(p.problem is not None for p in pending)
    message = AssistantMessage(
        content=event.content or None, tool_calls=tuple(calls), reasoning=event.reasoning or None
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
            state = _answer(state, head.call.id, head.problem or "Error: unusable call")
            state = attrs.evolve(state, pending=state.pending[1:])
            continue
        spec = state.config.tool(head.call.name)
        assert spec is not None  # parse_arguments refused unknown tools
        inside: bool | None = None
        decision = approval_requirement(
            spec, state.config.approval, state.always_approved, inside, state.config.sandbox
        )
        if decision is Approval.NEEDS_FACTS:
            path = head.arguments.get(spec.path_parameter or "")
            if isinstance(path, str):
                state = attrs.evolve(state, phase=Phase.AWAITING_TOOL_FACTS)
                return state, [*actions, CheckToolCall(call=head.call, path=path)]
            # No path to check (its schema let a non-string through): a write
            # the sandbox would have confined asks, a read runs as it always did.
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
        "it can change files or run commands"
        if spec and spec.mutates
        else ("it reaches outside the workspace")
    )
    state = attrs.evolve(state, phase=Phase.AWAITING_APPROVAL)
    return state, [*actions, AskApproval(call=head.call, arguments=head.arguments, reason=reason)]


def _after_tools(state: State, actions: list[Action]) -> Transition:
    if state.malformed_streak >= state.config.max_consecutive_malformed:
        return _end_turn(
            state,
            TurnEnd.FAILED,
            f"the model sent {state.malformed_streak} unusable replies in a row",
            actions,
        )
    if state.steps_this_turn >= state.config.max_steps_per_turn:
        return _end_turn(
            state,
            TurnEnd.STEP_BUDGET,
            f"stopped after {state.steps_this_turn} model calls (the step budget)",
            actions,
        )
    return _next_step(state, actions)


def _next_step(state: State, actions: list[Action]) -> Transition:
    """The turn's next model call, after a compaction when the last reply made one due."""
    if state.compact_due:
        state = attrs.evolve(state, compact_due=False)
        notice = (
            f"the conversation is near the context window ({state.config.compact_at:.0%} of "
            f"{state.context_window:,} tokens): summarising its older part"
        )
        started = _start_compaction(state, AfterSummary.NEXT_STEP, [*actions, ShowText(notice)])
        if started is not None:
            return started
        actions = [
            *actions,
            ShowText(
                "the conversation is near the context window, but nothing in it is old enough to compact yet",
                TextKind.WARNING,
            ),
        ]
    state, more = _call_model(state)
    return state, actions + more


def _require_head(state: State, call_id: str) -> PendingCall:
    if not state.pending or state.pending[0].call.id != call_id:
        expected = state.pending[0].call.id if state.pending else "none"
        raise DriverMisuseError(f"answer for call {call_id!r}, but the pending call is {expected!r}")
    return state.pending[0]


def _on_tool_facts(state: State, event: ToolCallFacts) -> Transition:
    head = _require_head(state, event.call_id)
    spec = state.config.tool(head.call.name)
    assert spec is not None
    decision = approval_requirement(
        spec, state.config.approval, state.always_approved, event.inside_workspace, state.config.sandbox
    )
    return _decide(state, decision, [])


def _on_approval(state: State, event: ApprovalDecision) -> Transition:
    head = _require_head(state, event.call_id)
    if event.verdict is Verdict.DENY:
        why = f" ({event.reason})" if event.reason else ""
        state = _answer(state, head.call.id, f"Not run: the user did not approve this call{why}.")
        state = attrs.evolve(state, pending=state.pending[1:])
        return _advance(state)
    if event.verdict is Verdict.ALWAYS:
        state = attrs.evolve(state, always_approved=state.always_approved | {head.call.name})
    return _decide(state, Approval.RUN, [])


def _on_tool_result(state: State, event: ToolResult) -> Transition:
    head = _require_head(state, event.call_id)
    content = format_tool_output(
        clean_text(event.output), event.exit_status, state.config.max_tool_output_chars
    )
    if event.is_error and not content.startswith("Error"):
        content = f"Error: {content}"
    state = _answer(state, head.call.id, content)
    state = attrs.evolve(state, pending=state.pending[1:])
    return _advance(state)


def _on_model_failure(state: State, event: ModelFailure) -> Transition:
    if event.kind is FailureKind.CONTEXT_OVERFLOW:
        state = _learn_context_window(state, event)
        if state.config.summary_prompt is not None:
            return _on_overflow(state, event)
    if event.kind is FailureKind.MALFORMED:
        state = attrs.evolve(state, malformed_streak=state.malformed_streak + 1)
    delay = retry_delay(event, state.attempt, state.config.retry)
    if (
        event.kind is FailureKind.MALFORMED
        and state.malformed_streak >= state.config.max_consecutive_malformed
    ):
        delay = None
    if delay is None:
        reason = give_up_reason(event, state.attempt, state.config.retry)
        return _end_turn(state, TurnEnd.FAILED, reason, [])
    state = attrs.evolve(state, attempt=state.attempt + 1)
    notice = ShowText(
        f"{event.message} -- retrying in {delay:.1f}s "
        f"(attempt {state.attempt} of {state.config.retry.max_attempts})",
        TextKind.WARNING,
    )
    retry = RetryModel(
        delay=delay, body=_request(state), step=state.steps_this_turn, attempt=state.attempt, failure=event
    )
    return state, [notice, retry]


# ---------------------------------------------------------------- compaction


def _learn_context_window(state: State, event: ModelFailure) -> State:
    """`state` knowing the smaller context window the failure's message states, if any."""
    stated = compaction.context_limit_in(event.message)
    if stated is None:
        return state
    window = max(MIN_CONTEXT_TOKENS, stated)
    if window >= state.context_window:
        return state
    return attrs.evolve(state, learned_context_tokens=window)


def _on_overflow(state: State, event: ModelFailure) -> Transition:
    """The step's request did not fit the context window: compact and send it again, once."""
    if state.overflow_compacted:
        detail = (
            f"{event.message} -- the conversation is still too long for the model's context window "
            "after compacting it (the summary and the newest messages kept verbatim do not fit)"
        )
        return _end_turn(state, TurnEnd.FAILED, detail, [])
    notice = ShowText(
        "the conversation no longer fits the model's context window: summarising its older part, "
        "then sending the step again",
        TextKind.WARNING,
    )
    started = _start_compaction(
        attrs.evolve(state, overflow_compacted=True), AfterSummary.RETRY_STEP, [notice]
    )
    if started is not None:
        return started
    detail = (
        f"{event.message} -- the conversation is too long for the model's context window, and "
        "nothing in it is old enough to compact (the newest messages alone do not fit)"
    )
    return _end_turn(state, TurnEnd.FAILED, detail, [])


def _start_compaction(state: State, then: AfterSummary, actions: list[Action]) -> Transition | None:
    """Ask for a summary of the older part of the history; None when nothing is old enough."""
    assert not state.pending, "compaction starts only between steps"
    assert state.config.summary_prompt is not None
    window = state.context_window
    keep = compaction.keep_budget(state.history, window, state.config.keep_recent)
    cut = compaction.choose_cut(state.history, keep)
    if cut is None:
        return None
    budget = compaction.transcript_budget(window, state.config.summary_prompt)
    state = attrs.evolve(
        state,
        phase=Phase.AWAITING_SUMMARY,
        compaction=Compaction(cut=cut, then=then, transcript_tokens=budget),
    )
    return state, [*actions, _summary_call(state, None)]


def _summary_body(state: State) -> RequestBody:
    assert state.compaction is not None and state.config.summary_prompt is not None
    messages = compaction.summary_messages(
        state.history,
        state.compaction.cut,
        state.config.summary_prompt,
        state.compaction.transcript_tokens,
        state.context_window,
    )
    # No tools: the summary request asks for text, and its transcript holds no tool calls.
    return RequestBody(attrs.evolve(state.config, tools=()), messages)


def _summary_step(state: State) -> int:
    """The step a summary call prepares: the one about to be sent (or sent again)."""
    assert state.compaction is not None
    upcoming = state.steps_this_turn + (1 if state.compaction.then is AfterSummary.NEXT_STEP else 0)
    return max(1, upcoming)


def _summary_call(state: State, retry: tuple[float, ModelFailure] | None) -> CallModel | RetryModel:
    assert state.compaction is not None
    body, step, attempt = _summary_body(state), _summary_step(state), state.compaction.attempt
    if retry is None:
        return CallModel(body=body, step=step, attempt=attempt, purpose=CallPurpose.SUMMARY)
    delay, failure = retry
    return RetryModel(
        delay=delay, body=body, step=step, attempt=attempt, failure=failure, purpose=CallPurpose.SUMMARY
    )


def _on_summary_reply(state: State, event: ModelReply) -> Transition:
    state = _count_usage(state, event.usage)
    pending = state.compaction
    assert pending is not None
    summary = clean_text(event.content).strip()
    if not summary:
        why = "the model sent an empty summary"
        if event.finish_reason == "length":
            why += " (it was cut off at the token limit)"
        return _compaction_failed(state, why)
    window = state.context_window
    before = compaction.estimate_tokens(state.history)
    history = compaction.compacted(state.history, pending.cut, summary, window, state.config.summary_as)
    after = compaction.estimate_tokens(history)
    state = attrs.evolve(state, history=history, compaction=None, compact_due=False)
    done = ShowText(
        f"compacted the conversation: {pending.cut - 1} older messages replaced by a summary "
        f"(about {before:,} -> {after:,} tokens, estimated)"
    )
    if pending.then is AfterSummary.USER:
        return _end_turn(state, TurnEnd.COMPLETED, "", [done])
    if pending.then is AfterSummary.NEXT_STEP:
        state, more = _call_model(state)
        return state, [done, *more]
    state = attrs.evolve(state, phase=Phase.AWAITING_MODEL, attempt=state.attempt + 1)
    again = CallModel(body=_request(state), step=state.steps_this_turn, attempt=state.attempt)
    return state, [done, again]


def _on_summary_failure(state: State, event: ModelFailure) -> Transition:
    pending = state.compaction
    assert pending is not None
    if event.kind is FailureKind.CONTEXT_OVERFLOW:
        # The old part itself is too long to summarise at once: send less of it.
        state = _learn_context_window(state, event)
        window = state.context_window
        assert state.config.summary_prompt is not None
        smaller = min(
            pending.transcript_tokens // 2,
            compaction.transcript_budget(window, state.config.summary_prompt),
        )
        if pending.attempt >= state.config.retry.max_attempts or smaller < compaction.MIN_TRANSCRIPT_TOKENS:
            return _compaction_failed(
                state, f"{event.message} (even a shortened summary request is too long)"
            )
        state = attrs.evolve(
            state, compaction=attrs.evolve(pending, attempt=pending.attempt + 1, transcript_tokens=smaller)
        )
        return state, [_summary_call(state, (0.0, event))]
    delay = retry_delay(event, pending.attempt, state.config.retry)
    if delay is None:
        return _compaction_failed(state, give_up_reason(event, pending.attempt, state.config.retry))
    state = attrs.evolve(state, compaction=attrs.evolve(pending, attempt=pending.attempt + 1))
    notice = ShowText(
        f"{event.message} -- retrying the summary in {delay:.1f}s "
        f"(attempt {pending.attempt + 1} of {state.config.retry.max_attempts})",
        TextKind.WARNING,
    )
    return state, [notice, _summary_call(state, (delay, event))]


def _compaction_failed(state: State, why: str) -> Transition:
    """A summary that did not come: the turn fails, the history as it was (still valid)."""
    notice = ShowText(
        "compacting failed; the conversation is unchanged (/compact tries again, /clear starts afresh)",
        TextKind.WARNING,
    )
    state = attrs.evolve(state, compact_due=False)
    return _end_turn(state, TurnEnd.FAILED, f"compacting the conversation failed: {why}", [notice])


def _on_compact_request(state: State, _event: CompactRequest) -> Transition:
    state = attrs.evolve(
        state, steps_this_turn=0, malformed_streak=0, turn_usage=Usage(), overflow_compacted=False
    )
    if state.config.summary_prompt is None:
        return _end_turn(state, TurnEnd.FAILED, "compaction is off (no summary prompt is configured)", [])
    started = _start_compaction(
        state, AfterSummary.USER, [ShowText("summarising the older part of the conversation")]
    )
    if started is not None:
        return started
    return _end_turn(state, TurnEnd.COMPLETED, "nothing to compact yet: the conversation is short", [])


def _on_clear(state: State, _event: ClearConversation) -> Transition:
    system = state.history[0] if state.history else SystemMessage(state.config.system_prompt)
    if not isinstance(system, SystemMessage):
        system = SystemMessage(state.config.system_prompt)
    state = attrs.evolve(
        state,
        history=(system,),
        pending=(),
        steps_this_turn=0,
        attempt=0,
        malformed_streak=0,
        call_ids=frozenset(),
        turn_usage=Usage(),
        compact_due=False,
        overflow_compacted=False,
        compaction=None,
    )
    return _end_turn(state, TurnEnd.COMPLETED, "", [ShowText("cleared the conversation: starting afresh")])


INTERRUPTED_CALL = "Not run: the user interrupted before this call finished."


def _on_interrupt(state: State, _event: Interrupt) -> Transition:
    for pending in state.pending:
        state = _answer(state, pending.call.id, INTERRUPTED_CALL)
    state = attrs.evolve(state, pending=())
    return _end_turn(state, TurnEnd.INTERRUPTED, "interrupted by the user", [])


def _ignore(state: State, _event: Event) -> Transition:
    return state, []


# ---------------------------------------------------------------- the table

# phase -> event type -> (handler, phases the handler may lead to)
PHASE_TABLE: dict[Phase, dict[type, tuple[Handler, tuple[Phase, ...]]]] = {
    Phase.AWAITING_USER: {
        UserInput: (_on_user_input, (Phase.AWAITING_MODEL, Phase.AWAITING_SUMMARY)),
        CompactRequest: (_on_compact_request, (Phase.AWAITING_SUMMARY, Phase.AWAITING_USER)),
        ClearConversation: (_on_clear, (Phase.AWAITING_USER,)),
        Interrupt: (_ignore, (Phase.AWAITING_USER,)),
    },
    Phase.AWAITING_MODEL: {
        ModelReply: (
            _on_model_reply,
            (
                Phase.AWAITING_USER,
                Phase.AWAITING_MODEL,
                Phase.AWAITING_TOOL_FACTS,
                Phase.AWAITING_APPROVAL,
                Phase.AWAITING_TOOL_RESULT,
                Phase.AWAITING_SUMMARY,
            ),
        ),
        ModelFailure: (
            _on_model_failure,
            (Phase.AWAITING_MODEL, Phase.AWAITING_USER, Phase.AWAITING_SUMMARY),
        ),
        Interrupt: (_on_interrupt, (Phase.AWAITING_USER,)),
    },
    Phase.AWAITING_TOOL_FACTS: {
        ToolCallFacts: (_on_tool_facts, (Phase.AWAITING_APPROVAL, Phase.AWAITING_TOOL_RESULT)),
        Interrupt: (_on_interrupt, (Phase.AWAITING_USER,)),
    },
    Phase.AWAITING_APPROVAL: {
        ApprovalDecision: (
            _on_approval,
            (
                Phase.AWAITING_USER,
                Phase.AWAITING_MODEL,
                Phase.AWAITING_TOOL_FACTS,
                Phase.AWAITING_APPROVAL,
                Phase.AWAITING_TOOL_RESULT,
                Phase.AWAITING_SUMMARY,
            ),
        ),
        Interrupt: (_on_interrupt, (Phase.AWAITING_USER,)),
    },
    Phase.AWAITING_TOOL_RESULT: {
        ToolResult: (
            _on_tool_result,
            (
                Phase.AWAITING_USER,
                Phase.AWAITING_MODEL,
                Phase.AWAITING_TOOL_FACTS,
                Phase.AWAITING_APPROVAL,
                Phase.AWAITING_TOOL_RESULT,
                Phase.AWAITING_SUMMARY,
            ),
        ),
        Interrupt: (_on_interrupt, (Phase.AWAITING_USER,)),
    },
    Phase.AWAITING_SUMMARY: {
        ModelReply: (_on_summary_reply, (Phase.AWAITING_MODEL, Phase.AWAITING_USER)),
        ModelFailure: (_on_summary_failure, (Phase.AWAITING_SUMMARY, Phase.AWAITING_USER)),
        Interrupt: (_on_interrupt, (Phase.AWAITING_USER,)),
    },
}


def transition(state: State, event: Event) -> Transition:
    """(state, event) -> (next state, actions). Pure; see the module docstring."""
    handlers = PHASE_TABLE[state.phase]
    entry = handlers.get(type(event))
    if entry is None:
        allowed = ", ".join(t.__name__ for t in handlers)
        raise DriverMisuseError(
            f"{type(event).__name__} is not accepted while {state.phase.value}; expected {allowed}"
        )
    handler, _next_phases = entry
    return handler(state, event)


def phase_diagram() -> str:
    """The phase table as a mermaid state diagram (the README embeds this text)."""
    lines = ["stateDiagram-v2", f"    [*] --> {Phase.AWAITING_USER.name}"]
    for phase, handlers in PHASE_TABLE.items():
        for event_type, (_handler, next_phases) in handlers.items():
            for target in next_phases:
                lines.append(f"    {phase.name} --> {target.name}: {event_type.__name__}")
    return "\n".join(lines)


def history_as_json(state: State) -> str:
    """The conversation as the server sees it (handy for debugging and tests)."""
    return json.dumps(_request(state)["messages"], ensure_ascii=False, indent=2)
