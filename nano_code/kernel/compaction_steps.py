"""The transitions of a compaction: ask for a summary (phase AWAITING_SUMMARY), put it in
place of the older history, then go on as `AfterSummary` says. Started by the threshold,
a context overflow (the step is sent again, once) or `CompactRequest`.
"""

from __future__ import annotations

import attrs

from nano_code.kernel import compaction
from nano_code.kernel.actions import Action, CallModel, CallPurpose, RetryModel, ShowText, TextKind, TurnEnd
from nano_code.kernel.events import CompactRequest, FailureKind, ModelFailure, ModelReply
from nano_code.kernel.policy import give_up_reason, retry_delay
from nano_code.kernel.request import RequestBody, clean_text
from nano_code.kernel.state import (
    AfterSummary,
    Compaction,
    Phase,
    State,
    Transition,
    call_model,
    count_usage,
    end_turn,
    new_turn,
    request_body,
)
from nano_code.kernel.types import MIN_CONTEXT_TOKENS, PromptCache


def learn_context_window(state: State, event: ModelFailure) -> State:
    """`state` knowing the smaller context window the failure's message states, if any."""
    window = max(MIN_CONTEXT_TOKENS, compaction.context_limit_in(event.message) or state.context_window)
    return attrs.evolve(state, learned_context_tokens=window) if window < state.context_window else state


def on_overflow(state: State, event: ModelFailure) -> Transition:
    """The step's request did not fit the context window: compact and send it again, once."""
    if state.overflow_compacted:
        detail = (
            f"{event.message} -- the conversation is still too long for the model's context window "
            "after compacting it (the summary and the newest messages kept verbatim do not fit)"
        )
        return end_turn(state, TurnEnd.FAILED, detail, [])
    notice = ShowText(
        "the conversation no longer fits the model's context window: summarising its older part, "
        "then sending the step again",
        TextKind.WARNING,
    )
    detail = (
        f"{event.message} -- the conversation is too long for the model's context window, and "
        "nothing in it is old enough to compact (the newest messages alone do not fit)"
    )
    retried = start_compaction(
        attrs.evolve(state, overflow_compacted=True), AfterSummary.RETRY_STEP, [notice]
    )
    return retried or end_turn(state, TurnEnd.FAILED, detail, [])


def start_compaction(state: State, then: AfterSummary, actions: list[Action]) -> Transition | None:
    """Ask for a summary of the older part of the history; None when nothing is old enough."""
    assert not state.pending, "compaction starts only between steps"
    assert state.config.summary_prompt is not None
    window = state.context_window
    keep = compaction.keep_budget(state.history, window, state.config.keep_recent)
    cut = compaction.choose_cut(state.history, keep)
    if cut is None:
        return None
    budget = compaction.transcript_budget(window, state.config.summary_prompt)
    pending = Compaction(cut=cut, then=then, transcript_tokens=budget)
    state = attrs.evolve(state, phase=Phase.AWAITING_SUMMARY, compaction=pending)
    return state, [*actions, _summary_call(state, None)]


def _summary_call(state: State, retry: tuple[float, ModelFailure] | None) -> CallModel | RetryModel:
    pending, prompt = state.compaction, state.config.summary_prompt
    assert pending is not None and prompt is not None
    messages = compaction.summary_messages(
        state.history, pending.cut, prompt, pending.transcript_tokens, state.context_window
    )
    # A transcript needs no tools, and no cache markers: no later request starts with it.
    body = RequestBody(attrs.evolve(state.config, tools=(), prompt_cache=PromptCache.OFF), messages)
    step = max(1, state.steps_this_turn + (1 if pending.then is AfterSummary.NEXT_STEP else 0))
    if retry is None:
        return CallModel(body=body, step=step, attempt=pending.attempt, purpose=CallPurpose.SUMMARY)
    delay, failure = retry
    return RetryModel(delay, body, step, pending.attempt, failure, CallPurpose.SUMMARY)


def on_summary_reply(state: State, event: ModelReply) -> Transition:
    state = count_usage(state, event.usage)
    pending = state.compaction
    assert pending is not None
    summary = clean_text(event.content).strip()
    if not summary:
        cut_off = " (it was cut off at the token limit)" if event.finish_reason == "length" else ""
        return _compaction_failed(state, f"the model sent an empty summary{cut_off}")
    before = compaction.estimate_tokens(state.history)
    history = compaction.compacted(
        state.history, pending.cut, summary, state.context_window, state.config.summary_as
    )
    after = compaction.estimate_tokens(history)
    state = attrs.evolve(state, history=history, compaction=None, compact_due=False)
    done = ShowText(
        f"compacted the conversation: {pending.cut - 1} older messages replaced by a summary "
        f"(about {before:,} -> {after:,} tokens, estimated)"
    )
    if pending.then is AfterSummary.USER:
        return end_turn(state, TurnEnd.COMPLETED, "", [done])
    if pending.then is AfterSummary.NEXT_STEP:
        state, more = call_model(state)
        return state, [done, *more]
    state = attrs.evolve(state, phase=Phase.AWAITING_MODEL, attempt=state.attempt + 1)
    again = CallModel(body=request_body(state), step=state.steps_this_turn, attempt=state.attempt)
    return state, [done, again]


def on_summary_failure(state: State, event: ModelFailure) -> Transition:
    pending = state.compaction
    assert pending is not None
    if event.kind is FailureKind.CONTEXT_OVERFLOW:
        # The old part itself is too long to summarise at once: send less of it.
        state = learn_context_window(state, event)
        assert state.config.summary_prompt is not None
        smaller = min(
            pending.transcript_tokens // 2,
            compaction.transcript_budget(state.context_window, state.config.summary_prompt),
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
    return end_turn(state, TurnEnd.FAILED, f"compacting the conversation failed: {why}", [notice])


def on_compact_request(state: State, _event: CompactRequest) -> Transition:
    state = new_turn(state)
    if state.config.summary_prompt is None:
        return end_turn(state, TurnEnd.FAILED, "compaction is off (no summary prompt is configured)", [])
    notice = ShowText("summarising the older part of the conversation")
    short = "nothing to compact yet: the conversation is short"
    started = start_compaction(state, AfterSummary.USER, [notice])
    return started or end_turn(state, TurnEnd.COMPLETED, short, [])
