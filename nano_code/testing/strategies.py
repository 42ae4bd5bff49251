"""Hypothesis strategies for the values a driver feeds the kernel, quirks of real models included.

Wire renderings are in `wire_strategies`; conversations and context overflows in
`compaction_strategies`. Needs `hypothesis`, not pytest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from hypothesis import strategies as st

from nano_code.kernel.events import (
    FailureKind,
    ModelFailure,
    ModelReply,
    ReplyToolCall,
    ToolResult,
    UserInput,
)
from nano_code.kernel.types import (
    ApprovalMode,
    KernelConfig,
    PromptCache,
    RetryPolicy,
    SandboxMode,
    Server,
    ToolSpec,
    Usage,
)

__all__ = [
    "DEMO_TOOLS",
    "REAL_ID_SHAPES",
    "arguments_for",
    "call_ids",
    "json_values",
    "kernel_configs",
    "model_failures",
    "model_replies",
    "raw_arguments",
    "reply_tool_calls",
    "retry_policies",
    "sandbox_modes",
    "tool_results",
    "usages",
    "user_inputs",
]


def _object_schema(required: dict[str, str], **optional: str) -> dict[str, Any]:
    """The JSON Schema of an object with these property types, `required` ones first."""
    types = {**required, **optional}
    schema: dict[str, Any] = {"type": "object", "properties": {key: {"type": t} for key, t in types.items()}}
    if required:
        schema["required"] = list(required)
    return schema


DEMO_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="read_file",
        description="Read a text file.",
        parameters=_object_schema({"path": "string"}, offset="integer"),
        mutates=False,
        path_parameter="path",
    ),
    ToolSpec(
        name="write_file",
        description="Write a text file.",
        parameters=_object_schema({"path": "string", "content": "string"}),
        mutates=True,
        path_parameter="path",
    ),
    ToolSpec(
        name="shell",
        description="Run a shell command.",
        parameters=_object_schema({"command": "string"}, timeout="number"),
        mutates=True,
        sandboxed=True,
    ),
    ToolSpec(
        name="current_time",
        description="The current time; takes no arguments.",
        parameters=_object_schema({}),
        mutates=False,
    ),
)
"""Every approval path: read-only and mutating with a path, sandboxed without one, argument-less."""

_short_text = st.text(max_size=30)


def retry_policies() -> st.SearchStrategy[RetryPolicy]:
    """Retry policies, from impatient (one attempt) to the defaults."""
    return st.builds(
        RetryPolicy,
        max_attempts=st.integers(1, 6),
        base_delay=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
        max_delay=st.sampled_from([0.0, 4.0, 30.0]),
        max_server_wait=st.sampled_from([0.0, 10.0, 120.0]),
    )


def sandbox_modes() -> st.SearchStrategy[SandboxMode]:
    """Every sandbox mode, off included."""
    return st.sampled_from(SandboxMode)


def kernel_configs(
    tools: Sequence[ToolSpec] = DEMO_TOOLS,
    sandbox: st.SearchStrategy[SandboxMode] | None = None,
    compaction: bool = False,
) -> st.SearchStrategy[KernelConfig]:
    """Configurations with budgets small enough to be reached. The sandbox is off unless
    `sandbox` draws modes; with `compaction`, context windows small enough to trigger it."""
    if compaction:
        return st.builds(
            attrs.evolve,
            kernel_configs(tools, sandbox),
            summary_prompt=st.sampled_from(["Summarise the conversation.", ""]),
            context_tokens=st.sampled_from([1024, 2048, 8192, 128_000]),
            compact_at=st.sampled_from([0.5, 0.8, 1.0]),
            keep_recent=st.sampled_from([0.0, 0.1, 0.25, 0.45]),
        )
    return st.builds(
        KernelConfig,
        model=st.sampled_from(
            ["openai/gpt-4o-mini", "qwen3-max", "local-model", "anthropic/claude-sonnet-4.5"]
        ),
        system_prompt=st.sampled_from(["You are a coding agent.", ""]),
        tools=st.just(tuple(tools)),
        stream=st.booleans(),
        max_steps_per_turn=st.integers(1, 5),
        max_tool_output_chars=st.sampled_from([200, 1000, 30_000]),
        max_consecutive_malformed=st.integers(1, 3),
        retry=retry_policies(),
        approval=st.sampled_from(ApprovalMode),
        temperature=st.none() | st.sampled_from([0.0, 0.7, 2.0]),
        max_completion_tokens=st.none() | st.integers(1, 4096),
        sandbox=st.just(SandboxMode.OFF) if sandbox is None else sandbox,
        prompt_cache=st.sampled_from(PromptCache),
        server=st.sampled_from(Server),
        prompt_cache_key=st.none() | st.just("session-1"),
    )


def user_inputs() -> st.SearchStrategy[UserInput]:
    return st.builds(UserInput, text=st.text(max_size=40))


REAL_ID_SHAPES: tuple[str, ...] = (
    "call_MOtXZsU6lfOmXwoBOtXKpCth",  # OpenAI
    "call_00_6edlnw3Z1MgeMfey687g8451",  # DeepSeek
    "3sniiMddS",  # Mistral, 9 chars
    "b8847f144",  # Cerebras
    "fc_311ba17b-89f9-48d3-8fd9-7e74a1264855",  # Groq gpt-oss
    "chatcmpl-tool-bbb91941bf76335c",  # vLLM
    "toolu_vrtx_015QAXScZzRDPttiPoc34AdD",  # Anthropic via OpenRouter
    "tool_insert_level_with_spaces_3ZiChYzj8xER8HixJe7W",  # Gemini via OpenRouter
    "call_o2vnpxrw",  # Ollama
    "0",  # Novita / SGLang
    "1",
    "llm_version:0",  # Novita
)
"""Tool-call id formats seen in recorded traffic (QUIRKS A-4)."""


def call_ids(reuse: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """Ids as servers send them: real formats, empty, random, or an id already used."""
    options: list[st.SearchStrategy[str]] = [
        st.sampled_from(REAL_ID_SHAPES),
        st.just(""),
        st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=12),
    ]
    if reuse:
        options.append(st.sampled_from(list(reuse)))
    return st.one_of(options)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Arbitrary JSON-compatible values (standard JSON: no NaN or Infinity)."""
    return st.recursive(
        JSON_SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=max_leaves,
    )


def _value_of_type(json_type: object) -> st.SearchStrategy[Any]:
    by_type: dict[object, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=30),
        "integer": st.integers(-1000, 10**6),
        "number": st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False),
        "boolean": st.booleans(),
        "object": st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=3),
        "array": st.lists(JSON_SCALARS, max_size=3),
    }
    return by_type.get(json_type, JSON_SCALARS)


@st.composite
def arguments_for(draw: st.DrawFn, spec: ToolSpec) -> dict[str, Any]:
    """A valid arguments object for `spec`: every required parameter, right types."""
    properties = spec.parameters.get("properties", {})
    required = set(spec.required_parameters)
    arguments: dict[str, Any] = {}
    for name, schema in properties.items():
        if name in required or draw(st.booleans()):
            json_type = schema.get("type") if isinstance(schema, Mapping) else None
            arguments[name] = draw(_value_of_type(json_type))
    return arguments


_ENCODINGS: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":")},
    "spaced": {},
    "pretty": {"indent": 2},
    "unicode": {"ensure_ascii": False},
}


def _encode_arguments(arguments: Mapping[str, Any], style: str) -> str:
    return json.dumps(arguments, **_ENCODINGS[style])


_ARGUMENT_FAULTS = ["absent", "empty", "truncated", "garbage", "not_object", "missing", "wrong_type", "nan"]


@st.composite
def raw_arguments(draw: st.DrawFn, spec: ToolSpec | None) -> str | None:
    """The `arguments` text of a call to `spec`: mostly valid JSON in servers' styles; sometimes
    absent, "" (QUIRKS B-7, B-8), truncated, not JSON or not an object, missing or mistyping
    a required parameter, or using NaN/Infinity."""
    any_object = st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=3)
    valid: dict[str, Any] = draw(any_object if spec is None else arguments_for(spec))
    style = draw(st.sampled_from(list(_ENCODINGS)))
    kind = draw(st.sampled_from(["valid"] * 6 + _ARGUMENT_FAULTS))
    text = _encode_arguments(valid, style)
    if kind == "absent":
        return None
    if kind == "empty":
        return draw(st.sampled_from(["", " "]))
    if kind == "truncated" and len(text) > 1:
        return text[: draw(st.integers(1, len(text) - 1))]
    if kind == "garbage":
        return draw(st.sampled_from(["not json", "{'path': 'a'}", "{path: a}", "{}{}", '{"a":']))
    if kind == "not_object":
        return draw(st.sampled_from(["[]", "null", "1", '"text"', "[{}]", "true"]))
    if kind == "missing" and spec is not None and spec.required_parameters:
        dropped = draw(st.sampled_from(spec.required_parameters))
        return _encode_arguments({k: v for k, v in valid.items() if k != dropped}, style)
    if kind == "wrong_type" and spec is not None and spec.required_parameters:
        key = spec.required_parameters[0]
        return _encode_arguments({**valid, key: draw(st.sampled_from([[1], {"x": 1}, True, None]))}, style)
    if kind == "nan":
        return '{"value": NaN, "limit": Infinity}'
    return text


@st.composite
def reply_tool_calls(
    draw: st.DrawFn, tools: Sequence[ToolSpec] = DEMO_TOOLS, reuse_ids: Sequence[str] = ()
) -> ReplyToolCall:
    """One tool call as a server reports it, before the kernel checks it."""
    names = [spec.name for spec in tools]
    name = draw(
        st.sampled_from(names)
        if names and draw(st.integers(0, 9)) < 8
        else st.sampled_from(["", "no_such_tool", "Read File", "shell\n"])
    )
    spec = next((s for s in tools if s.name == name), None)
    return ReplyToolCall(id=draw(call_ids(reuse_ids)), name=name, arguments=draw(raw_arguments(spec)))


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    """Token counts as servers report them; totals may exceed prompt+completion (QUIRKS F-29)."""
    prompt = draw(st.integers(0, 200_000))
    completion = draw(st.integers(0, 20_000))
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion + draw(st.sampled_from([0, 0, 74, 196])),
        cached_tokens=(cached := draw(st.integers(0, prompt))),
        cache_write_tokens=draw(st.integers(0, prompt - cached)),
        reasoning_tokens=draw(st.integers(0, completion)),
        cost=draw(st.none() | st.sampled_from([0.0, 7.159e-05, 0.00435825, 1.5])),
    )


@st.composite
def model_replies(
    draw: st.DrawFn, tools: Sequence[ToolSpec] = DEMO_TOOLS, reuse_ids: Sequence[str] = ()
) -> ModelReply:
    """Decoded replies, realistic and quirky; `reuse_ids` (ids already used) give QUIRKS A-4's repeats."""
    calls = draw(st.lists(reply_tool_calls(tools, reuse_ids), max_size=3))
    return ModelReply(
        content=draw(st.sampled_from(["", "Done.", "Let me look."]) | _short_text),
        reasoning=draw(st.sampled_from(["", "The user wants a file."])),
        tool_calls=tuple(calls),
        finish_reason=draw(
            st.sampled_from(["tool_calls" if calls else "stop", "stop", "length", "", "error"]) | st.none()
        ),
        usage=draw(st.none() | usages()),
        model=draw(st.none() | st.just("openai/gpt-4o-mini")),
    )


_STATUS_BY_KIND: dict[FailureKind, list[int | None]] = {
    FailureKind.AUTH: [401, 403],
    FailureKind.RATE_LIMIT: [429, None],
    FailureKind.CONTEXT_OVERFLOW: [400, 413, None],
    FailureKind.SERVER_ERROR: [500, 502, 503, 408, 409],
    FailureKind.BAD_REQUEST: [400, 404, 422],
    FailureKind.MALFORMED: [None, 200],
    FailureKind.IN_BAND_ERROR: [None, 400, 429, 502],
    FailureKind.TRANSPORT: [None],
    FailureKind.TIMEOUT: [None],
    FailureKind.BAD_RESPONSE: [200, 500, None],
}


@st.composite
def model_failures(draw: st.DrawFn) -> ModelFailure:
    """A failed model call of every kind, with or without a server wait hint."""
    kind = draw(st.sampled_from(FailureKind))
    return ModelFailure(
        kind=kind,
        message=draw(st.sampled_from(["HTTP 500: boom", "connection reset", ""]) | _short_text),
        status=draw(st.sampled_from(_STATUS_BY_KIND[kind])),
        retry_after=draw(st.none() | st.sampled_from([0.0, 0.25, 18.642, 1e6])),
    )


@st.composite
def tool_results(draw: st.DrawFn, call_id: str) -> ToolResult:
    """What running a tool produced, sometimes long enough to be cut."""
    output = draw(st.text(max_size=50) | st.builds(lambda n: "line\n" * n, st.integers(0, 400)))
    return ToolResult(
        call_id=call_id,
        output=output,
        is_error=draw(st.booleans()),
        exit_status=draw(st.none() | st.integers(-9, 255)),
    )
