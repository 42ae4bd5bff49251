"""The request checks every end-to-end test relies on must themselves catch what they promise to."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_helpers import SCHEMA_FILE, check_request, schema_validator

from nano_code.testing import conversation_problems


def _call(call_id: str, arguments: Any = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "shell", "arguments": arguments}}


def _body(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "system", "content": "s"}, *messages]}


USER = {"role": "user", "content": "u"}


def test_a_valid_conversation_passes() -> None:
    body = _body(
        USER,
        {"role": "assistant", "content": None, "tool_calls": [_call("a"), _call("b")]},
        {"role": "tool", "tool_call_id": "a", "content": "x"},
        {"role": "tool", "tool_call_id": "b", "content": "y"},
        {"role": "assistant", "content": "done"},
        USER,
    )
    assert conversation_problems(body) == []
    check_request({"path": "/v1/chat/completions", "body": body})


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([USER, {"role": "assistant", "content": None, "tool_calls": [_call("a")]}, USER], "not answered"),
        ([USER, {"role": "tool", "tool_call_id": "zzz", "content": "x"}], "orphan"),
        (
            [
                USER,
                {"role": "assistant", "content": None, "tool_calls": [_call("a")]},
                {"role": "tool", "tool_call_id": "a", "content": "x"},
                {"role": "tool", "tool_call_id": "a", "content": "x"},
            ],
            "answered twice",
        ),
        (
            [
                USER,
                {"role": "assistant", "content": None, "tool_calls": [_call("a", {"k": 1})]},
                {"role": "tool", "tool_call_id": "a", "content": "x"},
            ],
            "not a JSON string",
        ),
        ([USER, {"role": "assistant", "content": None, "tool_calls": [_call("a")]}], "unanswered"),
    ],
)
def test_broken_conversations_are_caught(messages: list[dict[str, Any]], problem: str) -> None:
    problems = conversation_problems(_body(*messages))
    assert any(problem in p for p in problems), problems


def test_the_system_message_must_come_first() -> None:
    assert conversation_problems({"messages": [USER]}) != []


def test_the_schema_check_rejects_a_bad_body() -> None:
    if not SCHEMA_FILE.exists():
        pytest.skip("../shared/openai-schema is not part of this checkout")
    assert schema_validator() is not None
    bad = _body(USER)
    bad["messages"][1] = {"role": "user"}  # content is required
    with pytest.raises(AssertionError, match="CreateChatCompletionRequest"):
        check_request({"path": "/v1/chat/completions", "body": json.loads(json.dumps(bad))})
