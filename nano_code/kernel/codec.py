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
from collections.abc import Iterator, Mapping
from typing import Any

from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply, ReplyToolCall
from nano_code.kernel.policy import is_transient_status
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


class RequestBody(Mapping[str, Any]):
    """The body of a request, as a read-only mapping built on first use.

    The kernel hands one to the driver with every CallModel; building the
    dict walks the whole history, so it is only done when someone reads it.
    An encoder outside the kernel can instead use `config` and `history`
    directly and encode each message once (see `adapters/model_client.py`);
    its bytes equal `json.dumps(dict(body), ...)` exactly.
    """

    __slots__ = ("_built", "config", "history")

    def __init__(self, config: KernelConfig, history: tuple[Message, ...]) -> None:
        self.config = config
        self.history = history
        self._built: dict[str, Any] | None = None

    def _body(self) -> dict[str, Any]:
        if self._built is None:
            self._built = build_request(self.config, self.history)
        return self._built

    def __getitem__(self, key: str) -> Any:
        if key == "messages" or self._built is not None:
            return self._body()[key]
        return request_head(self.config)[key]  # cheap: no message is encoded

    def __iter__(self) -> Iterator[str]:
        return iter(request_head(self.config))

    def __len__(self) -> int:
        return len(request_head(self.config))

    def __repr__(self) -> str:
        return f"RequestBody({self.config.model!r}, {len(self.history)} messages)"


def request_head(config: KernelConfig) -> dict[str, Any]:
    """Every field of a request body but `messages`, in the order they are sent."""
    body: dict[str, Any] = {"model": config.model, "messages": []}
    if config.tools:
        body["tools"] = [encode_tool(t) for t in config.tools]
    if config.temperature is not None:
        body["temperature"] = config.temperature
    if config.seed is not None:
        body["seed"] = config.seed
    if config.max_completion_tokens is not None:
        body["max_completion_tokens"] = config.max_completion_tokens
    if config.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def build_request(config: KernelConfig, history: tuple[Message, ...]) -> dict[str, Any]:
    """The complete /chat/completions body for the conversation so far.

    The system prompt travels as the first `system` message (the seed's
    top-level `system` field is not part of the API).
    """
    body = request_head(config)
    body["messages"] = [encode_message(m) for m in history]
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

MAX_ERROR_TEXT = 500
"""Longest server-written text put into a failure message (a whole HTML page
or a stack trace must not flood the terminal or the journal)."""

MAX_HEADER_TEXT = 200
"""Longest header value (e.g. a redirect's Location) shown in a message."""

_ELLIPSIS = "\u2026"


def one_line(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """`text` with its whitespace runs collapsed to single spaces, cut to `limit` characters."""
    text = " ".join(text.lstrip()[: limit * 4 + 64].split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + _ELLIPSIS


def header_text(value: str, limit: int = MAX_HEADER_TEXT) -> str:
    """A header value made safe to quote: on one line, no control characters, capped."""
    visible = "".join(ch if ch.isprintable() else " " for ch in value[: limit * 4 + 64])
    return clean_text(one_line(visible, limit))


def error_object(payload: object) -> Mapping[str, Any] | None:
    """The error object of any envelope shape (QUIRKS H-32), or None.

    A string `error` beside a `message` or `detail` (Express/Node, FastAPI
    apps: `{"error": "TypeError", "message": "Cannot read ..."}`) becomes one
    object whose message says both.
    """
    if not isinstance(payload, Mapping):
        return None
    inner = payload.get("error")
    if isinstance(inner, Mapping):
        return inner
    if isinstance(inner, str) and inner.strip():
        merged: dict[str, Any] = {
            key: payload[key] for key in ("code", "type", "status", "status_code") if key in payload
        }
        name = inner.strip()
        detail = _human_text(payload.get("message")) or _human_text(payload.get("detail"))
        if not detail or detail.startswith(name):
            merged["message"] = detail or name
        else:
            merged["message"] = f"{name}: {detail}"
        return merged
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
        # isdigit() alone accepts "²" and other digits int() refuses.
        if isinstance(value, str) and value.isascii() and value.isdigit() and 100 <= int(value) <= 599:
            return int(value)
    return None


_TEXT_KEYS = ("message", "detail", "msg", "error_message", "description", "title")


def _human_text(value: object, depth: int = 0) -> str:
    """The text a person should read in an error value: a string, an object's
    message/detail/msg, or the texts of a list (FastAPI's `detail` list, `errors`)."""
    if isinstance(value, str):
        return value.strip()
    if depth >= 4:
        return ""
    if isinstance(value, Mapping):
        for key in _TEXT_KEYS:
            text = _human_text(value.get(key), depth + 1)
            if text:
                where = _location(value.get("loc"))
                return f"{text} ({where})" if where else text
        return ""
    if isinstance(value, list):
        parts: list[str] = []
        for item in value[:8]:
            text = _human_text(item, depth + 1)
            if text and text not in parts:
                parts.append(text)
        return "; ".join(parts)
    return ""


def _location(loc: object) -> str:
    """FastAPI's `loc` (["body", "messages", 0]) as `body.messages.0`."""
    if not isinstance(loc, list):
        return ""
    parts = [str(p) for p in loc[:8] if isinstance(p, (str, int)) and not isinstance(p, bool)]
    return one_line(".".join(parts), 80)


def _is_name(value: str) -> bool:
    """A code or type worth showing: not a number, not a stringified null."""
    value = value.strip()
    return bool(value) and not value.isdigit() and value.lower() not in ("none", "null")


def _code_words(error: Mapping[str, Any]) -> list[str]:
    """The string code, type and status of an error, as snake_case words."""
    words = []
    for key in ("code", "type", "status"):
        value = error.get(key)
        if isinstance(value, str) and 0 < len(value) <= 100:
            snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", value.strip())
            words.append(re.sub(r"[\s.-]+", "_", snake).lower())
    return words


def _error_message(error: Mapping[str, Any] | None, fallback: str) -> str:
    if error is None:
        return fallback
    text = ""
    for key in ("message", "detail", "msg", "errors", "error"):
        text = _human_text(error.get(key))
        if text:
            break
    if not text:
        # No words at all: the code or type is the best there is.
        names = (error.get(key) for key in ("code", "type"))
        text = next((n.strip() for n in names if isinstance(n, str) and _is_name(n)), "") or fallback
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
            text = f"{text}: {one_line(detail, 300)}"
        if isinstance(provider, str) and provider:
            text = f"{text} (provider {one_line(provider, 60)})"
    window = error.get("n_ctx")
    if isinstance(window, int) and not isinstance(window, bool) and window > 0:
        # llama.cpp states its context window only in this field: say it, so it can be learned.
        text = f"{one_line(text, MAX_ERROR_TEXT - 40)} (context size: {window} tokens)"
    return one_line(text, MAX_ERROR_TEXT)


_CONTEXT_WORDS = re.compile(
    r"context[_ ]length|context window|maximum context|context_length_exceeded|"
    r"too many tokens|prompt is too long|reduce the length|available context size|"
    r"maximum (?:model|prompt) length|maximum number of tokens allowed",
    re.IGNORECASE,
)

# Error codes and types (normalised to snake_case) that say what went wrong,
# whatever the HTTP status claims. Checked in this order: the first group with
# a match decides.
_CONTEXT_CODES = frozenset(
    {
        "context_length_exceeded",
        "context_window_exceeded",
        "context_window_exceeded_error",
        "model_context_window_exceeded",
        "request_too_large",
        "prompt_too_long",
        "exceed_context_size_error",
    }
)
_AUTH_CODES = frozenset(
    {
        "invalid_api_key",
        "incorrect_api_key",
        "missing_api_key",
        "no_api_key",
        "api_key_invalid",
        "invalid_authentication",
        "authentication_error",
        "authentication_failed",
        "unauthenticated",
        "unauthorized",
        "permission_denied",
        "permission_denied_error",
        "permission_error",
        "forbidden",
        "access_denied",
        "account_deactivated",
    }
)
_QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "insufficient_credits",
        "insufficient_balance",
        "billing_hard_limit_reached",
        "billing_not_active",
        "payment_required",
        "quota_exceeded",
    }
)
"""Out of money or quota: waiting a minute does not help, so never retried."""
_RATE_CODES = frozenset(
    {
        "rate_limit_exceeded",
        "rate_limit_error",
        "rate_limited",
        "rate_limit",
        "too_many_requests",
        "resource_exhausted",
    }
)
_BAD_REQUEST_CODES = frozenset(
    {
        "invalid_request_error",
        "invalid_request",
        "bad_request",
        "bad_request_error",
        "model_not_found",
        "not_found",
        "not_found_error",
        "invalid_argument",
        "invalid_parameter",
        "invalid_parameter_error",
        "invalid_value",
        "invalid_model",
        "unsupported_parameter",
        "unsupported_value",
        "unprocessable_entity",
    }
)
_QUOTA = "quota"
_INVALID = "invalid"
_CODE_GROUPS: tuple[tuple[frozenset[str], FailureKind | str], ...] = (
    (_CONTEXT_CODES, FailureKind.CONTEXT_OVERFLOW),
    (_AUTH_CODES, FailureKind.AUTH),
    (_QUOTA_CODES, _QUOTA),
    (_RATE_CODES, FailureKind.RATE_LIMIT),
    (_BAD_REQUEST_CODES, _INVALID),
)


def _what_codes_say(error: Mapping[str, Any] | None) -> FailureKind | str | None:
    """What the error's string code / type / status says, when it is a code we know:
    a decisive kind (context overflow, auth, rate limit), `_QUOTA` or `_INVALID`."""
    if error is None:
        return None
    words = _code_words(error)
    for codes, said in _CODE_GROUPS:
        if any(word in codes for word in words):
            return said
    return None


_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_LONGEST_WAIT = 1e9
"""Any longer server wait is held as this (still far beyond every policy's cap),
so the value stays a finite, serialisable number that still means "not now"."""


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0.0:
        return None
    return min(seconds, _LONGEST_WAIT)


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
        total = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(match.group(1)))
        return min(total, _LONGEST_WAIT)
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value if isinstance(value, str) else None
    return None


def redirect_failure(status: int, headers: Mapping[str, str]) -> ModelFailure:
    """A 3xx: nano-code never follows redirects (the POST body and the API key
    would go wherever the server says), so the user is told where to point it."""
    location = header_text(_header(headers, "location") or "")
    target = f"to {location}" if location else "without saying where"
    message = (
        f"the server redirected (HTTP {status}) {target}; nano-code does not follow redirects: "
        "set INFERENCE_BASE_URL to the final URL"
    )
    return ModelFailure(kind=FailureKind.BAD_REQUEST, message=message, status=status)


def _http_error(payload: object) -> Mapping[str, Any] | None:
    """The error object of a non-2xx body, read more leniently than a 200's:
    a flat `{"message"}`, `{"detail"}` or `{"errors"}`, or a list holding one."""
    if isinstance(payload, list):
        payload = next((item for item in payload[:4] if isinstance(item, Mapping)), None)
    error = error_object(payload)
    if error is None and isinstance(payload, Mapping):
        return payload
    return error


def classify_http_error(status: int, headers: Mapping[str, str], body: bytes) -> ModelFailure:
    """A non-2xx response as a classified failure, whatever its body looks like.

    A string code or type in the body that names what went wrong (`invalid_api_key`,
    `context_length_exceeded`, `rate_limit_exceeded`, `insufficient_quota`) says more
    than the status, so it decides. A generic label (`invalid_request_error`,
    `bad_request`) does not: proxies put it on nearly everything (LiteLLM answers a
    timeout with 408 and `invalid_request_error`), so a transient status (408, 409,
    429, 5xx) decides over it, and the failure is retried, unless the message says
    the context is too long.
    """
    if 300 <= status < 400:
        return redirect_failure(status, headers)
    text = body.decode("utf-8", "replace")
    try:
        payload: object = json.loads(text)
    except (ValueError, RecursionError):
        payload = None
    error = _http_error(payload)
    message = _error_message(error, "")
    if not message:
        message = one_line(payload) if isinstance(payload, str) else body_text(text)
    message = message or "no error message"
    said = _what_codes_say(error)
    overflow = bool(_CONTEXT_WORDS.search(message))
    if isinstance(said, FailureKind):
        kind = said
    elif status in (401, 403):
        kind = FailureKind.AUTH
    elif said == _QUOTA or (said == _INVALID and (overflow or not is_transient_status(status))):
        kind = FailureKind.CONTEXT_OVERFLOW if overflow else FailureKind.BAD_REQUEST
    elif status == 429:
        kind = FailureKind.RATE_LIMIT
    elif status == 413:
        kind = FailureKind.CONTEXT_OVERFLOW
    elif status in (408, 409) or status >= 500:
        kind = FailureKind.SERVER_ERROR
    elif 400 <= status < 500:
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
    """An error object that arrived inside an HTTP 200 (QUIRKS E-24, E-25).

    It stays an IN_BAND_ERROR unless its code or status names a failure that
    is handled differently: auth, rate limit, context overflow, quota. One
    whose code calls the request invalid gets the status 400 when it carries
    no 4xx or 5xx of its own, so that, like any in-band 4xx, it is not retried
    (one carrying a transient status such as 408 or 503 is).
    """
    status = _error_code_number(error)
    message = _error_message(error, "the server reported an error")
    said = _what_codes_say(error)
    overflow = bool(_CONTEXT_WORDS.search(message))
    if isinstance(said, FailureKind):
        kind = said
    elif status in (401, 403):
        kind = FailureKind.AUTH
    elif said == _QUOTA:
        kind = FailureKind.BAD_REQUEST
    elif said == _INVALID:
        kind = FailureKind.CONTEXT_OVERFLOW if overflow else FailureKind.IN_BAND_ERROR
        # A transient status of its own decides over the label (see classify_http_error).
        status = status if status is not None and 400 <= status <= 599 else 400
    elif status == 429:
        kind = FailureKind.RATE_LIMIT
    elif overflow or status == 413:
        kind = FailureKind.CONTEXT_OVERFLOW
    else:
        kind = FailureKind.IN_BAND_ERROR
    return ModelFailure(kind=kind, message=clean_text(f"error in response: {message}"), status=status)


# ---------------------------------------------------------------- text and HTML bodies

_TAG = re.compile(r"<[^<>]*>")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")
_NAMED_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'", "nbsp": " "}
_HTML_HEAD = 65_536
"""Characters of an HTML page looked at for its title or first words."""
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _lower(text: str) -> str:
    """ASCII-only lowercasing: unlike str.lower it keeps every index in place."""
    return text.translate(_ASCII_LOWER)


def _unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("#"):
            number = int(name[2:], 16) if name[1:2] in ("x", "X") else int(name[1:])
            return chr(number) if 0 < number < 0x110000 and not 0xD800 <= number < 0xE000 else "\ufffd"
        return _NAMED_ENTITIES.get(name.lower(), match.group())

    return _ENTITY.sub(replace, text)


def _find_tag(lowered: str, tag: str, start: int) -> int:
    """Index of the first `<tag` (or `</tag`) at or after `start` that is the whole tag name."""
    while True:
        found = lowered.find(tag, start)
        end = found + len(tag)
        if found < 0 or end >= len(lowered) or lowered[end] in " \t\r\n/>":
            return found
        start = found + 1


def _element(lowered: str, tag: str, start: int = 0) -> tuple[int, int, int] | None:
    """(start of `<tag`, start of its content, start of `</tag`) of the first such
    element at or after `start`, or None. Each search moves forward: linear time."""
    begin = _find_tag(lowered, f"<{tag}", start)
    if begin < 0:
        return None
    content = lowered.find(">", begin)
    if content < 0:
        return None
    end = _find_tag(lowered, f"</{tag}", content + 1)
    return (begin, content + 1, end) if end >= 0 else None


def _without_elements(text: str, tag: str) -> str:
    """`text` without its <tag>...</tag> elements (script, style)."""
    lowered = _lower(text)
    kept: list[str] = []
    position = 0
    while (found := _element(lowered, tag, position)) is not None:
        kept.append(text[position : found[0]])
        closing = lowered.find(">", found[2])
        position = len(text) if closing < 0 else closing + 1
    kept.append(text[position:])
    return "".join(kept)


def body_text(text: str) -> str:
    """What to show of a non-JSON error body: an HTML page's <title> (or its
    first words), else the text itself -- on one line and capped."""
    head = text[:_HTML_HEAD]
    lowered = _lower(head)
    if not re.search(r"<(?:!doctype|html|head|body|title)\b", lowered[:2048]):
        return one_line(text)
    title = _element(lowered, "title")
    if title is not None:
        text = one_line(_unescape(_TAG.sub(" ", head[title[1] : title[2]])))
        if text:
            return text
    for tag in ("script", "style", "title"):
        head = _without_elements(head, tag)
    return one_line(_unescape(_TAG.sub(" ", head)))


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
