"""Decoding a complete response body into a kernel event (lenient: any bytes a real server
sends become a `ModelReply` or a `ModelFailure`, never an exception); also the field
readers the stream assembler shares."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from nano_code.kernel.error_text import error_object
from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply, ReplyToolCall
from nano_code.kernel.failures import in_band_failure
from nano_code.kernel.request import clean_text
from nano_code.kernel.types import Usage


def clean_reply(reply: ModelReply) -> ModelReply:
    """Every string of a decoded reply made encodable (see `clean_text`)."""
    calls = tuple(
        ReplyToolCall(clean_text(call.id), clean_text(call.name), _clean(call.arguments))
        for call in reply.tool_calls
    )
    return attrs.evolve(
        reply,
        content=clean_text(reply.content),
        reasoning=clean_text(reply.reasoning),
        tool_calls=calls,
        finish_reason=_clean(reply.finish_reason),
        model=_clean(reply.model),
    )


def _clean(text: str | None) -> str | None:
    return None if text is None else clean_text(text)


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float) and value == value and abs(value) < 1e18:
        return max(0, int(value))
    return 0


def decode_usage(raw: object) -> Usage | None:
    """Token counts from any of the usage shapes servers send (QUIRKS F)."""
    if not isinstance(raw, Mapping):
        return None
    prompt = _int(raw.get("prompt_tokens"))
    completion = _int(raw.get("completion_tokens"))
    total = _int(raw.get("total_tokens")) or prompt + completion
    cached = (
        _inner_int(raw, "prompt_tokens_details", "cached_tokens")
        or _int(raw.get("prompt_cache_hit_tokens"))
        or _int(raw.get("cached_tokens"))
        or _int(raw.get("num_cached_tokens"))
        or _int(raw.get("cache_read_input_tokens"))  # Anthropic's own names, through a proxy
    )
    written = _inner_int(raw, "prompt_tokens_details", "cache_write_tokens") or _int(
        raw.get("cache_creation_input_tokens")
    )
    reasoning = _inner_int(raw, "completion_tokens_details", "reasoning_tokens")
    cost = raw.get("cost")
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not abs(cost) < 1e12:
        cost = None  # also NaN
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
        cost=None if cost is None else float(cost),
    )


def _inner_int(raw: Mapping[str, Any], outer: str, key: str) -> int:
    details = raw.get(outer)
    return _int(details.get(key)) if isinstance(details, Mapping) else 0


def split_content(content: object) -> tuple[str, str]:
    """(text, reasoning) from `content` as a string, null, or an array of parts (Mistral's
    `{"type": "thinking", "thinking": [...]}` parts are reasoning)."""
    if isinstance(content, str):
        return content, ""
    if not isinstance(content, list):
        return "", ""
    text: list[str] = []
    reasoning: list[str] = []
    for part in content:
        if isinstance(part, str):
            text.append(part)
        elif isinstance(part, Mapping):
            kind = part.get("type")
            if kind == "thinking":
                reasoning.append(split_content(part.get("thinking"))[0])
            elif isinstance(part.get("text"), str):
                text.append(part["text"])
    return "".join(text), "".join(reasoning)


def reasoning_of(message: Mapping[str, Any]) -> str:
    """Reasoning text in any of its three shapes (QUIRKS G); one shape per message."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    details = message.get("reasoning_details")
    if not isinstance(details, list):
        return ""
    items = [item for item in details if isinstance(item, Mapping)]
    return "".join(next((i[k] for k in ("text", "summary") if isinstance(i.get(k), str)), "") for i in items)


def arguments_text(value: object) -> str | None:
    """Arguments as JSON text: strings kept, objects serialised, null/absent None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return None


def _str_or_empty(value: object) -> str:
    return value if isinstance(value, str) else ""


def text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _reply_tool_calls(raw: object) -> tuple[ReplyToolCall, ...]:
    if not isinstance(raw, list):
        return ()
    calls = [(item, item.get("function")) for item in raw if isinstance(item, Mapping)]
    return tuple(
        ReplyToolCall(
            id=_str_or_empty(item.get("id")),
            name=_str_or_empty(function.get("name")),
            arguments=arguments_text(function.get("arguments")),
        )
        for item, function in calls
        if isinstance(function, Mapping)
    )


def decode_completion(payload: object) -> ModelReply | ModelFailure:
    """A parsed non-streamed 200 body as a reply, or the failure it really is."""
    if not isinstance(payload, Mapping):
        return ModelFailure(FailureKind.MALFORMED, "the response body is not a JSON object")
    choices = payload.get("choices")
    error = error_object(payload)
    if error is not None and not (isinstance(choices, list) and choices):
        return in_band_failure(error)
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return ModelFailure(FailureKind.MALFORMED, "the response has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, Mapping):
        return ModelFailure(FailureKind.MALFORMED, "the response's first choice has no message")
    text, content_reasoning = split_content(message.get("content"))
    tool_calls = _reply_tool_calls(message.get("tool_calls"))
    legacy = message.get("function_call")
    if not tool_calls and isinstance(legacy, Mapping) and _str_or_empty(legacy.get("name")):
        tool_calls = (
            ReplyToolCall(id="", name=legacy["name"], arguments=arguments_text(legacy.get("arguments"))),
        )
    reply = ModelReply(
        content=text,
        reasoning=reasoning_of(message) or content_reasoning,
        tool_calls=tool_calls,
        finish_reason=text_or_none(choice.get("finish_reason")),
        usage=decode_usage(payload.get("usage")),
        model=text_or_none(payload.get("model")),
    )
    return clean_reply(reply)


def decode_body(body: bytes) -> ModelReply | ModelFailure:
    """A complete non-streamed HTTP 200 body. Invalid UTF-8 is replaced before parsing, as
    the recorder stores the body, so a replay decodes what the live run decoded."""
    try:
        payload = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        snippet = body[:80].decode("utf-8", "replace")
        return ModelFailure(FailureKind.MALFORMED, f"the response body is not JSON: {snippet!r}")
    except RecursionError:
        return ModelFailure(FailureKind.MALFORMED, "the response body is nested too deeply")
    return decode_completion(payload)
