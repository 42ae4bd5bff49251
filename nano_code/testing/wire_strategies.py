"""Hypothesis strategies for what arrives on the wire: replies as JSON bodies and SSE streams, and raw bytes.

`completion_bodies` and `sse_streams` render a `wire_replies` reply with real servers' deviations;
decoding must give it back exactly. `byte_pieces` and `sse_ish_bytes` are for totality fuzzing.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any, TypeGuard, TypeVar

from hypothesis import strategies as st

from nano_code.kernel.events import ModelReply, ReplyToolCall
from nano_code.kernel.types import Usage
from nano_code.testing.strategies import JSON_SCALARS, call_ids, json_values, usages

__all__ = [
    "byte_pieces",
    "completion_bodies",
    "sse_encode",
    "sse_ish_bytes",
    "sse_streams",
    "stream_chunks",
    "wire_replies",
]

_WIRE_TEXT = st.text(max_size=40)
_Sliceable = TypeVar("_Sliceable", str, bytes)


@st.composite
def wire_replies(draw: st.DrawFn, max_calls: int = 3) -> ModelReply:
    """A reply a server can express on the wire: non-empty ids distinct (a stream merges deltas by
    id), and no "" `finish_reason` or `model` (servers' "" means null)."""
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
            | st.dictionaries(st.text(max_size=6), JSON_SCALARS, max_size=3).map(json.dumps)
            # Not both braces: "{}{}" on the wire reads as a value re-sent whole (QUIRKS B-9).
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


def _is_canonical_object(arguments: str | None) -> TypeGuard[str]:
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
    cached, uncached = usage.cached_tokens, usage.prompt_tokens - usage.cached_tokens
    placements: dict[str, dict[str, Any]] = {
        "details": {"prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0}},
        "deepseek": {"prompt_cache_hit_tokens": cached, "prompt_cache_miss_tokens": uncached},
        "hf": {"cached_tokens": cached},
        "mistral": {"num_cached_tokens": cached},
        "anthropic": {"cache_read_input_tokens": cached},
    }
    payload.update(placements[draw(st.sampled_from(list(placements))) if cached else "details"])
    written = usage.cache_write_tokens
    if written and draw(st.booleans()):  # OpenRouter's place, beside any of the read placements
        payload.setdefault("prompt_tokens_details", {})["cache_write_tokens"] = written
    elif written:
        payload["cache_creation_input_tokens"] = written  # Anthropic's own name, through a proxy
    payload["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    if usage.cost is not None:
        payload["cost"] = usage.cost
        payload["is_byok"] = False
    return payload


_REASONING_SHAPES = ["reasoning_content", "reasoning", "details", "both"]


def _reasoning_as(shape: str, reasoning: str) -> dict[str, Any]:
    """The message fields carrying `reasoning` in one of the servers' shapes."""
    details = [{"type": "reasoning.text", "text": reasoning, "index": 0, "format": None}]
    if shape == "details":
        return {"reasoning": None, "reasoning_details": details}
    if shape == "both":
        return {"reasoning": reasoning, "reasoning_details": details}
    return {shape: reasoning}


@st.composite
def _reasoning_fields(draw: st.DrawFn, reasoning: str) -> dict[str, Any]:
    if not reasoning:
        return draw(st.sampled_from([{}, {"reasoning": None}, {"reasoning_content": None}]))
    return _reasoning_as(draw(st.sampled_from(_REASONING_SHAPES)), reasoning)


def _nothing(key: str) -> st.SearchStrategy[dict[str, Any]]:
    """`key` as servers say "nothing": null, "", or left out."""
    return st.sampled_from([{key: None}, {key: ""}, {}])


@st.composite
def completion_bodies(draw: st.DrawFn, reply: ModelReply) -> bytes:
    """`reply` as a non-streamed /chat/completions body, in one of the real shapes."""
    message: dict[str, Any] = {"role": "assistant"}
    if reply.reasoning and draw(st.booleans()):  # the reasoning as a content part
        thinking = {"type": "thinking", "thinking": [{"type": "text", "text": reply.reasoning}]}
        message["content"] = [thinking, *([{"type": "text", "text": reply.content}] if reply.content else [])]
    else:
        if reply.content:
            message["content"] = draw(
                st.sampled_from([reply.content, [{"type": "text", "text": reply.content}]])
            )
        else:
            message.update(draw(_nothing("content")))
        message.update(draw(_reasoning_fields(reply.reasoning)))
    if reply.tool_calls:
        calls = []
        with_index = draw(st.booleans())
        for position, call in enumerate(reply.tool_calls):
            function: dict[str, Any] = {"name": call.name}
            if _is_canonical_object(call.arguments) and draw(st.booleans()):
                function["arguments"] = json.loads(call.arguments)
            elif call.arguments is not None or draw(st.booleans()):
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
        choice_payload.update(draw(_nothing("finish_reason")))
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


def _cut_at(value: _Sliceable, cuts: Iterable[int]) -> list[_Sliceable]:
    bounds = [0, *sorted(cuts), len(value)]
    return [value[a:b] for a, b in itertools.pairwise(bounds)]


def _split(draw: st.DrawFn, text: str, max_pieces: int = 5) -> list[str]:
    """`text` in up to `max_pieces` non-empty pieces ([] for "")."""
    if not text:
        return []
    cuts = draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=max_pieces - 1))
    return _cut_at(text, [cut for cut in cuts if cut < len(text)])


@st.composite
def stream_chunks(draw: st.DrawFn, reply: ModelReply) -> list[dict[str, Any]]:
    """`reply` as a list of chat.completion.chunk objects, fragmented as real servers do."""
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

    reasoning_shape = draw(st.sampled_from([*_REASONING_SHAPES, "thinking"]))
    for piece in _split(draw, reply.reasoning):
        if reasoning_shape == "thinking":
            thinking = {"type": "thinking", "thinking": [{"type": "text", "text": piece}], "closed": True}
            chunks.append(chunk({"content": [thinking]}))
        else:
            chunks.append(chunk({**_reasoning_as(reasoning_shape, piece), "content": None}))
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
        at: dict[str, Any] = {} if index is None else {"index": index}
        as_object = _is_canonical_object(call.arguments) and draw(st.booleans())
        if call.arguments is None:
            pieces: list[Any] = [None] if draw(st.booleans()) else []
        elif as_object:
            pieces = [json.loads(call.arguments)]
        else:
            pieces = _split(draw, call.arguments, 6)
            if draw(st.booleans()) or not pieces:
                pieces.insert(0, "")  # OpenAI opens with arguments ""
            if draw(st.booleans()):
                pieces.insert(1, "")  # Anthropic's extra empty delta
        repeat_id = draw(st.booleans())
        name_later = draw(st.sampled_from(["omit", "repeat", "blank"]))
        for number, piece in enumerate(pieces or [Ellipsis]):
            first = number == 0
            function: dict[str, Any] = {}
            if first or name_later == "repeat":
                function["name"] = call.name
            elif name_later == "blank":
                function["name"] = ""
            if piece is not Ellipsis and (piece is not None or draw(st.booleans())):
                function["arguments"] = piece
            item: dict[str, Any] = {"function": function, "type": "function", **at}
            if first or repeat_id:
                item["id"] = call.id
            elif draw(st.booleans()) and index is not None:
                item["id"] = ""  # DashScope's empty id on continuations
            chunks.append(chunk({"tool_calls": [item]}))
        if call.arguments and not as_object and _is_canonical_object(call.arguments) and draw(st.booleans()):
            resend = {"function": {"arguments": call.arguments}, "id": call.id, **at}
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
    """Frame JSON payloads as server-sent events; `multiline_data` spreads each over several
    `data:` lines, `keepalive_every` puts an OpenRouter-style comment before every n-th."""
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


@st.composite
def byte_pieces(draw: st.DrawFn, data: bytes, max_pieces: int = 40) -> list[bytes]:
    """`data` cut at arbitrary boundaries (pieces may be empty)."""
    return _cut_at(data, draw(st.lists(st.integers(0, len(data)), max_size=max_pieces - 1)))


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
