"""Request bodies validate against OUR OWN subset schema, whether or not ../shared exists.

The project has no copy of the official Chat Completions schema (it lives in
../shared/openai-schema, which a user's clone does not have). So that request
validation is still tested there, tests/kernel/fixtures/request-subset.schema.json
is a schema we wrote ourselves, clearly labelled as such, for exactly the fields
nano-code sends: model, messages (system/user/assistant/tool roles), assistant
tool_calls, tools, temperature, max_completion_tokens, stream, stream_options.
It is stricter than the official schema (unknown fields are refused).

When ../shared is present, the tests marked `shared` below also check that our
subset never accepts what the official schema refuses, so it cannot drift into
being looser than the real thing; test_request_schema.py keeps validating the
kernel's bodies against the official schema itself.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_helpers import SUBSET_SCHEMA, bodies_of_a_walk, schema_errors, subset_errors

from nano_code.kernel.request import build_request
from nano_code.kernel.types import (
    AssistantMessage,
    KernelConfig,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from nano_code.testing.strategies import DEMO_TOOLS, json_values, kernel_configs

OFFICIAL_SCHEMA = pytest.mark.shared("openai-schema", "chat-completions.schema.json")

SYSTEM = {"role": "system", "content": "You are a coding agent."}
USER = {"role": "user", "content": "List the files."}
CALL = {
    "id": "call_h4nd",
    "type": "function",
    "function": {"name": "shell", "arguments": '{"command": "ls"}'},
}
ASSISTANT_CALLING = {"role": "assistant", "content": None, "tool_calls": [CALL]}
TOOL_ANSWER = {"role": "tool", "tool_call_id": "call_h4nd", "content": "README.md\nsrc"}
ASSISTANT_TEXT = {"role": "assistant", "content": "There are two entries."}
TOOL_SPEC = {
    "type": "function",
    "function": {
        "name": "shell",
        "description": "Run a shell command.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
}

VALID: dict[str, dict[str, Any]] = {
    "minimal": {"model": "m", "messages": [SYSTEM, USER]},
    "a whole tool round": {
        "model": "qwen3-max",
        "messages": [SYSTEM, USER, ASSISTANT_CALLING, TOOL_ANSWER, ASSISTANT_TEXT, USER],
        "tools": [TOOL_SPEC],
        "temperature": 0.2,
        "max_completion_tokens": 2048,
        "stream": True,
        "stream_options": {"include_usage": True},
    },
    "text alongside tool calls": {
        "model": "m",
        "messages": [SYSTEM, USER, {**ASSISTANT_CALLING, "content": "Looking."}, TOOL_ANSWER],
        "tools": [TOOL_SPEC],
    },
    "temperature at both ends": {"model": "m", "messages": [SYSTEM, USER], "temperature": 2},
}


def _with(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `body` with the item at `path` replaced (or deleted when value is ...)."""
    changed = copy.deepcopy(body)
    target = changed
    for step in path[:-1]:
        target = target[step]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


ROUND = VALID["a whole tool round"]

INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "no model": (_with(ROUND, ("model",), ...), "'model' is a required property"),
    "no messages": (_with(ROUND, ("messages",), []), "messages"),
    "unknown role": (_with(ROUND, ("messages", 1, "role"), "robot"), "messages/1"),
    "user without content": (_with(ROUND, ("messages", 1, "content"), ...), "messages/1"),
    "user content not text": (_with(ROUND, ("messages", 1, "content"), 42), "messages/1"),
    "tool answer without tool_call_id": (_with(ROUND, ("messages", 3, "tool_call_id"), ...), "messages/3"),
    "empty tool_calls": (_with(ROUND, ("messages", 2, "tool_calls"), []), "messages/2"),
    "tool call without id": (_with(ROUND, ("messages", 2, "tool_calls", 0, "id"), ...), "messages/2"),
    "arguments as an object (QUIRKS B-10)": (
        _with(ROUND, ("messages", 2, "tool_calls", 0, "function", "arguments"), {"command": "ls"}),
        "messages/2",
    ),
    "arguments absent": (
        _with(ROUND, ("messages", 2, "tool_calls", 0, "function", "arguments"), ...),
        "messages/2",
    ),
    "tool call of another type": (
        _with(ROUND, ("messages", 2, "tool_calls", 0, "type"), "retrieval"),
        "messages/2",
    ),
    "assistant with neither text nor calls": (
        _with(ROUND, ("messages", 4, "content"), None),
        "messages/4",
    ),
    "tool of another type": (_with(ROUND, ("tools", 0, "type"), "code_interpreter"), "tools/0"),
    "tool name with a space": (_with(ROUND, ("tools", 0, "function", "name"), "run shell"), "tools/0"),
    "temperature above 2": (_with(ROUND, ("temperature",), 2.5), "temperature"),
    "max_completion_tokens not an integer": (
        _with(ROUND, ("max_completion_tokens",), "2048"),
        "max_completion_tokens",
    ),
    "include_usage not a boolean": (
        _with(ROUND, ("stream_options", "include_usage"), "yes"),
        "stream_options",
    ),
    "stream_options without stream": (_with(ROUND, ("stream",), ...), "stream"),
    "the seed's top-level system field": ({**ROUND, "system": "You are a coding agent."}, "system"),
}


def test_the_subset_schema_is_ours_and_says_so() -> None:
    """The file is labelled as our own subset and is not (a copy of) the official schema."""
    schema = json.loads(SUBSET_SCHEMA.read_text(encoding="utf-8"))
    assert "OUR OWN SUBSET" in schema["$comment"] and "NOT the official" in schema["$comment"]
    assert "subset" in schema["title"]
    assert "CreateChatCompletionRequest" not in schema["$defs"]
    assert set(schema["$defs"]["NanoCodeRequest"]["properties"]) == {
        "model",
        "messages",
        "tools",
        "temperature",
        "max_completion_tokens",
        "stream",
        "stream_options",
        "prompt_cache_key",
    }


@pytest.mark.parametrize("name", sorted(VALID))
def test_well_formed_bodies_pass_the_subset(name: str) -> None:
    assert subset_errors(VALID[name]) == []


@pytest.mark.parametrize("name", sorted(INVALID))
def test_each_broken_body_is_refused_by_the_subset(name: str) -> None:
    body, where = INVALID[name]
    errors = subset_errors(body)
    assert errors, f"{name}: accepted"
    assert any(where in error for error in errors), errors


def test_a_conversation_built_by_the_kernel_passes() -> None:
    """A hand-built history with every message kind, through `build_request`."""
    config = KernelConfig(
        model="m", system_prompt="s", tools=DEMO_TOOLS, stream=True, temperature=0.0, max_completion_tokens=64
    )
    history = (
        SystemMessage("s"),
        UserMessage("what time is it?"),
        AssistantMessage(content="", tool_calls=(ToolCall("nc0000002", "current_time", "{}"),)),
        ToolMessage(tool_call_id="nc0000002", content="12:00"),
        AssistantMessage(content="Noon."),
    )
    body = build_request(config, history)
    assert subset_errors(body) == []
    broken = _with(body, ("messages", 2, "tool_calls", 0, "function", "arguments"), {})
    assert subset_errors(broken), "the subset must see object arguments in a real body"


@given(data=st.data(), config=kernel_configs(), steps=st.integers(1, 25))
def test_request_bodies_validate_against_our_subset(
    data: st.DataObject, config: KernelConfig, steps: int
) -> None:
    """Every body of a random walk through the kernel passes our subset (no ../shared needed)."""
    for body in bodies_of_a_walk(data, config, steps):
        assert not subset_errors(body), subset_errors(body)


# ---------------------------------------------------------------- against the official schema


@OFFICIAL_SCHEMA
@pytest.mark.parametrize("name", sorted(VALID))
def test_what_the_subset_accepts_the_official_schema_accepts(name: str) -> None:
    assert schema_errors(VALID[name]) == []


@OFFICIAL_SCHEMA
def test_what_the_official_schema_refuses_the_subset_refuses_too() -> None:
    """Of the broken bodies, those the official schema refuses; ours refuses every one."""
    refused_officially = [name for name, (body, _) in INVALID.items() if schema_errors(body)]
    assert len(refused_officially) >= 10, refused_officially
    for name in refused_officially:
        assert subset_errors(INVALID[name][0]), name


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


@OFFICIAL_SCHEMA
@given(data=st.data(), config=kernel_configs(), steps=st.integers(1, 8))
def test_the_subset_is_never_looser_than_the_official_schema(
    data: st.DataObject, config: KernelConfig, steps: int
) -> None:
    """A kernel body with one value deleted or replaced: valid for us implies valid officially."""
    body = data.draw(st.sampled_from(bodies_of_a_walk(data, config, steps)), label="body")
    path = data.draw(st.sampled_from(_paths(body)), label="path")
    replacement = data.draw(st.just(...) | json_values(4), label="replacement")
    if replacement is ... and isinstance(path[-1], int):
        replacement = None
    mutated = _with(body, path, replacement)
    if not subset_errors(mutated):
        assert not schema_errors(mutated), (path, replacement, schema_errors(mutated))
