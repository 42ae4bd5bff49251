"""Failures classified: a non-2xx response or an in-band error as a `ModelFailure` whose
kind decides whether it is retried, with the wait the server asked for."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from nano_code.kernel.error_text import body_text, error_message, error_object, header, header_text, one_line
from nano_code.kernel.events import FailureKind, ModelFailure
from nano_code.kernel.policy import is_transient_status
from nano_code.kernel.request import clean_text


def _error_code_number(error: Mapping[str, Any]) -> int | None:
    for key in ("status_code", "code", "status"):
        value = error.get(key)
        if isinstance(value, str) and value.isascii() and value.isdigit():  # (isdigit alone takes "²")
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def _code_words(error: Mapping[str, Any]) -> list[str]:
    """The string code, type and status of an error, as snake_case words."""
    words = []
    for key in ("code", "type", "status"):
        value = error.get(key)
        if isinstance(value, str) and 0 < len(value) <= 100:
            snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", value.strip())
            words.append(re.sub(r"[\s.-]+", "_", snake).lower())
    return words


_CONTEXT_WORDS = re.compile(
    r"context[_ ]length|context window|maximum context|context_length_exceeded|"
    r"too many tokens|prompt is too long|reduce the length|available context size|"
    r"maximum (?:model|prompt) length|maximum number of tokens allowed",
    re.IGNORECASE,
)

_QUOTA = "quota"
"""Out of money or quota: waiting a minute does not help, so never retried."""
_INVALID = "invalid"
_CODE_GROUPS: tuple[tuple[frozenset[str], FailureKind | str], ...] = tuple(
    (frozenset(codes.split()), said)
    for codes, said in (
        (
            "context_length_exceeded context_window_exceeded context_window_exceeded_error "
            "model_context_window_exceeded request_too_large prompt_too_long exceed_context_size_error",
            FailureKind.CONTEXT_OVERFLOW,
        ),
        (
            "invalid_api_key incorrect_api_key missing_api_key no_api_key api_key_invalid "
            "invalid_authentication authentication_error authentication_failed unauthenticated "
            "unauthorized permission_denied permission_denied_error permission_error forbidden "
            "access_denied account_deactivated",
            FailureKind.AUTH,
        ),
        (
            "insufficient_quota insufficient_credits insufficient_balance billing_hard_limit_reached "
            "billing_not_active payment_required quota_exceeded",
            _QUOTA,
        ),
        (
            "rate_limit_exceeded rate_limit_error rate_limited rate_limit too_many_requests "
            "resource_exhausted",
            FailureKind.RATE_LIMIT,
        ),
        (
            "invalid_request_error invalid_request bad_request bad_request_error model_not_found "
            "not_found not_found_error invalid_argument invalid_parameter invalid_parameter_error "
            "invalid_value invalid_model unsupported_parameter unsupported_value unprocessable_entity",
            _INVALID,
        ),
    )
)
"""Error codes and types (snake_case) that decide whatever the status; first match wins."""


def _what_codes_say(error: Mapping[str, Any] | None) -> FailureKind | str | None:
    """A kind, `_QUOTA` or `_INVALID` when the error's code / type / status is one we know."""
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
"""Longer waits are held as this: finite and serialisable, still "not now"."""


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0.0:
        return None
    return min(seconds, _LONGEST_WAIT)


def retry_after_seconds(headers: Mapping[str, str], message: str) -> float | None:
    """The server's wait hint: retry-after-ms, retry-after seconds, or 'try again in 1m2s'
    (an HTTP-date needs a clock, which the kernel lacks: no hint)."""
    ms = _seconds(header(headers, "retry-after-ms"))
    if ms is not None:
        return ms / 1000.0
    seconds = _seconds(header(headers, "retry-after"))
    if seconds is not None:
        return seconds
    match = _TRY_AGAIN.search(message)
    if match:
        total = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(match.group(1)))
        return min(total, _LONGEST_WAIT)
    return None


def redirect_failure(status: int, headers: Mapping[str, str]) -> ModelFailure:
    """A 3xx: never followed (the body and API key would go wherever the server says)."""
    location = header_text(header(headers, "location"))
    target = f"to {location}" if location else "without saying where"
    message = (
        f"the server redirected (HTTP {status}) {target}; nano-code does not follow redirects: "
        "set INFERENCE_BASE_URL to the final URL"
    )
    return ModelFailure(kind=FailureKind.BAD_REQUEST, message=message, status=status)


def _http_error(payload: object) -> Mapping[str, Any] | None:
    """The error object of a non-2xx body, leniently: also a flat object or a list holding one."""
    if isinstance(payload, list):
        payload = next((item for item in payload[:4] if isinstance(item, Mapping)), None)
    error = error_object(payload)
    if error is None and isinstance(payload, Mapping):
        return payload
    return error


def _kind(error: Mapping[str, Any] | None, status: int | None, message: str, in_band: bool) -> FailureKind:
    """A specific code (`invalid_api_key`, `insufficient_quota`) decides over the status; a
    generic label (`invalid_request_error`) does not, since proxies put it on nearly
    everything: a transient status then decides, unless the message says context overflow.
    In band, whatever names no known kind is IN_BAND_ERROR."""
    said = _what_codes_say(error)
    overflow = bool(_CONTEXT_WORDS.search(message))
    if isinstance(said, FailureKind):
        return said
    if status in (401, 403):
        return FailureKind.AUTH
    if said == _QUOTA:
        return FailureKind.CONTEXT_OVERFLOW if overflow and not in_band else FailureKind.BAD_REQUEST
    if said == _INVALID and (in_band or overflow or not is_transient_status(status)):
        unclear = FailureKind.IN_BAND_ERROR if in_band else FailureKind.BAD_REQUEST
        return FailureKind.CONTEXT_OVERFLOW if overflow else unclear
    if status == 429:
        return FailureKind.RATE_LIMIT
    if status == 413 or (in_band and overflow):
        return FailureKind.CONTEXT_OVERFLOW
    if in_band or status is None:
        return FailureKind.IN_BAND_ERROR
    if status in (408, 409) or status >= 500:
        return FailureKind.SERVER_ERROR
    if 400 <= status < 500:
        return FailureKind.CONTEXT_OVERFLOW if overflow else FailureKind.BAD_REQUEST
    return FailureKind.MALFORMED


def classify_http_error(status: int, headers: Mapping[str, str], body: bytes) -> ModelFailure:
    """A non-2xx response as a classified failure, whatever its body looks like."""
    if 300 <= status < 400:
        return redirect_failure(status, headers)
    text = body.decode("utf-8", "replace")
    try:
        payload: object = json.loads(text)
    except (ValueError, RecursionError):
        payload = None
    error = _http_error(payload)
    message = error_message(error, "")
    if not message:
        message = one_line(payload) if isinstance(payload, str) else body_text(text)
    message = message or "no error message"
    return ModelFailure(
        kind=_kind(error, status, message, in_band=False),
        message=clean_text(f"HTTP {status}: {message}"),
        status=status,
        retry_after=retry_after_seconds(headers, message),
    )


def in_band_failure(error: Mapping[str, Any]) -> ModelFailure:
    """An error object inside an HTTP 200 (QUIRKS E-24, E-25). An "invalid" code without a
    4xx/5xx of its own gets 400, so it is not retried."""
    status = _error_code_number(error)
    message = error_message(error, "the server reported an error")
    if _what_codes_say(error) == _INVALID and (status is None or status < 400):
        status = 400
    kind = _kind(error, status, message, in_band=True)
    return ModelFailure(kind=kind, message=clean_text(f"error in response: {message}"), status=status)
