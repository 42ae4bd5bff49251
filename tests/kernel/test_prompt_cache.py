"""Prompt-cache markers: which a request carries, where, and what they may never change.

Properties over random walks through reachable states: at most four markers, the text never
changed, removing them gives exactly the body without markers, the encoder's bytes equal
`json.dumps` of the body, and each step's request starts with the previous step's messages.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_helpers import body_problems, draw_event
from message_text import text, unmarked

from nano_code.adapters.body_encoder import encode_body
from nano_code.kernel.actions import CallModel, CallPurpose, RetryModel, ShowText
from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply, UserInput
from nano_code.kernel.machine import transition
from nano_code.kernel.prompt_cache import (
    CACHE_CONTROL,
    OPENAI_BREAKPOINT,
    breakpoints,
    cache_key,
    cache_marker,
    refuses_markers,
)
from nano_code.kernel.request import RequestBody, build_request
from nano_code.kernel.response import decode_usage
from nano_code.kernel.state import Phase, initial_state
from nano_code.kernel.types import (
    AssistantMessage,
    KernelConfig,
    PromptCache,
    Server,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from nano_code.testing.strategies import kernel_configs

MARKER_KEYS = ("cache_control", "prompt_cache_breakpoint")


def config(model: str, server: Server = Server.OTHER, mode: PromptCache = PromptCache.AUTO) -> KernelConfig:
    return KernelConfig(
        model=model, system_prompt="sys", prompt_cache=mode, server=server, prompt_cache_key="k1"
    )


@pytest.mark.parametrize(
    ("model", "server", "mode", "marker"),
    [
        ("anthropic/claude-sonnet-4.5", Server.OPENROUTER, PromptCache.AUTO, CACHE_CONTROL),
        ("claude-sonnet-4-5", Server.OTHER, PromptCache.AUTO, CACHE_CONTROL),
        ("bedrock/us.anthropic.claude-3-5-haiku", Server.OTHER, PromptCache.AUTO, CACHE_CONTROL),
        ("Anthropic/Claude-Opus-4", Server.OTHER, PromptCache.AUTO, CACHE_CONTROL),
        ("google/gemini-2.5-pro", Server.OPENROUTER, PromptCache.AUTO, CACHE_CONTROL),
        ("gemini-2.5-pro", Server.OTHER, PromptCache.AUTO, None),  # Gemini direct caches on its own
        ("openai/gpt-5", Server.OPENROUTER, PromptCache.AUTO, None),
        ("gpt-5.5", Server.OPENAI, PromptCache.AUTO, None),
        ("gpt-5.6", Server.OPENAI, PromptCache.AUTO, OPENAI_BREAKPOINT),
        ("gpt-6-mini", Server.OPENAI, PromptCache.AUTO, OPENAI_BREAKPOINT),
        ("gpt-5.6", Server.OTHER, PromptCache.AUTO, None),
        ("qwen3-coder", Server.OTHER, PromptCache.AUTO, None),
        ("qwen3-coder", Server.OTHER, PromptCache.ON, CACHE_CONTROL),
        ("gpt-4.1", Server.OPENAI, PromptCache.ON, OPENAI_BREAKPOINT),
        ("anthropic/claude-sonnet-4.5", Server.OPENROUTER, PromptCache.OFF, None),
    ],
)
def test_which_marker_a_model_gets(model: str, server: Server, mode: PromptCache, marker: Any) -> None:
    assert cache_marker(config(model, server, mode)) == marker


def test_the_cache_key_goes_to_openais_own_server_only() -> None:
    assert cache_key(config("gpt-4.1", Server.OPENAI)) == "k1"
    assert cache_key(config("gpt-4.1", Server.OPENAI, PromptCache.OFF)) is None
    assert cache_key(config("openai/gpt-4.1", Server.OPENROUTER)) is None
    body = build_request(config("gpt-4.1", Server.OPENAI), (SystemMessage("sys"),))
    assert body["prompt_cache_key"] == "k1"
    assert "prompt_cache_key" not in build_request(config("gpt-4.1"), (SystemMessage("sys"),))


def _call(call_id: str) -> ToolCall:
    return ToolCall(call_id, "shell", "{}")


def test_markers_sit_on_the_system_prompt_the_previous_requests_end_and_the_newest_message() -> None:
    calls = tuple(_call(f"c{i}") for i in range(30))  # a step wider than the ~20-block lookback
    history = (
        SystemMessage("sys"),
        UserMessage("task"),
        AssistantMessage(tool_calls=calls),
        *(ToolMessage(f"c{i}", "ok") for i in range(30)),
    )
    assert breakpoints(history) == (0, 1, len(history) - 1)
    body = build_request(config("anthropic/claude-sonnet-4.5"), history)
    marked = [i for i, m in enumerate(body["messages"]) if isinstance(m["content"], list)]
    assert marked == [0, 1, len(history) - 1]
    assert body["messages"][1]["content"] == [{"type": "text", "text": "task", **CACHE_CONTROL}]


def test_empty_texts_and_call_only_replies_carry_no_marker() -> None:
    history = (
        SystemMessage(""),
        UserMessage("task"),
        AssistantMessage(tool_calls=(_call("a"),)),
        ToolMessage("a", ""),
    )
    assert breakpoints(history) == (1,)  # the empty tool output and the empty system prompt are skipped
    assert breakpoints((SystemMessage("sys"),)) == (0,)
    after_answer = (SystemMessage("s"), UserMessage("q"), AssistantMessage("answer"), UserMessage("next"))
    assert breakpoints(after_answer) == (0, 1, 3)


def test_a_model_of_another_family_gets_exactly_the_plain_body() -> None:
    history = (SystemMessage("sys"), UserMessage("task"))
    auto = build_request(config("qwen3-coder"), history)
    off = build_request(config("qwen3-coder", mode=PromptCache.OFF), history)
    assert auto == off == {"model": "qwen3-coder", "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "task"}], "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip


def marked_configs() -> st.SearchStrategy[KernelConfig]:
    """The property tests' configs with every marker choice: Claude, GPT-5.6 on OpenAI, or none."""
    models = st.sampled_from(
        [
            ("anthropic/claude-sonnet-4.5", Server.OPENROUTER),
            ("google/gemini-2.5-flash", Server.OPENROUTER),
            ("gpt-5.6", Server.OPENAI),
            ("gpt-4.1", Server.OPENAI),
            ("local-model", Server.OTHER),
        ]
    )
    return st.builds(
        lambda base, model, mode: attrs.evolve(
            base, model=model[0], server=model[1], prompt_cache=mode, prompt_cache_key="session-1"
        ),
        kernel_configs(),
        models,
        st.sampled_from(PromptCache),
    )


def walk(data: st.DataObject, start: KernelConfig, steps: int) -> list[CallModel | RetryModel]:
    """The model calls a random walk through reachable states makes."""
    state = initial_state(start)
    calls: list[CallModel | RetryModel] = []
    for _ in range(steps):
        state, actions = transition(state, draw_event(data, state))
        calls.extend(a for a in actions if isinstance(a, (CallModel, RetryModel)))
    return calls


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@given(data=st.data(), start=marked_configs(), steps=st.integers(1, 30))
def test_markers_never_change_a_body_but_by_marking_it(
    data: st.DataObject, start: KernelConfig, steps: int
) -> None:
    for call in walk(data, start, steps):
        body = call.body
        assert isinstance(body, RequestBody)
        built = dict(body)
        parts = [p for m in built["messages"] if isinstance(m["content"], list) for p in m["content"]]
        assert len([p for p in parts if set(p) & set(MARKER_KEYS)]) <= 4
        assert [text(m) for m in built["messages"]] == [m.content or "" for m in body.history]
        plain = build_request(attrs.evolve(body.config, prompt_cache=PromptCache.OFF), body.history)
        assert unmarked(built) == plain
        assert not body_problems(built), body_problems(built)
        assert encode_body(body) == _dumps(built)


@given(data=st.data(), start=marked_configs(), steps=st.integers(1, 40))
def test_each_request_begins_with_the_previous_requests_messages(
    data: st.DataObject, start: KernelConfig, steps: int
) -> None:
    """Through replies, tool results, approvals, retries and interrupts: only a compaction (not drawn
    here; tested in tests/compaction) may change the prefix, so implicit caches always hit."""
    steps_only = [dict(c.body) for c in walk(data, start, steps) if c.purpose is CallPurpose.STEP]
    for before, after in itertools.pairwise(steps_only):
        old, new = unmarked(before)["messages"], unmarked(after)["messages"]
        assert new[: len(old)] == old
        if start.prompt_cache is PromptCache.OFF:  # no markers: the bytes themselves extend
            assert _dumps(new)[: len(_dumps(old)) - 1] == _dumps(old)[:-1]


REFUSALS = [
    "messages.0.content.0.cache_control: Extra inputs are not permitted",
    "Unrecognized request argument supplied: prompt_cache_breakpoint",
    "1 validation error: extra inputs are not permitted",
]


def _awaiting_reply(start: KernelConfig) -> Any:
    state, _ = transition(initial_state(start), UserInput("hello"))
    assert state.phase is Phase.AWAITING_MODEL
    return state


@pytest.mark.parametrize("message", REFUSALS)
def test_a_refused_marker_costs_one_resend_then_none_for_the_session(message: str) -> None:
    start = config("anthropic/claude-sonnet-4.5", Server.OPENROUTER)
    state, actions = transition(_awaiting_reply(start), ModelFailure(FailureKind.BAD_REQUEST, message, 400))
    notice, resend = actions
    assert isinstance(notice, ShowText) and "without them" in notice.text
    assert isinstance(resend, RetryModel) and resend.delay == 0.0
    assert dict(resend.body) == build_request(
        attrs.evolve(start, prompt_cache=PromptCache.OFF), state.history
    )
    assert state.config.prompt_cache is PromptCache.OFF
    # the same refusal again is an ordinary failure: the turn ends, no loop
    state, actions = transition(state, ModelFailure(FailureKind.BAD_REQUEST, message, 400))
    assert state.phase is Phase.AWAITING_USER and not any(isinstance(a, RetryModel) for a in actions)
    # and the rest of the session has none
    state, actions = transition(state, UserInput("again"))
    (call,) = [a for a in actions if isinstance(a, CallModel)]
    assert not any(isinstance(m["content"], list) for m in dict(call.body)["messages"])


@pytest.mark.parametrize(
    ("start", "failure"),
    [
        (
            config("anthropic/claude-sonnet-4.5"),
            ModelFailure(FailureKind.BAD_REQUEST, "max_tokens too big", 400),
        ),
        (
            config("anthropic/claude-sonnet-4.5"),
            ModelFailure(FailureKind.SERVER_ERROR, "cache_control broke us", 500),
        ),
        (config("qwen3", mode=PromptCache.AUTO), ModelFailure(FailureKind.BAD_REQUEST, REFUSALS[0], 400)),
    ],
)
def test_other_failures_keep_the_markers(start: KernelConfig, failure: ModelFailure) -> None:
    assert not refuses_markers(start, failure)


def test_after_a_refusal_the_next_reply_goes_on_as_usual() -> None:
    start = config("anthropic/claude-sonnet-4.5")
    state, _ = transition(_awaiting_reply(start), ModelFailure(FailureKind.BAD_REQUEST, REFUSALS[0], 400))
    state, _ = transition(state, ModelReply(content="hi", tool_calls=(), finish_reason="stop"))
    assert state.phase is Phase.AWAITING_USER and state.history[-1] == AssistantMessage("hi")


def test_cache_figures_from_every_server_shape() -> None:
    openrouter = {"prompt_tokens": 900, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 800, "cache_write_tokens": 90}, "cost": 0.01}  # fmt: skip
    usage = decode_usage(openrouter)
    assert usage is not None and (usage.cached_tokens, usage.cache_write_tokens, usage.cost) == (
        800,
        90,
        0.01,
    )
    anthropic_names = {"prompt_tokens": 900, "completion_tokens": 10, "cache_read_input_tokens": 700, "cache_creation_input_tokens": 150}  # fmt: skip
    usage = decode_usage(anthropic_names)
    assert usage is not None and (usage.cached_tokens, usage.cache_write_tokens) == (700, 150)
    summed = decode_usage(openrouter) + decode_usage(anthropic_names)  # type: ignore[operator]
    assert (summed.cached_tokens, summed.cache_write_tokens) == (1500, 240)


def test_regression_a_model_name_of_endless_digits_is_just_a_name() -> None:
    """A recorded model name is data: 5000 digits once made int() raise inside the kernel."""
    assert cache_marker(config("gpt-" + "9" * 5000, Server.OPENAI)) is None
    assert cache_marker(config("gpt-5.60000", Server.OPENAI)) is None
    assert cache_marker(config("gpt-5.10", Server.OPENAI)) == OPENAI_BREAKPOINT
