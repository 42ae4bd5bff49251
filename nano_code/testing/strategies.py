"""Hypothesis strategies for what models and servers send, quirks included.

These are the building blocks of nano-code's own property tests, published so
that researchers can throw the same realistic (and realistically broken)
traffic at a changed kernel. Importing this module needs `hypothesis` but not
pytest.

Three layers:

* kernel values -- `kernel_configs`, `model_replies`, `model_failures`,
  `tool_results`, ...: the events a driver feeds `transition`, including the
  replies real models produce on a bad day (unknown tool names, truncated or
  invalid JSON arguments, missing required parameters, empty or repeated ids);
  `histories` draws valid conversations as the kernel keeps them and
  `context_overflows` the context-length errors of real servers (compaction);
* wire renderings -- `wire_replies` draws a reply that a server can express on
  the wire, `completion_bodies` renders it as a non-streamed JSON body and
  `sse_streams` as a server-sent-events stream, each with the deviations from
  the OpenAI reference that real servers show (the quirks catalogue kept
  beside development checkouts; tests/kernel/fixtures holds a hand-written
  body for each, and tests/kernel/test_standalone_quirks.py maps them) (empty or
  repeated ids, names repeated or blanked, arguments absent/null/""/an
  object/re-sent whole, index missing/reused/starting at 1, usage in a
  `choices: []` chunk or only in `x_groq`, three reasoning shapes, keep-alive
  comments, CRLF or lone-CR line endings, no `[DONE]`). Decoding either
  rendering must give back the reply exactly;
* raw input -- `json_values`, `sse_ish_bytes`, `byte_pieces`: anything at all,
  for totality fuzzing.
"""

from __future__ import annotations

import itertools
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
    AssistantMessage,
    KernelConfig,
    Message,
    RetryPolicy,
    SandboxMode,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)

__all__ = [
    "DEMO_TOOLS",
    "REAL_ID_SHAPES",
    "arguments_for",
    "byte_pieces",
    "call_ids",
    "CONTEXT_LENGTH_ERRORS",
    "completion_bodies",
    "context_overflows",
    "histories",
    "kernel_configs",
    "json_values",
    "model_failures",
    "model_replies",
    "raw_arguments",
    "reply_tool_calls",
    "retry_policies",
    "sandbox_modes",
    "sse_encode",
    "sse_ish_bytes",
    "sse_streams",
    "stream_chunks",
    "tool_results",
    "usages",
    "user_inputs",
    "wire_replies",
]

# ---------------------------------------------------------------- tools and config

DEMO_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="read_file",
        description="Read a text file.",
        parameters={
            "type": "object",
            "properties": {"path": {"type": "string"}, "offset": {"type": "integer"}},
            "required": ["path"],
        },
        mutates=False,
        path_parameter="path",
    ),
    ToolSpec(
        name="write_file",
        description="Write a text file.",
        parameters={
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
        mutates=True,
        path_parameter="path",
    ),
    ToolSpec(
        name="shell",
        description="Run a shell command.",
        parameters={
            "type": "object",
            "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
            "required": ["command"],
        },
        mutates=True,
        sandboxed=True,
    ),
    ToolSpec(
        name="current_time",
        description="The current time; takes no arguments.",
        parameters={"type": "object", "properties": {}},
        mutates=False,
    ),
)
"""A small tool set covering every approval path: read-only with a path,
mutating with a path, mutating without one (confined by the sandbox when one
is on, like the real shell), and argument-less."""

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
    """Configurations with small budgets, so limits are actually reached.

    The sandbox is off unless `sandbox` draws modes (e.g. `sandbox_modes()`):
    with one on, sandboxed tools run without approval. Compaction is off (no
    summary prompt) unless `compaction` is true: then it is on, with context
    windows small enough that drawn usage and overflows trigger it.
    """
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
        model=st.sampled_from(["openai/gpt-4o-mini", "qwen3-max", "local-model"]),
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
    )


def user_inputs() -> st.SearchStrategy[UserInput]:
    return st.builds(UserInput, text=st.text(max_size=40))


# ---------------------------------------------------------------- conversations and the context window

_SIZED_TEXT = st.text(max_size=30) | st.builds(
    lambda count, word: word * count,
    st.integers(1, 600),
    st.sampled_from(["word ", "x", "line of output\n", "\u65e5\u672c\u8a9e", '{"k": "v"} ']),
)
"""Message text from empty to several kilobytes (tool output is where a context window goes)."""


@st.composite
def histories(
    draw: st.DrawFn, tools: Sequence[ToolSpec] = DEMO_TOOLS, max_pieces: int = 14
) -> tuple[Message, ...]:
    """Valid conversations as the kernel keeps them in `State.history`.

    The system prompt, sometimes an earlier compaction's summary (either
    placement, with its framing), then up to `max_pieces` pieces: a user message, an
    assistant message with text, or an assistant message with one to three tool
    calls (unique ids) followed by their answers. Texts range from empty to
    several kilobytes, so compaction has something to weigh.
    """
    from nano_code.kernel.compaction import NOTES_CONTINUE, NOTES_INTRO, SUMMARY_ACK, summary_text

    history: list[Message] = [SystemMessage(draw(st.sampled_from(["You are a coding agent.", ""])))]
    if draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):  # the summary as the agent's notes
            history.append(UserMessage(NOTES_INTRO))
            history.append(AssistantMessage(content=summary_text(draw(_SIZED_TEXT), 128_000, "assistant")))
            if draw(st.booleans()):
                history.append(UserMessage(NOTES_CONTINUE))
        else:  # as sessions recorded before that
            history.append(UserMessage(summary_text(draw(_SIZED_TEXT), 128_000, "user")))
            if draw(st.booleans()):
                history.append(AssistantMessage(content=SUMMARY_ACK))
    number = 0
    for _ in range(draw(st.integers(0, max_pieces))):
        kind = draw(st.sampled_from(["user", "text", "calls", "calls"]))
        if kind == "user":
            history.append(UserMessage(draw(_SIZED_TEXT)))
        elif kind == "text":
            reasoning = draw(st.none() | _short_text)
            history.append(AssistantMessage(content=draw(_SIZED_TEXT), reasoning=reasoning))
        else:
            calls = []
            for _ in range(draw(st.integers(1, 3))):
                number += 1
                spec = draw(st.sampled_from(list(tools)))
                arguments = json.dumps(draw(arguments_for(spec)))
                calls.append(ToolCall(id=f"call_{number}", name=spec.name, arguments=arguments))
            content = draw(st.none() | _SIZED_TEXT)
            history.append(AssistantMessage(content=content, tool_calls=tuple(calls)))
            history.extend(ToolMessage(tool_call_id=call.id, content=draw(_SIZED_TEXT)) for call in calls)
    return tuple(history)


CONTEXT_LENGTH_ERRORS: tuple[tuple[str, int, str, bool], ...] = (
    (
        "openai",
        400,
        '{"error":{"message":"This model\'s maximum context length is %(limit)d tokens. However, your '
        'messages resulted in %(used)d tokens. Please reduce the length of the messages.",'
        '"type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}',
        True,
    ),
    (
        "vllm",
        400,
        '{"object":"error","message":"This model\'s maximum context length is %(limit)d tokens. However, '
        "you requested %(used)d tokens (%(used)d in the messages, 0 in the completion). Please reduce "
        'the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}',
        True,
    ),
    (
        "vllm-v1",
        400,
        '{"object":"error","message":"The decoder prompt (length %(used)d) is longer than the maximum '
        "model length of %(limit)d. Make sure that `max_model_len` is no smaller than the number of "
        'text tokens.","type":"BadRequestError","param":null,"code":400}',
        True,
    ),
    (
        "deepseek",
        400,
        '{"error":{"message":"This model\'s maximum context length is %(limit)d tokens. However, you '
        "requested %(used)d tokens (%(used)d in the messages, 0 in the completion). Please reduce the "
        'length of the messages or completion.","type":"invalid_request_error","param":null,'
        '"code":"invalid_request_error"}}',
        True,
    ),
    (
        "anthropic-via-openrouter",
        400,
        '{"error":{"message":"Provider returned error","code":400,"metadata":{"raw":"{\\"type\\":'
        '\\"error\\",\\"error\\":{\\"type\\":\\"invalid_request_error\\",\\"message\\":'
        '\\"prompt is too long: %(used)d tokens > %(limit)d maximum\\"}}","provider_name":"Anthropic"}}}',
        True,
    ),
    (
        "openrouter",
        400,
        '{"error":{"message":"This endpoint\'s maximum context length is %(limit)d tokens. However, you '
        "requested about %(used)d tokens (%(used)d of text input). Please reduce the length of either "
        'one, or use the \\"middle-out\\" transform to compress your prompt automatically.","code":400}}',
        True,
    ),
    (
        "mistral",
        400,
        '{"object":"error","message":"Prompt contains %(used)d tokens and 0 draft tokens, too large for '
        'model with %(limit)d maximum context length","type":"invalid_request_message_error",'
        '"param":null,"code":"3051"}',
        True,
    ),
    (
        "gemini",
        400,
        '[{"error":{"code":400,"message":"The input token count (%(used)d) exceeds the maximum number '
        'of tokens allowed (%(limit)d).","status":"INVALID_ARGUMENT"}}]',
        True,
    ),
    (
        "llama.cpp",
        400,
        '{"error":{"code":400,"message":"the request exceeds the available context size, try '
        'increasing it","type":"exceed_context_size_error","n_prompt_tokens":%(used)d,"n_ctx":%(limit)d}}',
        True,
    ),
    (
        "xai",
        400,
        '{"code":"Client specified an invalid argument","error":"This model\'s maximum prompt length '
        'is %(limit)d but the request contains %(used)d tokens."}',
        True,
    ),
    (
        "cohere",
        400,
        '{"message":"too many tokens: total number of tokens in the prompt cannot exceed %(limit)d - '
        'received %(used)d. Try using a shorter prompt, or enabling prompt truncation."}',
        True,
    ),
    (
        "groq",
        400,
        '{"error":{"message":"Please reduce the length of the messages or completion.",'
        '"type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}',
        False,
    ),
)
"""Context-length errors as servers send them: (server, HTTP status, body with %(limit)d and
%(used)d to fill in, whether the body states the limit). Transcribed from real responses and
issue reports; only the numbers change."""


@st.composite
def context_overflows(draw: st.DrawFn) -> tuple[str, int, bytes, int | None]:
    """A context-length error response: (server, status, body, the limit it states or None)."""
    server, status, template, states_limit = draw(st.sampled_from(CONTEXT_LENGTH_ERRORS))
    limit = draw(
        st.sampled_from([2048, 4096, 8192, 32_768, 128_000, 200_000, 1_048_576])
        | st.integers(1024, 2_000_000)
    )
    used = limit + draw(st.integers(1, 100_000))
    body = (template % {"limit": limit, "used": used}).encode()
    return server, status, body, limit if states_limit else None


# ---------------------------------------------------------------- ids and arguments

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


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Arbitrary JSON-compatible values (standard JSON: no NaN or Infinity)."""
    return st.recursive(
        _JSON_SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=max_leaves,
    )


def _value_of_type(json_type: object) -> st.SearchStrategy[Any]:
    by_type: dict[object, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=30),
        "integer": st.integers(-1000, 10**6),
        "number": st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False),
        "boolean": st.booleans(),
        "object": st.dictionaries(st.text(max_size=5), _JSON_SCALARS, max_size=3),
        "array": st.lists(_JSON_SCALARS, max_size=3),
    }
    return by_type.get(json_type, _JSON_SCALARS)


@st.composite
def arguments_for(draw: st.DrawFn, spec: ToolSpec) -> dict[str, Any]:
    """A valid arguments object for `spec`: every required parameter, right types."""
    properties = spec.parameters.get("properties", {})
    required = set(spec.required_parameters)
    arguments: dict[str, Any] = {}
    for name, schema in properties.items():
        if name in required or draw(st.booleans()):
            arguments[name] = draw(
                _value_of_type(schema.get("type") if isinstance(schema, Mapping) else None)
            )
    return arguments


def _encode_arguments(arguments: Mapping[str, Any], style: str) -> str:
    if style == "pretty":
        return json.dumps(arguments, indent=2)
    if style == "spaced":
        return json.dumps(arguments)
    if style == "unicode":
        return json.dumps(arguments, ensure_ascii=False)
    return json.dumps(arguments, separators=(",", ":"))


@st.composite
def raw_arguments(draw: st.DrawFn, spec: ToolSpec | None) -> str | None:
    """The `arguments` text of a call to `spec`, as a real model might send it.

    Mostly valid JSON in the formatting styles servers use; sometimes absent
    (None), "" (QUIRKS B-7, B-8), truncated mid-object, not JSON at all, JSON
    that is not an object, missing a required parameter, with a wrongly typed
    value, or using the non-standard NaN/Infinity constants.
    """
    if spec is None:
        valid: dict[str, Any] = draw(st.dictionaries(st.text(max_size=5), _JSON_SCALARS, max_size=3))
    else:
        valid = draw(arguments_for(spec))
    style = draw(st.sampled_from(["compact", "spaced", "pretty", "unicode"]))
    kind = draw(
        st.sampled_from(
            ["valid"] * 6
            + ["absent", "empty", "truncated", "garbage", "not_object", "missing", "wrong_type", "nan"]
        )
    )
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


def usages() -> st.SearchStrategy[Usage]:
    """Token counts as servers report them; totals may exceed prompt+completion (QUIRKS F-29)."""

    @st.composite
    def build(draw: st.DrawFn) -> Usage:
        prompt = draw(st.integers(0, 200_000))
        completion = draw(st.integers(0, 20_000))
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion + draw(st.sampled_from([0, 0, 74, 196])),
            cached_tokens=draw(st.integers(0, prompt)),
            reasoning_tokens=draw(st.integers(0, completion)),
            cost=draw(st.none() | st.sampled_from([0.0, 7.159e-05, 0.00435825, 1.5])),
        )

    return build()


@st.composite
def model_replies(
    draw: st.DrawFn, tools: Sequence[ToolSpec] = DEMO_TOOLS, reuse_ids: Sequence[str] = ()
) -> ModelReply:
    """Decoded replies, realistic and quirky, as the kernel receives them.

    `reuse_ids` are ids already in the conversation; drawing from them
    produces the repeated ids of QUIRKS A-4 (SGLang numbers ids per request).
    """
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


# ---------------------------------------------------------------- wire renderings

_WIRE_TEXT = st.text(max_size=40)


@st.composite
def wire_replies(draw: st.DrawFn, max_calls: int = 3) -> ModelReply:
    """A reply a server can express on the wire, so decoding must give it back exactly.

    Non-empty ids are distinct (a stream merges deltas by id); empty ids may
    repeat. `finish_reason` is never "" (servers' "" means null) and `model`
    never "" for the same reason.
    """
    count = draw(st.integers(0, max_calls))
    ids = draw(st.lists(call_ids(), min_size=count, max_size=count))
    seen: set[str] = set()
    calls = []
    for position, raw_id in enumerate(ids):
        call_id = raw_id if raw_id == "" or raw_id not in seen else f"{raw_id}_{position}"
        seen.add(call_id)
        name = draw(st.sampled_from(["read_file", "shell", "current_time", "get_weather", ""]))
        arguments = draw(
            st.none()
            | st.just("")
            | json_values(6).map(lambda v: json.dumps({"v": v}, ensure_ascii=False))
            | st.builds(
                lambda d: json.dumps(d), st.dictionaries(st.text(max_size=6), _JSON_SCALARS, max_size=3)
            )
            # Free text without both braces: "{}{}" cut between the objects is
            # indistinguishable on the wire from a whole value re-sent (QUIRKS B-9),
            # which the assembler deliberately takes as a re-send.
            | _WIRE_TEXT.filter(lambda t: not ("{" in t and "}" in t))
        )
        calls.append(ReplyToolCall(id=call_id, name=name, arguments=arguments))
    return ModelReply(
        content=draw(_WIRE_TEXT),
        reasoning=draw(st.just("") | _WIRE_TEXT),
        tool_calls=tuple(calls),
        finish_reason=draw(st.none() | st.sampled_from(["stop", "tool_calls", "length", "content_filter"])),
        usage=draw(st.none() | usages()),
        model=draw(st.none() | st.sampled_from(["gpt-4o-2024-08-06", "moonshotai/kimi-k2"])),
    )


def _is_canonical_object(arguments: str | None) -> bool:
    """True when `arguments` is exactly how the codec serialises a JSON object."""
    if not arguments:
        return False
    try:
        value = json.loads(arguments)
    except ValueError:
        return False
    return isinstance(value, dict) and json.dumps(value, ensure_ascii=False) == arguments


@st.composite
def _usage_payload(draw: st.DrawFn, usage: Usage) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.total_tokens == usage.prompt_tokens + usage.completion_tokens and draw(st.booleans()):
        del payload["total_tokens"]  # the codec recomputes an absent total
    placement = draw(st.sampled_from(["details", "deepseek", "hf", "mistral"]))
    if placement == "details" or usage.cached_tokens == 0:
        payload["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens, "audio_tokens": 0}
    elif placement == "deepseek":
        payload["prompt_cache_hit_tokens"] = usage.cached_tokens
        payload["prompt_cache_miss_tokens"] = usage.prompt_tokens - usage.cached_tokens
    elif placement == "hf":
        payload["cached_tokens"] = usage.cached_tokens
    else:
        payload["num_cached_tokens"] = usage.cached_tokens
    payload["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    if usage.cost is not None:
        payload["cost"] = usage.cost
        payload["is_byok"] = False
    return payload


@st.composite
def _reasoning_fields(draw: st.DrawFn, reasoning: str) -> dict[str, Any]:
    if not reasoning:
        return draw(st.sampled_from([{}, {"reasoning": None}, {"reasoning_content": None}]))
    shape = draw(st.sampled_from(["reasoning_content", "reasoning", "details", "both"]))
    details = [{"type": "reasoning.text", "text": reasoning, "index": 0, "format": None}]
    if shape == "details":
        return {"reasoning": None, "reasoning_details": details}
    if shape == "both":
        return {"reasoning": reasoning, "reasoning_details": details}
    return {shape: reasoning}


@st.composite
def completion_bodies(draw: st.DrawFn, reply: ModelReply) -> bytes:
    """`reply` as a non-streamed /chat/completions body, in one of the real shapes.

    Varies: content null/""/absent/array of parts (with Mistral "thinking"
    parts carrying the reasoning), tool-call `index` present, `arguments`
    absent or null when there are none or an object (llama.cpp), empty
    `finish_reason`, extra vendor fields, compact or pretty formatting.
    """
    message: dict[str, Any] = {"role": "assistant"}
    thinking_in_content = bool(reply.reasoning) and draw(st.booleans())
    if thinking_in_content:
        parts: list[dict[str, Any]] = [
            {"type": "thinking", "thinking": [{"type": "text", "text": reply.reasoning}]}
        ]
        if reply.content:
            parts.append({"type": "text", "text": reply.content})
        message["content"] = parts
    else:
        if reply.content:
            message["content"] = draw(
                st.sampled_from([reply.content, [{"type": "text", "text": reply.content}]])
            )
        else:
            choice = draw(st.sampled_from(["null", "empty", "absent"]))
            if choice != "absent":
                message["content"] = None if choice == "null" else ""
        message.update(draw(_reasoning_fields(reply.reasoning)))
    if reply.tool_calls:
        calls = []
        with_index = draw(st.booleans())
        for position, call in enumerate(reply.tool_calls):
            function: dict[str, Any] = {"name": call.name}
            if call.arguments is None:
                if draw(st.booleans()):
                    function["arguments"] = None
            elif _is_canonical_object(call.arguments) and draw(st.booleans()):
                function["arguments"] = json.loads(call.arguments)
            else:
                function["arguments"] = call.arguments
            item: dict[str, Any] = {"id": call.id, "type": "function", "function": function}
            if call.id == "" and draw(st.booleans()):
                del item["id"]
            if with_index:
                item["index"] = position
            calls.append(item)
        message["tool_calls"] = calls
    elif draw(st.booleans()):
        message["tool_calls"] = []
    choice_payload: dict[str, Any] = {"index": 0, "message": message, "logprobs": None}
    if reply.finish_reason is not None:
        choice_payload["finish_reason"] = reply.finish_reason
    else:
        absent = draw(st.sampled_from(["null", "empty", "absent"]))
        if absent != "absent":
            choice_payload["finish_reason"] = None if absent == "null" else ""
    body: dict[str, Any] = {
        "id": draw(st.sampled_from(["chatcmpl-abc", "", "gen-1753242299-QZRAt5HJHd1ptY8sdS0s"])),
        "object": "chat.completion",
        "created": 1753242299,
        "choices": [choice_payload],
    }
    if reply.model is not None:
        body["model"] = reply.model
    if reply.usage is not None:
        body["usage"] = draw(_usage_payload(reply.usage))
    if draw(st.booleans()):
        body["system_fingerprint"] = "fp_ollama"
        body["provider"] = "Novita"
    return json.dumps(body, indent=draw(st.sampled_from([None, 2]))).encode()


def _split(draw: st.DrawFn, text: str, max_pieces: int = 5) -> list[str]:
    if not text:
        return []
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=max_pieces - 1)))
    cuts = [c for c in cuts if 0 < c < len(text)]
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def stream_chunks(draw: st.DrawFn, reply: ModelReply) -> list[dict[str, Any]]:
    """`reply` as a list of chat.completion.chunk objects, quirkily fragmented.

    Covers: Azure's leading `choices: []` chunk; reasoning deltas in any of the
    three shapes or as Mistral thinking parts; content split anywhere; tool
    calls whole in one delta (Groq, xAI) or argument fragments (OpenAI), an
    extra `arguments: ""` delta (Anthropic), arguments as an object
    (llama.cpp) or re-sent whole (Novita); index per call, missing, all 0, or
    starting at 1; id and name repeated on every delta or blanked on
    continuations; `finish_reason` on its own chunk or absent; usage in a
    final `choices: []` chunk, on a chunk with a delta, or only in `x_groq`.
    """
    model = reply.model or ""
    envelope = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 0, "model": model}
    chunks: list[dict[str, Any]] = []
    null_usage = draw(st.booleans())

    def chunk(delta: dict[str, Any], finish: object = None, **extra: Any) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        if finish is not None or draw(st.booleans()):
            choice["finish_reason"] = finish
        payload = {**envelope, "choices": [choice], **extra}
        if null_usage and "usage" not in payload:
            payload["usage"] = None
        return payload

    if draw(st.booleans()):
        chunks.append({"choices": [], "id": "", "model": "", "object": "", "prompt_filter_results": []})
    chunks.append(chunk({"role": "assistant", "content": draw(st.sampled_from([None, ""]))}))

    reasoning_shape = draw(st.sampled_from(["reasoning_content", "reasoning", "details", "both", "thinking"]))
    for piece in _split(draw, reply.reasoning):
        if reasoning_shape == "thinking":
            delta: dict[str, Any] = {
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": piece}], "closed": True}
                ]
            }
        elif reasoning_shape in ("details", "both"):
            details = [{"type": "reasoning.text", "text": piece, "index": 0, "format": None}]
            delta = {"reasoning": piece if reasoning_shape == "both" else None, "reasoning_details": details}
        else:
            delta = {reasoning_shape: piece, "content": None}
        chunks.append(chunk(delta))
    for piece in _split(draw, reply.content):
        as_parts = draw(st.booleans())
        chunks.append(chunk({"content": [{"type": "text", "text": piece}] if as_parts else piece}))

    ids = [c.id for c in reply.tool_calls]
    ids_distinct = all(ids) and len(set(ids)) == len(ids)
    index_mode = draw(
        st.sampled_from(["from0", "from1", "missing", "all0"]) if ids_distinct else st.just("from0")
    )
    for position, call in enumerate(reply.tool_calls):
        index = {"from0": position, "from1": position + 1, "all0": 0}.get(index_mode)
        as_object = _is_canonical_object(call.arguments) and draw(st.booleans())
        if call.arguments is None:
            pieces: list[Any] = [None] if draw(st.booleans()) else []
        elif as_object:
            pieces = [json.loads(call.arguments or "{}")]
        else:
            pieces = _split(draw, call.arguments, 6)
            if draw(st.booleans()) or not pieces:
                pieces.insert(0, "")  # OpenAI opens with arguments ""
            if draw(st.booleans()):
                pieces.insert(1, "")  # Anthropic's extra empty delta
        repeat_id = draw(st.booleans())
        name_later = draw(st.sampled_from(["omit", "repeat", "blank"]))
        first = True
        for piece in pieces or [Ellipsis]:
            function: dict[str, Any] = {}
            if first or name_later == "repeat":
                function["name"] = call.name
            elif name_later == "blank":
                function["name"] = ""
            if piece is not Ellipsis and (piece is not None or draw(st.booleans())):
                function["arguments"] = piece
            item: dict[str, Any] = {"function": function, "type": "function"}
            if first or repeat_id:
                item["id"] = call.id
            elif draw(st.booleans()) and index is not None:
                item["id"] = ""  # DashScope's empty id on continuations
            if index is not None:
                item["index"] = index
            chunks.append(chunk({"tool_calls": [item]}))
            first = False
        if call.arguments and not as_object and _is_canonical_object(call.arguments) and draw(st.booleans()):
            resend: dict[str, Any] = {"function": {"arguments": call.arguments}, "id": call.id}
            if index is not None:
                resend["index"] = index
            chunks.append(chunk({"tool_calls": [resend]}))

    usage_payload = draw(_usage_payload(reply.usage)) if reply.usage is not None else None
    placement = draw(st.sampled_from(["final_chunk", "finish_chunk", "x_groq"]))
    finish = reply.finish_reason
    if finish is not None or draw(st.booleans()):
        extra: dict[str, Any] = {}
        if usage_payload is not None and placement == "finish_chunk":
            extra["usage"] = usage_payload
        elif usage_payload is not None and placement == "x_groq":
            extra["x_groq"] = {"id": "req_01", "usage": usage_payload}
        chunks.append(chunk({}, finish, **extra))
        if placement != "final_chunk":
            usage_payload = None
    if usage_payload is not None:
        chunks.append({**envelope, "choices": [], "usage": usage_payload})
    return chunks


def sse_encode(
    payloads: Sequence[Any],
    *,
    line_end: str = "\n",
    space_after_colon: bool = True,
    keepalive_every: int = 0,
    done: bool = True,
    multiline_data: bool = False,
) -> bytes:
    """Frame JSON payloads as server-sent events.

    `multiline_data` spreads each JSON payload over several `data:` lines
    (legal SSE; the lines are joined with newlines). `keepalive_every` puts
    an OpenRouter-style comment before every n-th event.
    """
    space = " " if space_after_colon else ""
    out: list[str] = []
    for number, payload in enumerate(payloads):
        if keepalive_every and number % keepalive_every == 0:
            out.append(f": OPENROUTER PROCESSING{line_end}{line_end}")
        text = json.dumps(payload, indent=1 if multiline_data else None)
        for line in text.split("\n"):
            out.append(f"data:{space}{line}{line_end}")
        out.append(line_end)
    if done:
        out.append(f"data:{space}[DONE]{line_end}{line_end}")
    return "".join(out).encode()


@st.composite
def sse_streams(draw: st.DrawFn, reply: ModelReply) -> bytes:
    """`reply` as a complete SSE body: quirky chunks, quirky framing."""
    chunks = draw(stream_chunks(reply))
    return sse_encode(
        chunks,
        line_end=draw(st.sampled_from(["\n", "\r\n", "\r"])),
        space_after_colon=draw(st.booleans()),
        keepalive_every=draw(st.sampled_from([0, 0, 1, 3])),
        done=draw(st.booleans()),
        multiline_data=draw(st.booleans()),
    )


# ---------------------------------------------------------------- raw input


@st.composite
def byte_pieces(draw: st.DrawFn, data: bytes, max_pieces: int = 40) -> list[bytes]:
    """`data` cut at arbitrary boundaries (pieces may be empty)."""
    if not data:
        return [b""]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=max_pieces - 1)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


_SSE_LINES = st.one_of(
    st.sampled_from(
        [
            "data: [DONE]",
            ": OPENROUTER PROCESSING",
            "event: error",
            "event: message",
            "data:",
            "",
            "retry: 100",
            'data: {"choices":[{"delta":{"content":"hi"}}]}',
            'data: {"error":{"message":"boom","code":502}}',
            'data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"","function":{"arguments":"{"}}]}}]}',
            'data: {"choices":[],"usage":{"prompt_tokens":1}}',
        ]
    ),
    json_values(6).map(lambda v: "data: " + json.dumps(v)),
    st.text(max_size=30),
)


@st.composite
def sse_ish_bytes(draw: st.DrawFn) -> bytes:
    """Text that looks a bit like SSE (or not at all), with any line endings."""
    lines = draw(st.lists(_SSE_LINES, max_size=12))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = ending.join(lines)
    if draw(st.booleans()):
        return text.encode("utf-8", "surrogatepass") + draw(st.binary(max_size=8))
    return text.encode("utf-8", "surrogatepass")
