"""Compaction: the older history becomes a summary, and the conversation stays valid.

First the pure decisions of `nano_code.kernel.compaction` over any history
(`strategies.histories`): every cut point leaves a valid conversation, a tool
call never leaves its answers, the system prompt stays, the summary request
is a valid request. Then the machine: the threshold, an overflow compacted and
sent again once, a summary call that fails, /compact and /clear, the context
window learned from what real servers say.
"""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_helpers import SCHEMA, body_problems, schema_errors, subset_errors

from nano_code.kernel import serialize
from nano_code.kernel.actions import (
    CallModel,
    CallPurpose,
    EndTurn,
    RetryModel,
    RunTool,
    ShowText,
    TextKind,
    TurnEnd,
    WaitForUser,
)
from nano_code.kernel.compaction import (
    NOTES_CONTINUE,
    NOTES_INTRO,
    SUMMARY_ACK,
    SUMMARY_HEADER,
    choose_cut,
    compacted,
    context_limit_in,
    cut_points,
    estimate_tokens,
    is_compaction_message,
    summary_messages,
    transcript_budget,
)
from nano_code.kernel.events import (
    ClearConversation,
    CompactRequest,
    FailureKind,
    Interrupt,
    ModelFailure,
    ModelReply,
    ReplyToolCall,
    ToolResult,
    UserInput,
)
from nano_code.kernel.failures import classify_http_error
from nano_code.kernel.machine import transition
from nano_code.kernel.request import RequestBody, encode_message, request_head
from nano_code.kernel.state import AfterSummary, Phase, State, initial_state
from nano_code.kernel.types import (
    ApprovalMode,
    AssistantMessage,
    KernelConfig,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
)
from nano_code.prompts import SUMMARY_PROMPT
from nano_code.testing import conversation_problems
from nano_code.testing.compaction_strategies import context_overflows, histories
from nano_code.testing.strategies import DEMO_TOOLS

WINDOW = 8192
CONFIG = KernelConfig(
    model="m",
    system_prompt="You are a coding agent.",
    tools=DEMO_TOOLS,
    approval=ApprovalMode.AUTO,
    max_steps_per_turn=100,
    context_tokens=WINDOW,
    summary_prompt=SUMMARY_PROMPT,
)
OFF = attrs.evolve(CONFIG, summary_prompt=None)


def valid_request(body: Any) -> None:
    """`body` is a request nano-code may send: a valid conversation, our subset schema, the official one."""
    body = json.loads(json.dumps(dict(body)))
    assert conversation_problems(body) == []
    assert body_problems(body) == []
    assert subset_errors(body) == []
    if SCHEMA.exists():
        assert schema_errors(body) == []


def overflow(limit: int | None = 4096, used: int = 9000) -> ModelFailure:
    """What the codec makes of OpenAI's context-length error (stating `limit`, or no number)."""
    if limit is None:
        message = "Please reduce the length of the messages or completion."
    else:
        message = (
            f"This model's maximum context length is {limit} tokens. However, your messages resulted "
            f"in {used} tokens. Please reduce the length of the messages."
        )
    body = {"error": {"message": message, "type": "invalid_request_error", "code": "context_length_exceeded"}}
    failure = classify_http_error(400, {}, json.dumps(body).encode())
    assert failure.kind is FailureKind.CONTEXT_OVERFLOW
    return failure


def shell_call(number: int, prompt_tokens: int = 100) -> ModelReply:
    arguments = json.dumps({"command": f"echo {number}"})
    return ModelReply(
        tool_calls=(ReplyToolCall(id=f"call_{number}", name="shell", arguments=arguments),),
        usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=10, total_tokens=prompt_tokens + 10),
    )


def summary(text: str = "Did steps 1 to 3; next: step 4.") -> ModelReply:
    return ModelReply(content=text, usage=Usage(prompt_tokens=500, completion_tokens=50, total_tokens=550))


def feed(state: State, event: Any) -> tuple[State, list[Any]]:
    """Feed `event`, then run every tool the kernel asks for (output: a few hundred characters)."""
    state, actions = transition(state, event)
    everything = list(actions)
    while state.phase is Phase.AWAITING_TOOL_RESULT:
        run = actions[-1]
        assert isinstance(run, RunTool)
        state, actions = transition(state, ToolResult(run.call.id, f"output of {run.call.id}\n" * 20))
        everything += actions
    assert conversation_problems(state) == []
    return state, everything


def calls_in(actions: list[Any]) -> list[CallModel | RetryModel]:
    return [a for a in actions if isinstance(a, (CallModel, RetryModel))]


def worked(config: KernelConfig = CONFIG, steps: int = 3) -> State:
    """A state awaiting the model after `steps` steps of shell calls in one turn."""
    state, _ = feed(initial_state(config), UserInput("do the task in steps"))
    for number in range(1, steps + 1):
        state, _ = feed(state, shell_call(number))
    assert state.phase is Phase.AWAITING_MODEL and state.steps_this_turn == steps + 1
    return state


# ---------------------------------------------------------------- cut points and the compacted history


def carriers(messages: Any) -> list[Any]:
    """The messages (or encoded messages) carrying a compaction's summary."""
    found = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        if isinstance(content, str) and content.startswith(SUMMARY_HEADER):
            found.append(m)
    return found


@given(history=histories(), summary_as=st.sampled_from(["assistant", "user"]))
def test_every_cut_point_leaves_a_valid_conversation(history: tuple[Message, ...], summary_as: str) -> None:
    assert conversation_problems(history) == []
    for cut in cut_points(history):
        result = compacted(history, cut, "what happened so far", WINDOW, summary_as)
        assert conversation_problems(result) == [], (cut, result)
        assert result[0] is history[0], "the system prompt goes first, untouched"
        kept = history[cut:]
        head = result[: len(result) - len(kept)]
        assert result[len(head) :] == kept, "the newest messages are kept verbatim"
        [carrier] = carriers(result)
        assert "what happened so far" in carrier.content
        roles = [type(m) for m in (*head[1:], kept[0])]
        assert all(a is not b for a, b in pairwise(roles)), "roles keep alternating"
        assert roles[0] is UserMessage, "a user message comes first after the system prompt"
        assert all(is_compaction_message(m) for m in head[1:])
        if summary_as == "assistant":
            assert isinstance(carrier, AssistantMessage), "the summary is the agent's own notes"
            assert not any("what happened so far" in m.content for m in result if isinstance(m, UserMessage))
            assert head[1] == UserMessage(NOTES_INTRO) and head[2] is carrier
            assert head[3:] == (
                (UserMessage(NOTES_CONTINUE),) if isinstance(kept[0], AssistantMessage) else ()
            )
        else:  # as sessions recorded before it was a setting: exactly as then
            assert head[1:] == (
                UserMessage(carrier.content),
                *((AssistantMessage(content=SUMMARY_ACK),) if isinstance(kept[0], UserMessage) else ()),
            )


@given(history=histories())
def test_a_tool_call_is_never_separated_from_its_answers(history: tuple[Message, ...]) -> None:
    for cut in cut_points(history):
        assert 2 <= cut < len(history)
        assert not isinstance(history[cut], ToolMessage)
        summarised = {c.id for m in history[1:cut] if isinstance(m, AssistantMessage) for c in m.tool_calls}
        kept = {c.id for m in history[cut:] if isinstance(m, AssistantMessage) for c in m.tool_calls}
        answered_before = {m.tool_call_id for m in history[1:cut] if isinstance(m, ToolMessage)}
        answered_after = {m.tool_call_id for m in history[cut:] if isinstance(m, ToolMessage)}
        assert answered_before <= summarised and summarised <= answered_before
        assert answered_after <= kept and kept <= answered_after


@given(history=histories())
def test_the_summarised_part_is_never_only_an_earlier_summary(history: tuple[Message, ...]) -> None:
    for cut in cut_points(history):
        assert not all(is_compaction_message(m) for m in history[1:cut])


@given(history=histories(), keep=st.integers(0, 20_000))
def test_the_cut_chosen_keeps_as_much_as_fits(history: tuple[Message, ...], keep: int) -> None:
    points = cut_points(history)
    cut = choose_cut(history, keep)
    if not points:
        assert cut is None
        return
    assert cut in points
    fitting = [p for p in points if estimate_tokens(history[p:]) <= keep]
    assert cut == (fitting[0] if fitting else points[-1])


@given(
    history=histories(),
    window=st.sampled_from([1024, 4096, 8192, 200_000]),
    data=st.data(),
)
def test_the_summary_request_is_a_valid_request_that_fits(
    history: tuple[Message, ...], window: int, data: st.DataObject
) -> None:
    points = cut_points(history)
    if not points:
        return
    cut = data.draw(st.sampled_from(points))
    budget = transcript_budget(window, SUMMARY_PROMPT)
    messages = summary_messages(history, cut, SUMMARY_PROMPT, budget, window)
    body = RequestBody(attrs.evolve(CONFIG, tools=()), messages)
    valid_request(body)
    assert "tools" not in body
    assert messages[0] == SystemMessage(SUMMARY_PROMPT)
    # the transcript is cut to its budget (a little more for the cut marks and the framing)
    assert estimate_tokens(messages[1:]) <= budget + 64


@pytest.mark.parametrize(
    "history",
    [
        (SystemMessage("s"),),
        (SystemMessage("s"), UserMessage("hi")),
        (SystemMessage("s"), UserMessage(f"{SUMMARY_HEADER}\nold"), UserMessage("hi")),
        (
            SystemMessage("s"),
            UserMessage(f"{SUMMARY_HEADER}\nold"),
            AssistantMessage(content=SUMMARY_ACK),
            UserMessage("hi"),
        ),
        (
            SystemMessage("s"),
            UserMessage(NOTES_INTRO),
            AssistantMessage(content=f"{SUMMARY_HEADER}\nold"),
            UserMessage("hi"),
        ),
        (
            SystemMessage("s"),
            UserMessage(NOTES_INTRO),
            AssistantMessage(content=f"{SUMMARY_HEADER}\nold"),
            UserMessage(NOTES_CONTINUE),
            AssistantMessage(content="hi"),
        ),
    ],
    ids=[
        "system-only",
        "one-message",
        "summary-then-one",
        "summary-ack-then-one",
        "notes-then-one",
        "notes-continue-then-one",
    ],
)
def test_nothing_is_old_enough_to_compact(history: tuple[Message, ...]) -> None:
    assert cut_points(history) == []
    assert choose_cut(history, 0) is None


# ---------------------------------------------------------------- the context window learned


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        (
            "This model's maximum context length is 8192 tokens. However, your messages resulted in "
            "9000 tokens. Please reduce the length of the messages.",
            8192,
        ),
        ("prompt is too long: 210000 tokens > 200000 maximum", 200_000),
        (
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
            "(4000 in the messages, 1000 in the completion).",
            4096,
        ),
        (
            "Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum "
            "context length",
            32_768,
        ),
        (
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            1_048_576,
        ),
        ("This model's maximum prompt length is 131072 but the request contains 150000 tokens.", 131_072),
        ("The decoder prompt (length 9000) is longer than the maximum model length of 8192.", 8192),
        ("The prompt is too long: 40000, model maximum context length: 32768", 32_768),
        (
            "the request exceeds the available context size, try increasing it (context size: 4096 tokens)",
            4096,
        ),
        ("too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 5000.", 4081),
        ("Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8193. Given: 9000", 8193),
        ("This endpoint's maximum context length is 128,000 tokens. However, you requested 130,001", 128_000),
        ("Please reduce the length of the messages or completion.", None),
        ("context_length_exceeded", None),
        ("maximum context length is 12 tokens", None),
        ("", None),
    ],
)
def test_the_limit_an_error_message_states(message: str, limit: int | None) -> None:
    assert context_limit_in(message) == limit


@given(error=context_overflows())
def test_real_context_length_errors_are_overflows_and_state_their_limit(
    error: tuple[str, int, bytes, int | None],
) -> None:
    server, status, body, limit = error
    failure = classify_http_error(status, {}, body)
    assert failure.kind is FailureKind.CONTEXT_OVERFLOW, server
    assert context_limit_in(failure.message) == limit, (server, failure.message)


@given(text=st.text(max_size=300))
def test_reading_a_limit_never_raises(text: str) -> None:
    found = context_limit_in(text)
    assert found is None or 256 <= found <= 100_000_000


def test_an_overflow_teaches_the_kernel_a_smaller_window_never_a_larger_one() -> None:
    state, _ = transition(worked(), overflow(limit=4096))
    assert state.learned_context_tokens == 4096 and state.context_window == 4096
    state = worked()
    state, _ = transition(state, overflow(limit=200_000))
    assert state.learned_context_tokens is None and state.context_window == WINDOW
    tiny, _ = transition(worked(), overflow(limit=300))
    assert tiny.context_window == 1024, "never below the smallest window nano-code works with"


# ---------------------------------------------------------------- the threshold


@given(prompt_tokens=st.integers(0, 2 * WINDOW), compact_at=st.sampled_from([0.5, 0.8, 1.0]))
def test_a_reply_past_the_threshold_compacts_before_the_next_call(
    prompt_tokens: int, compact_at: float
) -> None:
    config = attrs.evolve(CONFIG, compact_at=compact_at)
    state = worked(config, steps=2)
    state, actions = feed(state, shell_call(3, prompt_tokens=prompt_tokens))
    [call] = calls_in(actions)
    due = prompt_tokens >= compact_at * WINDOW
    assert (call.purpose is CallPurpose.SUMMARY) == due
    assert state.phase is (Phase.AWAITING_SUMMARY if due else Phase.AWAITING_MODEL)
    if not due:
        return
    steps = state.steps_this_turn
    state, actions = feed(state, summary())
    [call] = calls_in(actions)
    assert call.purpose is CallPurpose.STEP and call.step == steps + 1 and call.attempt == 1
    valid_request(call.body)
    messages = call.body["messages"]
    assert messages[0] == {"role": "system", "content": CONFIG.system_prompt}
    assert messages[1] == {"role": "user", "content": NOTES_INTRO}
    assert messages[2]["role"] == "assistant" and messages[2]["content"].startswith(SUMMARY_HEADER)
    assert state.history == tuple(state.history) and not state.compact_due


def test_a_turn_that_ends_past_the_threshold_compacts_before_the_next_turn() -> None:
    state = worked(steps=2)
    state, actions = feed(state, ModelReply(content="done", usage=Usage(prompt_tokens=WINDOW)))
    assert isinstance(actions[-1], WaitForUser) and state.compact_due
    state, actions = feed(state, UserInput("and now the docs"))
    [call] = calls_in(actions)
    assert call.purpose is CallPurpose.SUMMARY and call.step == 1
    state, actions = feed(state, summary())
    [call] = calls_in(actions)
    assert call.purpose is CallPurpose.STEP and call.step == 1
    assert call.body["messages"][-1] == {"role": "user", "content": "and now the docs"}
    valid_request(call.body)


def test_past_the_threshold_with_nothing_old_enough_the_step_goes_on_with_a_warning() -> None:
    state, _ = feed(initial_state(CONFIG), UserInput("x" * 100))
    state, actions = feed(state, ModelReply(content="hi", usage=Usage(prompt_tokens=WINDOW)))
    state, actions = transition(attrs.evolve(state, history=state.history[:1]), UserInput("again"))
    [call] = calls_in(actions)
    assert call.purpose is CallPurpose.STEP
    assert any(isinstance(a, ShowText) and a.kind is TextKind.WARNING for a in actions)


# ---------------------------------------------------------------- an overflow


def test_an_overflow_is_compacted_and_the_step_sent_again_once() -> None:
    state = worked(steps=4)
    step = state.steps_this_turn
    before = state.history
    state, actions = feed(state, overflow())
    [call] = calls_in(actions)
    assert call.purpose is CallPurpose.SUMMARY and call.step == step
    assert state.compaction is not None and state.compaction.then is AfterSummary.RETRY_STEP
    assert state.history == before, "nothing changes until the summary is in"
    valid_request(call.body)
    state, actions = feed(state, summary())
    [again] = calls_in(actions)
    assert isinstance(again, CallModel) and again.purpose is CallPurpose.STEP
    assert (again.step, again.attempt) == (step, 2)
    assert len(again.body["messages"]) < len(before)
    valid_request(again.body)
    assert state.session_usage.prompt_tokens == 4 * 100 + 500, "the summary's tokens are counted"
    # a second overflow right after compacting fails the turn, clearly, with a valid history
    state, actions = feed(state, overflow())
    end = actions[-2]
    assert isinstance(end, EndTurn) and end.reason is TurnEnd.FAILED
    assert "still too long" in end.detail and "maximum context length" in end.detail
    assert isinstance(actions[-1], WaitForUser) and state.phase is Phase.AWAITING_USER
    assert not calls_in(actions)


def test_after_a_step_goes_through_a_later_overflow_may_compact_again() -> None:
    state = worked(steps=4)
    state, _ = feed(state, overflow())
    state, _ = feed(state, summary())
    for number in range(5, 9):
        state, _ = feed(state, shell_call(number))
    state, actions = feed(state, overflow())
    [call] = calls_in(actions)
    assert call.purpose is CallPurpose.SUMMARY
    state, actions = feed(state, summary("second summary"))
    [again] = calls_in(actions)
    messages = again.body["messages"]
    [carrier] = carriers(messages)
    assert carrier["role"] == "assistant" and "second summary" in carrier["content"]


def test_an_overflow_with_nothing_old_enough_fails_the_turn_without_looping() -> None:
    state, _ = feed(initial_state(CONFIG), UserInput("a" * 50_000))
    state, actions = feed(state, overflow())
    assert not calls_in(actions)
    end = actions[-2]
    assert isinstance(end, EndTurn) and end.reason is TurnEnd.FAILED
    assert "nothing in it is old enough to compact" in end.detail
    assert state.phase is Phase.AWAITING_USER


def test_an_overflow_without_compaction_fails_as_it_always_did() -> None:
    state = worked(OFF)
    failure = overflow()
    state, actions = feed(state, failure)
    assert not calls_in(actions)
    assert actions == [EndTurn(TurnEnd.FAILED, failure.message, state.turn_usage), WaitForUser()]
    state = worked(OFF)
    state, actions = feed(state, shell_call(9, prompt_tokens=10 * WINDOW))
    [call] = calls_in(actions)
    assert call.purpose is CallPurpose.STEP and not state.compact_due


# ---------------------------------------------------------------- the summary call failing


def test_a_summary_call_is_retried_like_any_call_then_the_turn_fails_cleanly() -> None:
    state = worked(steps=3)
    before = state.history
    state, _ = feed(state, overflow())
    failure = ModelFailure(FailureKind.SERVER_ERROR, "HTTP 503: busy", status=503)
    for attempt in range(2, CONFIG.retry.max_attempts + 1):
        state, actions = feed(state, failure)
        [retry] = calls_in(actions)
        assert isinstance(retry, RetryModel) and retry.purpose is CallPurpose.SUMMARY
        assert retry.attempt == attempt and retry.delay > 0
    state, actions = feed(state, failure)
    assert not calls_in(actions)
    assert any(isinstance(a, ShowText) and "unchanged" in a.text for a in actions)
    end = actions[-2]
    assert isinstance(end, EndTurn) and end.reason is TurnEnd.FAILED
    assert end.detail.startswith("compacting the conversation failed: HTTP 503")
    assert state.history == before and state.phase is Phase.AWAITING_USER and state.compaction is None


@pytest.mark.parametrize(
    "event",
    [
        ModelFailure(FailureKind.AUTH, "HTTP 401: bad key", status=401),
        ModelReply(content="", usage=Usage(prompt_tokens=10)),
        ModelReply(content="   \n", finish_reason="length"),
        Interrupt(),
    ],
    ids=["auth", "empty", "blank-cut-off", "interrupt"],
)
def test_a_summary_that_does_not_come_leaves_the_history_as_it_was(event: Any) -> None:
    state = worked(steps=3)
    before = state.history
    state, _ = feed(state, overflow())
    state, actions = feed(state, event)
    end = actions[-2]
    assert isinstance(end, EndTurn)
    expected = TurnEnd.INTERRUPTED if isinstance(event, Interrupt) else TurnEnd.FAILED
    assert end.reason is expected
    assert state.history == before and state.compaction is None and state.phase is Phase.AWAITING_USER


def test_a_summary_request_that_overflows_is_sent_again_shorter() -> None:
    state = worked(steps=6)
    state, actions = feed(state, overflow(limit=6000))
    [first] = calls_in(actions)
    assert state.compaction is not None
    budget = state.compaction.transcript_tokens
    state, actions = feed(state, overflow(limit=6000))
    [second] = calls_in(actions)
    assert isinstance(second, RetryModel) and second.purpose is CallPurpose.SUMMARY and second.delay == 0.0
    assert state.compaction is not None and state.compaction.transcript_tokens == budget // 2
    assert len(json.dumps(dict(second.body))) <= len(json.dumps(dict(first.body)))
    valid_request(second.body)


# ---------------------------------------------------------------- /compact and /clear


def two_turns(config: KernelConfig = CONFIG) -> State:
    state = worked(config, steps=3)
    state, _ = feed(state, ModelReply(content="first done", usage=Usage(prompt_tokens=100)))
    state, _ = feed(state, UserInput("second task"))
    state, _ = feed(state, shell_call(10))
    state, _ = feed(state, ModelReply(content="second done", usage=Usage(prompt_tokens=100)))
    assert state.phase is Phase.AWAITING_USER
    return state


def test_compact_request_summarises_and_awaits_the_user_again() -> None:
    state = two_turns()
    usage = state.session_usage
    state, actions = feed(state, CompactRequest())
    [call] = calls_in(actions)
    assert call.purpose is CallPurpose.SUMMARY and call.step == 1
    assert state.steps_this_turn == 0 and state.turn_usage == Usage()
    state, actions = feed(state, summary())
    assert not calls_in(actions)
    end = actions[-2]
    assert isinstance(end, EndTurn) and end.reason is TurnEnd.COMPLETED
    assert end.usage == summary().usage and state.session_usage == usage + summary().usage
    assert isinstance(actions[-1], WaitForUser) and state.phase is Phase.AWAITING_USER
    assert carriers(state.history) == [state.history[2]]
    state, actions = feed(state, UserInput("third task"))
    [call] = calls_in(actions)
    valid_request(call.body)


def test_compact_request_on_a_short_conversation_says_there_is_nothing_to_compact() -> None:
    state, actions = feed(initial_state(CONFIG), CompactRequest())
    assert not calls_in(actions)
    assert actions[-2] == EndTurn(TurnEnd.COMPLETED, "nothing to compact yet: the conversation is short")
    assert state.history == initial_state(CONFIG).history


def test_compact_request_with_compaction_off_fails_cleanly() -> None:
    state = two_turns(OFF)
    before = state.history
    state, actions = feed(state, CompactRequest())
    assert not calls_in(actions) and state.history == before
    end = actions[-2]
    assert isinstance(end, EndTurn) and end.reason is TurnEnd.FAILED and "off" in end.detail


def test_clear_goes_back_to_the_system_prompt_and_keeps_the_session_totals() -> None:
    state = two_turns()
    state = attrs.evolve(state, learned_context_tokens=4096, compact_due=True)
    usage = state.session_usage
    state, actions = feed(state, ClearConversation())
    assert state.history == (SystemMessage(CONFIG.system_prompt),)
    assert state.session_usage == usage and state.turn_usage == Usage() and state.steps_this_turn == 0
    assert state.context_window == 4096 and not state.compact_due
    assert isinstance(actions[-1], WaitForUser)
    state, actions = feed(state, UserInput("fresh start"))
    [call] = calls_in(actions)
    assert call.body["messages"] == [
        {"role": "system", "content": CONFIG.system_prompt},
        {"role": "user", "content": "fresh start"},
    ]


# ---------------------------------------------------------------- config and state


def test_the_defaults_change_no_request_body() -> None:
    config = KernelConfig(model="m", system_prompt="s")
    assert config.context_tokens == 128_000 and config.summary_prompt is None
    assert list(request_head(config)) == ["model", "messages", "stream", "stream_options"]
    on = attrs.evolve(config, summary_prompt=SUMMARY_PROMPT, context_tokens=4096, keep_recent=0.1)
    assert request_head(on) == request_head(config)


@pytest.mark.parametrize(
    "changes",
    [
        {"context_tokens": 1023},
        {"compact_at": 0.05},
        {"compact_at": 1.5},
        {"keep_recent": 0.8},
        {"keep_recent": -0.1},
        {"compact_at": 0.5, "keep_recent": 0.5},
    ],
)
def test_config_refuses_settings_that_cannot_work(changes: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        attrs.evolve(CONFIG, **changes)


def test_a_state_awaiting_its_summary_round_trips_through_json() -> None:
    state = worked(steps=3)
    state, _ = feed(state, overflow())
    assert state.phase is Phase.AWAITING_SUMMARY
    assert serialize.from_json(json.loads(json.dumps(serialize.to_json(state)))) == state


def test_an_old_state_without_compaction_fields_still_loads() -> None:
    data = serialize.to_json(worked(steps=1))
    for name in ("learned_context_tokens", "compact_due", "overflow_compacted", "compaction"):
        del data[name]
    for name in ("context_tokens", "compact_at", "keep_recent", "summary_prompt"):
        del data["config"][name]
    state = serialize.from_json(data)
    assert state.compaction is None and state.config.summary_prompt is None


def test_the_summary_request_carries_the_older_part_and_not_the_kept_part() -> None:
    state, _ = feed(initial_state(CONFIG), UserInput("OLDEST-TASK"))
    for number in range(1, 8):
        state, _ = feed(state, shell_call(number))
    state, actions = feed(state, overflow())
    assert state.compaction is not None
    [call] = calls_in(actions)
    transcript = call.body["messages"][1]["content"]
    assert "[user]\nOLDEST-TASK" in transcript
    kept = state.history[state.compaction.cut :]
    kept_calls = [c for m in kept if isinstance(m, AssistantMessage) for c in m.tool_calls]
    assert kept_calls and all(c.arguments not in transcript for c in kept_calls)
    state, actions = feed(state, summary())
    [again] = calls_in(actions)
    sent = json.loads(json.dumps(again.body["messages"]))
    assert sent[-len(kept) :] == [encode_message(m) for m in kept], "kept verbatim"


# ---------------------------------------------------------------- shrunk counterexamples


def test_regression_cjk_tool_output_is_cut_by_its_size_as_sent() -> None:
    """Hypothesis found it: the transcript was cut by characters, but 159 CJK characters are
    954 characters of JSON (each one escaped), so the summary request ran past its budget."""
    history = (
        SystemMessage("You are a coding agent."),
        AssistantMessage(
            tool_calls=tuple(
                ToolCall(id=f"call_{n}", name="read_file", arguments='{"path": ""}') for n in (1, 2, 3)
            )
        ),
        ToolMessage(tool_call_id="call_1", content=""),
        ToolMessage(tool_call_id="call_2", content=""),
        ToolMessage(tool_call_id="call_3", content="\u65e5\u672c\u8a9e" * 53),
        UserMessage(content=""),
    )
    budget = transcript_budget(1024, SUMMARY_PROMPT)
    messages = summary_messages(history, 5, SUMMARY_PROMPT, budget, 1024)
    assert estimate_tokens(messages[1:]) <= budget + 64


def test_regression_a_cut_whose_tail_is_dearer_than_its_average_is_trimmed_again() -> None:
    """After the fix above hypothesis found the next one: text cut to its *average* cost per
    character, when its tail costs more (ASCII first, CJK last, and the tail is the larger
    part kept), still ran past the budget. Now a cut is measured again and trimmed."""
    history = (
        SystemMessage("s"),
        UserMessage("a" * 20_000 + "\u65e5" * 5_000),
        AssistantMessage(content="ok"),
    )
    budget = transcript_budget(1024, SUMMARY_PROMPT)
    messages = summary_messages(history, 2, SUMMARY_PROMPT, budget, 1024)
    assert estimate_tokens(messages[1:]) <= budget + 64
