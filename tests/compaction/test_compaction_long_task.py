"""A 60-step task against a model whose context window is far too small for it: it completes.

The pure kernel is driven by a loop standing in for the driver, against a
simulated server that counts a request's tokens as its JSON length over 4,
answers a request past its limit with a real context-length error envelope
(decoded by the real codec), answers a summary request with a summary of what
the transcript shows, and otherwise plays a model working through numbered
steps, one shell call each, reading where it stands from the conversation
(the tool outputs, or the summary that replaced them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nano_code.kernel.actions import (
    CallModel,
    CallPurpose,
    EndTurn,
    RetryModel,
    RunTool,
    ShowText,
    TurnEnd,
    WaitForUser,
)
from nano_code.kernel.compaction import SUMMARY_HEADER
from nano_code.kernel.events import Event, ModelFailure, ModelReply, ReplyToolCall, ToolResult, UserInput
from nano_code.kernel.failures import classify_http_error
from nano_code.kernel.machine import transition
from nano_code.kernel.state import State, initial_state
from nano_code.kernel.types import ApprovalMode, AssistantMessage, KernelConfig, Usage, UserMessage
from nano_code.prompts import SUMMARY_PROMPT, SYSTEM_PROMPT
from nano_code.testing import conversation_problems
from nano_code.testing.compaction_strategies import CONTEXT_LENGTH_ERRORS
from nano_code.testing.strategies import DEMO_TOOLS

OPENAI_ERROR = next(t for name, _s, t, _l in CONTEXT_LENGTH_ERRORS if name == "openai")
DONE = re.compile(r"done step (\d+)")
SUMMARISED = re.compile(r"completed steps 1 to (\d+)")


def tokens_of(body: Mapping[str, Any]) -> int:
    return len(json.dumps(body)) // 4


@attrs.define
class SmallWindowModel:
    """A server with a `limit`-token context window and a model doing `steps` numbered steps."""

    steps: int
    limit: int
    output_chars: int = 600
    error_template: str = OPENAI_ERROR
    requests: list[dict[str, Any]] = attrs.Factory(list)
    overflows: int = 0
    summaries: int = 0
    largest_answered: int = 0

    def progress(self, text: str) -> int:
        """The highest step the text says is done, by a tool's output or an earlier summary."""
        found = [int(n) for n in DONE.findall(text)] + [int(n) for n in SUMMARISED.findall(text)]
        return max(found, default=0)

    def __call__(self, body: dict[str, Any]) -> ModelReply | ModelFailure:
        self.requests.append(body)
        assert conversation_problems(body) == [], conversation_problems(body)
        tokens = tokens_of(body)
        if tokens > self.limit:
            self.overflows += 1
            envelope = self.error_template % {"limit": self.limit, "used": tokens}
            return classify_http_error(400, {}, envelope.encode())
        self.largest_answered = max(self.largest_answered, tokens)
        usage = Usage(prompt_tokens=tokens, completion_tokens=30, total_tokens=tokens + 30)
        messages = body["messages"]
        done = self.progress(json.dumps(messages))
        if messages[0]["content"] == SUMMARY_PROMPT:
            self.summaries += 1
            assert "tools" not in body
            text = f"The user asked me to run steps 1 to {self.steps}. I completed steps 1 to {done}."
            return ModelReply(content=text, usage=usage)
        if done >= self.steps:
            return ModelReply(content=f"All {self.steps} steps done.", usage=usage)
        call = ReplyToolCall(
            id=f"call_{len(self.requests)}",
            name="shell",
            arguments=json.dumps({"command": f"step {done + 1}"}),
        )
        return ModelReply(tool_calls=(call,), usage=usage)

    def run_tool(self, action: RunTool) -> ToolResult:
        number = int(action.arguments["command"].split()[1])
        return ToolResult(action.call.id, f"done step {number}\n" + "x" * self.output_chars)


@attrs.define
class Outcome:
    state: State
    ends: list[EndTurn]
    ran: list[int]
    notices: list[str]
    calls: list[CallModel | RetryModel]


def run_task(config: KernelConfig, model: SmallWindowModel) -> Outcome:
    """Drive the kernel through one turn the way the driver does: perform each action, feed the answer."""
    state = initial_state(config)
    state, queue = transition(state, UserInput(f"Run steps 1 to {model.steps}, one shell call each."))
    ends: list[EndTurn] = []
    ran: list[int] = []
    notices: list[str] = []
    calls: list[CallModel | RetryModel] = []
    while queue:
        action = queue.pop(0)
        event: Event | None = None
        if isinstance(action, (CallModel, RetryModel)):
            calls.append(action)
            event = model(json.loads(json.dumps(dict(action.body))))
        elif isinstance(action, RunTool):
            ran.append(int(action.arguments["command"].split()[1]))
            event = model.run_tool(action)
        elif isinstance(action, EndTurn):
            ends.append(action)
        elif isinstance(action, ShowText):
            notices.append(action.text)
        elif isinstance(action, WaitForUser):
            break
        if event is not None:
            state, more = transition(state, event)
            assert conversation_problems(state) == []
            queue.extend(more)
    return Outcome(state, ends, ran, notices, calls)


def config_for(context_tokens: int = 128_000, **changes: Any) -> KernelConfig:
    return KernelConfig(
        model="m",
        system_prompt=SYSTEM_PROMPT,
        tools=DEMO_TOOLS,
        approval=ApprovalMode.AUTO,
        max_steps_per_turn=100,
        context_tokens=context_tokens,
        summary_prompt=SUMMARY_PROMPT,
        **changes,
    )


def check_completed(outcome: Outcome, model: SmallWindowModel) -> None:
    assert [end.reason for end in outcome.ends] == [TurnEnd.COMPLETED], outcome.ends
    assert outcome.ran == list(range(1, model.steps + 1)), "every step ran once, in order"
    assert outcome.state.history[-1].content == f"All {model.steps} steps done."  # type: ignore[union-attr]
    assert model.largest_answered <= model.limit
    step_calls = [c for c in outcome.calls if c.purpose is CallPurpose.STEP]
    assert len({c.step for c in step_calls}) == model.steps + 1
    assert outcome.state.session_usage.prompt_tokens == sum(
        tokens_of(r) for r in model.requests if tokens_of(r) <= model.limit
    )


def test_a_60_step_task_completes_in_a_window_the_server_states_only_when_overflowed() -> None:
    """nano-code believes in 128k tokens; the server has 6000. The first overflow teaches the
    window, is compacted and sent again; from then on compaction comes before the wall."""
    model = SmallWindowModel(steps=60, limit=6000)
    outcome = run_task(config_for(), model)
    check_completed(outcome, model)
    assert model.overflows == 1
    assert outcome.state.learned_context_tokens == 6000
    assert model.summaries >= 2
    history = outcome.state.history
    assert isinstance(history[2], AssistantMessage) and history[2].content.startswith(SUMMARY_HEADER)
    assert len(history) < 40
    assert any("no longer fits" in text for text in outcome.notices)
    assert any("near the context window" in text for text in outcome.notices)


def test_a_60_step_task_completes_with_the_summary_as_a_user_message_as_sessions_recorded_before() -> None:
    model = SmallWindowModel(steps=60, limit=6000)
    outcome = run_task(config_for(summary_as="user"), model)
    check_completed(outcome, model)
    history = outcome.state.history
    assert isinstance(history[1], UserMessage) and history[1].content.startswith(SUMMARY_HEADER)


def test_a_60_step_task_with_the_window_configured_never_overflows() -> None:
    model = SmallWindowModel(steps=60, limit=6000)
    outcome = run_task(config_for(6000), model)
    check_completed(outcome, model)
    assert model.overflows == 0 and model.summaries >= 2


@pytest.mark.parametrize(
    "server", [name for name, _status, _template, _states in CONTEXT_LENGTH_ERRORS], ids=str
)
def test_a_60_step_task_completes_whatever_the_server_says_on_overflow(server: str) -> None:
    """Each server's own wording; when it states no limit (Groq), every overflow is compacted
    and sent again instead of being learned from."""
    template = next(t for name, _s, t, _l in CONTEXT_LENGTH_ERRORS if name == server)
    model = SmallWindowModel(steps=60, limit=6000, error_template=template)
    outcome = run_task(config_for(), model)
    check_completed(outcome, model)
    states_limit = next(states for name, _s, _t, states in CONTEXT_LENGTH_ERRORS if name == server)
    if states_limit:
        assert outcome.state.learned_context_tokens == 6000 and model.overflows == 1
    else:
        assert outcome.state.learned_context_tokens is None
        assert model.overflows == model.summaries >= 2


@settings(max_examples=25, deadline=None)
@given(
    steps=st.integers(5, 40),
    limit=st.integers(3000, 12_000),
    output_chars=st.integers(0, 1500),
    configured=st.booleans(),
    server=st.sampled_from([name for name, _s, _t, _l in CONTEXT_LENGTH_ERRORS]),
    keep_recent=st.sampled_from([0.0, 0.1, 0.25, 0.4]),
)
def test_any_task_completes_in_any_small_window(
    steps: int, limit: int, output_chars: int, configured: bool, server: str, keep_recent: float
) -> None:
    template = next(t for name, _s, t, _l in CONTEXT_LENGTH_ERRORS if name == server)
    model = SmallWindowModel(steps=steps, limit=limit, output_chars=output_chars, error_template=template)
    config = config_for(limit if configured else 128_000, keep_recent=keep_recent)
    outcome = run_task(config, model)
    check_completed(outcome, model)
    if configured:
        assert model.overflows == 0
