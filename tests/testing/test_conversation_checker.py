"""`nano_code.testing.conversation_problems`: the conversation rules, public, on every shape a
researcher has at hand (a request body, wire messages, the kernel's history, a kernel state)."""

from __future__ import annotations

from typing import Any

import pytest

from nano_code.kernel.events import ModelReply, ReplyToolCall, UserInput
from nano_code.kernel.machine import transition
from nano_code.kernel.state import Phase, initial_state
from nano_code.kernel.types import ApprovalMode, KernelConfig
from nano_code.testing import assert_valid_conversation, conversation_problems
from nano_code.testing.strategies import DEMO_TOOLS

SYSTEM = {"role": "system", "content": "s"}
USER = {"role": "user", "content": "u"}


def call(call_id: str, arguments: Any = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "shell", "arguments": arguments}}


def asks(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": list(calls)}


def answer(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": "ok"}


VALID = [
    SYSTEM,
    USER,
    asks(call("a"), call("b")),
    answer("b"),
    answer("a"),
    {"role": "assistant", "content": "x"},
]


def test_a_valid_conversation_in_every_shape() -> None:
    assert conversation_problems({"model": "m", "messages": VALID}) == []
    assert conversation_problems(VALID) == []
    assert conversation_problems(tuple(VALID)) == []
    assert_valid_conversation(VALID)


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([USER], "first message is not the system message"),
        ([SYSTEM, USER, SYSTEM], "a system message after the first"),
        ([SYSTEM, {"role": "robot", "content": "x"}], "unknown role"),
        ([SYSTEM, "user: hi"], "not a JSON object"),
        ([SYSTEM, USER, asks(call("a")), USER], "were not answered before it"),
        ([SYSTEM, USER, asks(call("a")), {"role": "assistant", "content": "x"}], "were not answered"),
        ([SYSTEM, USER, answer("zzz")], "orphan tool message for 'zzz'"),
        ([SYSTEM, USER, asks(call("a")), answer("a"), answer("a")], "answered twice"),
        ([SYSTEM, USER, asks(call("a")), answer("a"), asks(call("a")), answer("a")], "used twice"),
        ([SYSTEM, USER, asks(call("a"))], "ends with unanswered tool calls ['a']"),
        ([SYSTEM, USER, asks(call("a", {"k": 1})), answer("a")], "not a JSON string"),
        ([SYSTEM, USER, asks(call("a", "{")), answer("a")], "not JSON"),
        ([SYSTEM, USER, asks(call("a", "[1]")), answer("a")], "not a JSON object"),
        ([SYSTEM, USER, asks(call("a", '{"x": NaN}')), answer("a")], "not JSON"),
        ([SYSTEM, USER, asks(call("")), answer("")], "without an id"),
        ([SYSTEM, USER, {"role": "assistant", "content": None, "tool_calls": []}], "not a non-empty list"),
        ([SYSTEM, USER, asks({"id": "a", "type": "code"}), answer("a")], "not a function call"),
    ],
)
def test_each_broken_rule_is_named(messages: list[Any], problem: str) -> None:
    problems = conversation_problems({"messages": messages})
    assert any(problem in p for p in problems), problems
    with pytest.raises(AssertionError, match="not a valid conversation"):
        assert_valid_conversation(messages)


def test_things_that_are_no_conversation() -> None:
    assert conversation_problems({"model": "m"}) == ["the body has no messages"]
    assert conversation_problems({"messages": []}) == ["no messages"]
    assert conversation_problems("hello") == ["not a conversation: str"]
    assert conversation_problems(None) == ["not a conversation: NoneType"]


def test_pending_calls_may_be_open_at_the_end_and_only_they() -> None:
    waiting = [SYSTEM, USER, asks(call("a"), call("b")), answer("a")]
    assert conversation_problems(waiting, pending_ids=["b"]) == []
    assert any("unanswered" in p for p in conversation_problems(waiting))
    assert any("not open at the end: ['c']" in p for p in conversation_problems(waiting, ["b", "c"]))


CONFIG = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.AUTO)


def test_the_kernels_own_history_state_and_request_body() -> None:
    state, _ = transition(initial_state(CONFIG), UserInput("go"))
    reply = ModelReply(
        tool_calls=(
            ReplyToolCall("c1", "shell", '{"command": "ls"}'),
            ReplyToolCall("c2", "shell", '{"command": "pwd"}'),
        )
    )
    state, _ = transition(state, reply)
    assert state.phase is Phase.AWAITING_TOOL_RESULT
    pending = [p.call.id for p in state.pending]
    assert pending == ["c1", "c2"]
    # A state waiting for its tools: its pending calls may be open ...
    assert conversation_problems(state) == []
    assert conversation_problems(state.history, pending) == []
    # ... but the history alone, sent as it is, would break the rules.
    assert any("unanswered" in p for p in conversation_problems(state.history))
    first_request = transition(initial_state(CONFIG), UserInput("go"))[1][0]
    assert conversation_problems(first_request.body) == []  # the kernel's lazy RequestBody
