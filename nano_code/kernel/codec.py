"""The OpenAI Chat Completions wire format, both directions, as pure functions.

Strict in what we send: `build_request` produces bodies that validate against
the official `CreateChatCompletionRequest` schema. Lenient in what we accept:
`decode_body` and `classify_http_error` turn any bytes a real server has been
seen to send (see shared/real-traffic/QUIRKS.md) into a `ModelReply` or a
`ModelFailure` -- never an exception. Streams are handled in `stream`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply, ReplyToolCall
from nano_code.kernel.types import (
    KernelConfig,
    Message,
    SystemMessage,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)

# ---------------------------------------------------------------- requests


def encode_message(message: Message) -> dict[str, Any]:
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": message.content}
    if isinstance(message, UserMessage):
        return {"role": "user", "content": message.content}
    if isinstance(message, ToolMessage):
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    encoded: dict[str, Any] = {"role": "assistant"}
    if message.tool_calls:
        encoded["content"] = message.content or None
        encoded["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    else:
        encoded["content"] = message.content or ""
    return encoded


def encode_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": dict(spec.parameters),
        },
    }


def build_request(config: KernelConfig, history: tuple[Message, ...]) -> dict[str, Any]:
    """The complete /chat/completions body for the conversation so far.

    The system prompt travels as the first `system` message (the seed's
    top-level `system` field is not part of the API).
    """
    body: dict[str, Any] = {
        "model": config.model,
        "messages": [encode_message(m) for m in history],
    }
    if config.tools:
        body["tools"] = [encode_tool(t) for t in config.tools]
    if config.temperature is not None:
        body["temperature"] = config.temperature
    if config.max_completion_tokens is not None:
        body["max_completion_tokens"] = config.max_completion_tokens
    if config.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


# ---------------------------------------------------------------- shared helpers


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` made encodable as UTF-8: lone surrogates become U+FFFD.

    A JSON escape like `\\ud800` decodes to a lone surrogate, and so does an
    undecodable byte read from stdin; either would make the next request body
    (or the terminal) fail to encode. Cheap for the common cases.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def clean_reply(reply: ModelReply) -> ModelReply:
    """Every string of a decoded reply made encodable (see `clean_text`)."""
    calls = tuple(
        ReplyToolCall(
            id=clean_text(call.id),
            name=clean_text(call.name),
            arguments=None if call.arguments is None else clean_text(call.arguments),
        )
        for call in reply.tool_calls
    )
    return ModelReply(
        content=clean_text(reply.content),
        reasoning=clean_text(reply.reasoning),
        tool_calls=calls,
        finish_reason=None if reply.finish_reason is None else clean_text(reply.finish_reason),
        usage=reply.usage,
        model=None if reply.model is None else clean_text(reply.model),
    )


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
    cached = 0
    details = raw.get("prompt_tokens_details")
    if isinstance(details, Mapping):
        cached = _int(details.get("cached_tokens"))
    cached = (
        cached
        or _int(raw.get("prompt_cache_hit_tokens"))
        or _int(raw.get("cached_tokens"))
        or _int(raw.get("num_cached_tokens"))
    )
    reasoning = 0
    completion_details = raw.get("completion_tokens_details")
    if isinstance(completion_details, Mapping):
        reasoning = _int(completion_details.get("reasoning_tokens"))
    cost_raw = raw.get("cost")
    cost = None
    if isinstance(cost_raw, (int, float)) and not isinstance(cost_raw, bool):
        cost = float(cost_raw) if cost_raw == cost_raw and abs(cost_raw) < 1e12 else None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
        cost=cost,
    )


def split_content(content: object) -> tuple[str, str]:
    """(text, reasoning) from `content` as a string, null, or an array of parts.

    Mistral streams `{"type": "thinking", "thinking": [...]}` parts inside
    `content`; those are reasoning, not answer text.
    """
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
    if isinstance(details, list):
        parts = []
        for item in details:
            if isinstance(item, Mapping):
                for key in ("text", "summary"):
                    if isinstance(item.get(key), str):
                        parts.append(item[key])
                        break
        return "".join(parts)
    return ""


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


def finish_reason_of(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# ---------------------------------------------------------------- errors


def error_object(payload: object) -> Mapping[str, Any] | None:
    """The error object of any envelope shape (QUIRKS H-32), or None."""
    if not isinstance(payload, Mapping):
        return None
    inner = payload.get("error")
    if isinstance(inner, Mapping):
        return inner
    if isinstance(inner, str) and inner:
        return {"message": inner}
    if payload.get("object") == "error" or (
        "message" in payload and "choices" not in payload and ("code" in payload or "type" in payload)
    ):
        return payload
    return None


def _error_code_number(error: Mapping[str, Any]) -> int | None:
    for key in ("status_code", "code", "status"):
        value = error.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
        if isinstance(value, str) and value.isdigit() and 100 <= int(value) <= 599:
            return int(value)
    return None


def _error_message(error: Mapping[str, Any] | None, fallback: str) -> str:
    if error is None:
        return fallback
    message = error.get("message")
    text = message if isinstance(message, str) and message else fallback
    metadata = error.get("metadata")
    if isinstance(metadata, Mapping):
        raw = metadata.get("raw")
        provider = metadata.get("provider_name")
        if isinstance(raw, str) and raw:
            try:
                upstream = error_object(json.loads(raw))
            except (ValueError, RecursionError):
                upstream = None
            detail = _error_message(upstream, raw) if upstream else raw
            text = f"{text}: {detail[:300]}"
        if isinstance(provider, str) and provider:
            text = f"{text} (provider {provider})"
    return " ".join(text.split())[:500]


_CONTEXT_WORDS = re.compile(
    r"context[_ ]length|context window|maximum context|context_length_exceeded|"
    r"too many tokens|prompt is too long|reduce the length",
    re.IGNORECASE,
)
_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0.0 <= seconds < 1e9 else None


def retry_after_seconds(headers: Mapping[str, str], message: str) -> float | None:
    """The server's wait hint: retry-after-ms, retry-after seconds, or 'try again in 1m2s'.

    An HTTP-date Retry-After needs a clock, which the kernel does not have, so
    it counts as no hint and the policy's backoff applies.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        ms = _seconds(lowered["retry-after-ms"])
        if ms is not None:
            return ms / 1000.0
    if "retry-after" in lowered:
        seconds = _seconds(lowered["retry-after"])
        if seconds is not None:
            return seconds
    match = _TRY_AGAIN.search(message)
    if match:
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(match.group(1)))
    return None


def classify_http_error(status: int, headers: Mapping[str, str], body: bytes) -> ModelFailure:
    """A non-2xx response as a classified failure, whatever its body looks like."""
    try:
        payload: object = json.loads(body.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        payload = None
    error = error_object(payload)
    snippet = body[:200].decode("utf-8", "replace").strip()
    message = _error_message(error, snippet or "no error message")
    code = str(error.get("code", "")) if error else ""
    if status in (401, 403):
        kind = FailureKind.AUTH
    elif status == 429:
        kind = FailureKind.RATE_LIMIT
    elif status in (408, 409) or status >= 500:
        kind = FailureKind.SERVER_ERROR
    elif 400 <= status < 500:
        overflow = code == "context_length_exceeded" or _CONTEXT_WORDS.search(message)
        kind = FailureKind.CONTEXT_OVERFLOW if overflow else FailureKind.BAD_REQUEST
    else:
        kind = FailureKind.MALFORMED
    return ModelFailure(
        kind=kind,
        message=clean_text(f"HTTP {status}: {message}"),
        status=status,
        retry_after=retry_after_seconds(headers, message),
    )


def in_band_failure(error: Mapping[str, Any]) -> ModelFailure:
    """An error object that arrived inside an HTTP 200 (QUIRKS E-24, E-25)."""
    status = _error_code_number(error)
    message = _error_message(error, "the server reported an error")
    if status in (401, 403):
        kind = FailureKind.AUTH
    elif status == 429:
        kind = FailureKind.RATE_LIMIT
    elif _CONTEXT_WORDS.search(message) or error.get("code") == "context_length_exceeded":
        kind = FailureKind.CONTEXT_OVERFLOW
    else:
        kind = FailureKind.IN_BAND_ERROR
    return ModelFailure(kind=kind, message=clean_text(f"error in response: {message}"), status=status)


# ---------------------------------------------------------------- whole bodies


def _reply_tool_calls(raw: object) -> tuple[ReplyToolCall, ...]:
    if not isinstance(raw, list):
        return ()
    calls = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        function = item.get("function")
        if not isinstance(function, Mapping):
            continue
        calls.append(
            ReplyToolCall(
                id=_str_or_empty(item.get("id")),
                name=_str_or_empty(function.get("name")),
                arguments=arguments_text(function.get("arguments")),
            )
        )
    return tuple(calls)


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
    model = payload.get("model")
    reply = ModelReply(
        content=text,
        reasoning=reasoning_of(message) or content_reasoning,
        tool_calls=tool_calls,
        finish_reason=finish_reason_of(choice.get("finish_reason")),
        usage=decode_usage(payload.get("usage")),
        model=model if isinstance(model, str) and model else None,
    )
    return clean_reply(reply)


def decode_body(body: bytes) -> ModelReply | ModelFailure:
    """A complete non-streamed HTTP 200 body.

    Invalid UTF-8 is replaced before parsing, exactly as the recorder stores
    the body, so a replay decodes what the live run decoded.
    """
    try:
        payload = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        snippet = body[:80].decode("utf-8", "replace")
        return ModelFailure(FailureKind.MALFORMED, f"the response body is not JSON: {snippet!r}")
    except RecursionError:
        return ModelFailure(FailureKind.MALFORMED, "the response body is nested too deeply")
    return decode_completion(payload)
