"""How server failures are decoded, classified and reported to the user.

Everything goes through the public decoding path -- `ResponseDecoder` fed the
status, headers and body bytes in arbitrary pieces -- and then through
`transition`, so a test sees exactly what the terminal would show and which
failures the kernel retries. The bodies are hand-written in the shapes real
OpenAI-compatible servers (and the proxies in front of them) send.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nano_code.kernel.actions import Action, EndTurn, RetryModel, ShowText, TextKind, TurnEnd
from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply, UserInput
from nano_code.kernel.machine import transition
from nano_code.kernel.policy import NEVER_RETRIED, retry_delay
from nano_code.kernel.state import State, initial_state
from nano_code.kernel.stream import ResponseDecoder
from nano_code.kernel.types import ApprovalMode, KernelConfig, RetryPolicy
from nano_code.testing.strategies import DEMO_TOOLS, json_values, model_replies
from nano_code.testing.wire_strategies import byte_pieces

CONFIG = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.AUTO)
POLICY = CONFIG.retry

MESSAGE_LIMIT = 600
"""No failure message may be longer than this, whatever the server sent."""


def decode(
    status: int,
    body: bytes | Mapping[str, Any] | list[Any] = b"",
    headers: Mapping[str, str] | None = None,
    pieces: list[bytes] | None = None,
) -> ModelReply | ModelFailure:
    """Decode one response the way the HTTP adapter does (fed in pieces when given)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    if headers is None:
        headers = {"Content-Type": "application/json"}
    decoder = ResponseDecoder(status, headers)
    for piece in pieces if pieces is not None else [data]:
        decoder.feed(piece)
    return decoder.finish()


def failure_of(
    status: int, body: bytes | Mapping[str, Any] | list[Any] = b"", headers: Mapping[str, str] | None = None
) -> ModelFailure:
    result = decode(status, body, headers)
    assert isinstance(result, ModelFailure), result
    return result


def sse(*payloads: Mapping[str, Any]) -> bytes:
    return b"".join(f"data: {json.dumps(p)}\n\n".encode() for p in payloads)


SSE = {"Content-Type": "text/event-stream"}


def awaiting_model(config: KernelConfig = CONFIG) -> State:
    state, _ = transition(initial_state(config), UserInput("go"))
    return state


def until_turn_ends(event: ModelFailure, config: KernelConfig = CONFIG) -> tuple[int, EndTurn]:
    """Feed the same failure until the turn ends: (retries made, the EndTurn)."""
    state = awaiting_model(config)
    for retries in range(config.retry.max_attempts + 1):
        state, actions = transition(state, event)
        ends = [a for a in actions if isinstance(a, EndTurn)]
        if ends:
            return retries, ends[0]
        assert any(isinstance(a, RetryModel) for a in actions), actions
    raise AssertionError("the turn never ended")


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m", "choices": choices}


# ---------------------------------------------------------------- 1. redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_names_its_target_and_is_never_retried(status: int) -> None:
    target = "https://openrouter.ai/api/v1/chat/completions"
    html = b"<html><head><title>Moved</title></head><body>moved</body></html>"
    failure = failure_of(status, html, {"Location": target, "Content-Type": "text/html"})
    assert failure.message == (
        f"the server redirected (HTTP {status}) to {target}; nano-code does not follow redirects: "
        "set INFERENCE_BASE_URL to the final URL"
    )
    assert failure.status == status
    assert failure.kind in NEVER_RETRIED
    retries, end = until_turn_ends(failure)
    assert (retries, end.reason, end.detail) == (0, TurnEnd.FAILED, failure.message)


def test_a_redirect_location_is_found_in_any_letter_case() -> None:
    failure = failure_of(308, b"", {"LOCATION": "http://localhost:8080/v1/"})
    assert "to http://localhost:8080/v1/;" in failure.message


def test_a_redirect_location_is_capped_and_shown_safely() -> None:
    location = "https://evil.example/" + "a" * 5000 + "\x1b[2J\x07\r\nX-Injected: 1"
    failure = failure_of(302, b"", {"location": location})
    assert "\x1b" not in failure.message and "\x07" not in failure.message
    assert "\n" not in failure.message and "\r" not in failure.message
    assert "a" * 150 in failure.message
    assert len(failure.message) < 200 + 200
    assert "INFERENCE_BASE_URL" in failure.message


def test_a_redirect_without_a_location_still_explains_itself() -> None:
    failure = failure_of(307, b"")
    assert failure.kind in NEVER_RETRIED
    assert "redirected (HTTP 307)" in failure.message and "INFERENCE_BASE_URL" in failure.message
    assert "no error message" not in failure.message


@given(
    status=st.integers(300, 399),
    location=st.none() | st.text(max_size=1000),
    body=st.binary(max_size=2000),
    data=st.data(),
)
def test_no_3xx_response_is_ever_retried(
    status: int, location: str | None, body: bytes, data: st.DataObject
) -> None:
    headers = {} if location is None else {"Location": location}
    pieces = data.draw(byte_pieces(body))
    result = decode(status, body, headers, pieces)
    assert isinstance(result, ModelFailure)
    assert result.kind in NEVER_RETRIED
    assert all(retry_delay(result, attempt, POLICY) is None for attempt in range(1, 6))
    assert len(result.message) <= MESSAGE_LIMIT
    assert "INFERENCE_BASE_URL" in result.message


# ---------------------------------------------------------------- 2. waits beyond the cap


@pytest.mark.parametrize(
    ("headers", "message", "seconds"),
    [
        ({"Retry-After": "99999"}, "slow down", "99999"),
        ({"retry-after-ms": "99999000"}, "slow down", "99999"),
        ({}, "Rate limit reached. Please try again in 3h.", "10800"),
    ],
)
def test_a_server_wait_longer_than_the_policy_allows_is_explained(
    headers: dict[str, str], message: str, seconds: str
) -> None:
    failure = failure_of(429, {"error": {"message": message}}, headers)
    assert failure.kind is FailureKind.RATE_LIMIT
    retries, end = until_turn_ends(failure)
    assert retries == 0 and end.reason is TurnEnd.FAILED
    cap = f"{POLICY.max_server_wait:g}"
    assert end.detail == (
        f"HTTP 429: {message} (the server asked to wait {seconds} s, longer than nano-code waits: {cap} s)"
    )


def test_the_explanation_uses_the_configured_cap() -> None:
    config = KernelConfig(model="m", system_prompt="s", retry=RetryPolicy(max_server_wait=45.0))
    failure = failure_of(503, {"error": {"message": "busy"}}, {"Retry-After": "600"})
    _, end = until_turn_ends(failure, config)
    assert end.detail.endswith("(the server asked to wait 600 s, longer than nano-code waits: 45 s)")


def test_a_server_wait_within_the_cap_is_honoured() -> None:
    failure = failure_of(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"})
    _, actions = transition(awaiting_model(), failure)
    retry = next(a for a in actions if isinstance(a, RetryModel))
    assert retry.delay == 7.0


def test_an_absurd_wait_is_a_wait_too_long_not_no_hint() -> None:
    """A wait too large to be a number of seconds still means "not now", not "retry at once"."""
    failure = failure_of(429, {"error": {"message": "x"}}, {"Retry-After": "1e300"})
    retries, end = until_turn_ends(failure)
    assert retries == 0 and "the server asked to wait" in end.detail
    json.dumps(failure.retry_after, allow_nan=False)  # still serialisable


def test_a_failure_that_is_never_retried_gets_no_wait_explanation() -> None:
    failure = failure_of(401, {"error": {"message": "bad key"}}, {"Retry-After": "99999"})
    _, end = until_turn_ends(failure)
    assert end.detail == "HTTP 401: bad key"


# ---------------------------------------------------------------- 3. error messages


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            500,
            {"error": "TypeError", "message": "Cannot read properties of undefined"},
            "HTTP 500: TypeError: Cannot read properties of undefined",
        ),
        (500, {"error": "Internal", "detail": "boom"}, "HTTP 500: Internal: boom"),
        (500, {"error": "TypeError", "message": "TypeError: x is null"}, "HTTP 500: TypeError: x is null"),
        (404, {"detail": "Not Found"}, "HTTP 404: Not Found"),
        (
            422,
            {"detail": [{"loc": ["body", "messages", 0], "msg": "field required", "type": "missing"}]},
            "HTTP 422: field required (body.messages.0)",
        ),
        (
            422,
            {"detail": [{"loc": ["body", "model"], "msg": "a"}, {"loc": ["query"], "msg": "b"}]},
            "HTTP 422: a (body.model); b (query)",
        ),
        (400, {"error": {"message": "bad thing", "type": "invalid_request_error"}}, "HTTP 400: bad thing"),
        (400, {"message": "flat message"}, "HTTP 400: flat message"),
        (400, {"errors": [{"message": "first"}, {"message": "second"}]}, "HTTP 400: first; second"),
        (400, {"errors": ["one", "two"]}, "HTTP 400: one; two"),
        (500, {"error": {"code": "internal_failure"}}, "HTTP 500: internal_failure"),
        (500, {"error": {"message": "", "type": "server_error"}}, "HTTP 500: server_error"),
        (500, "Internal Server Error", "HTTP 500: Internal Server Error"),
        (
            400,
            [{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}],
            "HTTP 400: API key not valid.",
        ),
        (503, b"Service Unavailable\r\n", "HTTP 503: Service Unavailable"),
        (502, b"upstream connect error\n\nor disconnect", "HTTP 502: upstream connect error or disconnect"),
        (
            502,
            b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
            "HTTP 502: 502 Bad Gateway",
        ),
        (
            520,
            b"<!DOCTYPE html><html><head><TITLE>example.com | 520: Web server &amp; origin &#8212; error"
            b"</TITLE><style>body{color:red}</style></head><body>x</body></html>",
            "HTTP 520: example.com | 520: Web server & origin \u2014 error",
        ),
        (
            504,
            b"<html><head><style>h1 { font: 1em }</style><script>var a = 1 < 2;</script></head>"
            b"<body><h1>Gateway   Timeout</h1><p>The upstream did not answer.</p></body></html>",
            "HTTP 504: Gateway Timeout The upstream did not answer.",
        ),
        (500, b"", "HTTP 500: no error message"),
        (500, {"unexpected": "shape"}, 'HTTP 500: {"unexpected": "shape"}'),
    ],
)
def test_an_error_body_shows_its_most_useful_text(status: int, body: Any, expected: str) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    assert failure_of(status, data).message == expected


def test_a_huge_html_page_gives_a_short_message() -> None:
    page = b"<html><head><title>Oops</title></head><body>" + b"<p>spam spam</p>" * 200_000 + b"</body></html>"
    assert failure_of(500, page, {"Content-Type": "text/html"}).message == "HTTP 500: Oops"
    untitled = b"<html><body>" + b"<p>spam spam</p>" * 200_000 + b"</body></html>"
    message = failure_of(500, untitled).message
    assert message.startswith("HTTP 500: spam spam spam") and len(message) <= MESSAGE_LIMIT


def test_a_huge_text_or_json_message_is_cut() -> None:
    for body in (b"x" * 1_000_000, json.dumps({"error": {"message": "y" * 1_000_000}}).encode()):
        message = failure_of(500, body).message
        assert len(message) <= MESSAGE_LIMIT and message.endswith("\u2026")


def test_pathological_html_is_decoded_quickly() -> None:
    """Unclosed tags and titles must not make the message extraction quadratic."""
    for page in (b"<html>" + b"<" * 300_000, b"<html><title>" * 50_000, b"<html>" + b"<title" * 60_000):
        assert len(failure_of(502, page).message) <= MESSAGE_LIMIT


def test_the_same_text_is_shown_for_an_in_band_error() -> None:
    result = decode(200, {"error": "TypeError", "message": "Cannot read properties of undefined"})
    assert isinstance(result, ModelFailure)
    assert result.message == "error in response: TypeError: Cannot read properties of undefined"


@st.composite
def error_bodies(draw: st.DrawFn) -> bytes:
    """Anything a failing server might answer with: JSON of any shape, text, HTML, bytes."""
    kind = draw(st.sampled_from(["json", "envelope", "text", "html", "bytes"]))
    if kind == "json":
        return json.dumps(draw(json_values(20))).encode()
    if kind == "envelope":
        text = draw(st.text(max_size=3000))
        shape = draw(st.sampled_from(["error", "flat", "detail", "errors", "string_error"]))
        payload: Any = {
            "error": {"message": text, "code": draw(json_values(1))},
            "flat": {"message": text, "type": "x"},
            "detail": {"detail": [{"msg": text, "loc": ["body", text]}] * draw(st.integers(1, 50))},
            "errors": {"errors": [text] * draw(st.integers(0, 50))},
            "string_error": {"error": text, "message": text, "detail": text},
        }[shape]
        return json.dumps(payload).encode()
    if kind == "text":
        return draw(st.text(max_size=5000)).encode("utf-8", "surrogatepass")
    if kind == "html":
        title = draw(st.text(max_size=2000))
        filler = draw(st.text(max_size=100)) * draw(st.integers(0, 100))
        return f"<html><head><title>{title}</title></head><body>{filler}</body></html>".encode(
            "utf-8", "surrogatepass"
        )
    return draw(st.binary(max_size=5000))


@given(status=st.integers(300, 599), body=error_bodies(), data=st.data())
def test_any_error_body_gives_a_bounded_single_line_message(
    status: int, body: bytes, data: st.DataObject
) -> None:
    pieces = data.draw(byte_pieces(body))
    result = decode(status, body, {}, pieces)
    assert isinstance(result, ModelFailure)
    assert result.message.startswith((f"HTTP {status}: ", f"the server redirected (HTTP {status})"))
    assert len(result.message) <= MESSAGE_LIMIT
    assert "\n" not in result.message and "\r" not in result.message
    result.message.encode("utf-8")  # always encodable
    assert result.message.strip() != f"HTTP {status}:"


# ---------------------------------------------------------------- 4. classification

NOT_RETRIED = 0
RETRIED = POLICY.max_attempts - 1

STRING_CODES = [
    ("invalid_api_key", FailureKind.AUTH),
    ("authentication_error", FailureKind.AUTH),
    ("permission_denied", FailureKind.AUTH),
    ("context_length_exceeded", FailureKind.CONTEXT_OVERFLOW),
    ("rate_limit_exceeded", FailureKind.RATE_LIMIT),
    ("insufficient_quota", FailureKind.BAD_REQUEST),
    ("model_not_found", FailureKind.BAD_REQUEST),
    ("invalid_request_error", FailureKind.BAD_REQUEST),
]
"""A string code or type and the kind of an HTTP error carrying it."""


def in_band(kind: FailureKind, code: str) -> tuple[FailureKind, int | None]:
    """(kind, status) of an in-band error with this code: one naming an invalid
    request stays an in-band error, with the status 400 so it is not retried."""
    if code in ("model_not_found", "invalid_request_error"):
        return FailureKind.IN_BAND_ERROR, 400
    return kind, None


def retries_for(kind: FailureKind) -> int:
    return RETRIED if kind is FailureKind.RATE_LIMIT else NOT_RETRIED


@pytest.mark.parametrize(("code", "kind"), STRING_CODES)
@pytest.mark.parametrize("field", ["code", "type"])
def test_a_streamed_in_band_error_is_classified_by_its_string_code(
    code: str, kind: FailureKind, field: str
) -> None:
    error = {"error": {"message": "something went wrong", field: code}}
    data = sse(chunk({"content": "He"}), error)
    for pieces in ([data], [data[i : i + 7] for i in range(0, len(data), 7)]):
        failure = decode(200, b"", SSE, pieces)
        assert isinstance(failure, ModelFailure), failure
        assert (failure.kind, failure.status) == in_band(kind, code)
        assert failure.message == "error in response: something went wrong"
        retries, end = until_turn_ends(failure)
        assert (retries, end.reason) == (retries_for(kind), TurnEnd.FAILED)


@pytest.mark.parametrize(("code", "kind"), STRING_CODES)
def test_a_non_streamed_in_band_error_is_classified_by_its_string_code(code: str, kind: FailureKind) -> None:
    failure = decode(200, {"error": {"message": "m", "type": "error", "code": code}})
    assert isinstance(failure, ModelFailure), failure
    assert (failure.kind, failure.status) == in_band(kind, code)
    assert until_turn_ends(failure)[0] == retries_for(kind)


@pytest.mark.parametrize(("code", "kind"), STRING_CODES)
@pytest.mark.parametrize("status", [400, 500])
def test_an_http_error_body_code_decides_over_a_vague_status(
    code: str, kind: FailureKind, status: int
) -> None:
    """A code naming what went wrong decides; a generic label such as
    `invalid_request_error` yields to a transient status (500), which is retried."""
    failure = failure_of(status, {"error": {"message": "m", "code": code}})
    if status == 500 and code in ("model_not_found", "invalid_request_error"):
        assert failure.kind is FailureKind.SERVER_ERROR, failure
        assert until_turn_ends(failure)[0] == RETRIED
        return
    assert failure.kind is kind, failure
    assert until_turn_ends(failure)[0] == retries_for(kind)


def test_anthropic_and_litellm_style_type_names() -> None:
    anthropic = {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
    assert decode(200, sse(anthropic), SSE).kind is FailureKind.AUTH  # type: ignore[union-attr]
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    streamed = decode(200, sse(overloaded), SSE)
    assert isinstance(streamed, ModelFailure) and until_turn_ends(streamed)[0] == RETRIED
    litellm = {"error": {"message": "litellm.RateLimitError: slow", "type": "RateLimitError", "code": "429"}}
    assert failure_of(400, litellm).kind is FailureKind.RATE_LIMIT
    window = {"error": {"message": "too big", "type": "ContextWindowExceededError"}}
    assert failure_of(500, window).kind is FailureKind.CONTEXT_OVERFLOW


def test_an_openai_401_without_a_code_is_still_auth() -> None:
    body = {
        "error": {"message": "You didn't provide an API key.", "type": "invalid_request_error", "code": None}
    }
    assert failure_of(401, body).kind is FailureKind.AUTH


def test_insufficient_quota_on_a_429_is_not_retried() -> None:
    body = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}}
    failure = failure_of(429, body)
    assert failure.kind is FailureKind.BAD_REQUEST and until_turn_ends(failure)[0] == NOT_RETRIED


@pytest.mark.parametrize(
    ("code", "kind", "retries"),
    [
        (401, FailureKind.AUTH, NOT_RETRIED),
        (403, FailureKind.AUTH, NOT_RETRIED),
        (400, FailureKind.IN_BAND_ERROR, NOT_RETRIED),
        (404, FailureKind.IN_BAND_ERROR, NOT_RETRIED),
        (413, FailureKind.CONTEXT_OVERFLOW, NOT_RETRIED),
        (429, FailureKind.RATE_LIMIT, RETRIED),
        (500, FailureKind.IN_BAND_ERROR, RETRIED),
        (502, FailureKind.IN_BAND_ERROR, RETRIED),
        (503, FailureKind.IN_BAND_ERROR, RETRIED),
    ],
)
@pytest.mark.parametrize("as_text", [False, True])
def test_a_streamed_in_band_error_with_a_numeric_code(
    code: int, kind: FailureKind, retries: int, as_text: bool
) -> None:
    error = {"error": {"message": "m", "code": str(code) if as_text else code}}
    failure = decode(200, sse(chunk({"content": ""}), error), SSE)
    assert isinstance(failure, ModelFailure) and failure.kind is kind and failure.status == code
    assert until_turn_ends(failure)[0] == retries


def test_an_http_413_is_a_context_overflow() -> None:
    page = b"<html><head><title>413 Request Entity Too Large</title></head></html>"
    failure = failure_of(413, page)
    assert failure.kind is FailureKind.CONTEXT_OVERFLOW
    assert failure.message == "HTTP 413: 413 Request Entity Too Large"


@given(
    code=st.sampled_from([c for c, _ in STRING_CODES]) | st.text(max_size=30) | st.integers(-1000, 1000),
    status=st.one_of(st.none(), st.integers(100, 700)),
    message=st.text(max_size=200),
)
def test_in_band_classification_is_total_and_never_retries_a_request_problem(
    code: object, status: int | None, message: str
) -> None:
    error: dict[str, Any] = {"message": message, "code": code}
    if status is not None:
        error["status_code"] = status
    result = decode(200, sse({"error": error}), SSE)
    assert isinstance(result, ModelFailure)
    if result.kind in NEVER_RETRIED:
        assert retry_delay(result, 1, POLICY) is None
    if result.kind is FailureKind.AUTH:
        assert isinstance(code, str) or result.status in (401, 403)


# ---------------------------------------------------------------- 5. empty replies


def actions_for(reply: ModelReply | ModelFailure) -> list[Action]:
    assert isinstance(reply, ModelReply), reply
    _, actions = transition(awaiting_model(), reply)
    return actions


def warnings(actions: list[Action]) -> list[str]:
    return [a.text for a in actions if isinstance(a, ShowText) and a.kind is TextKind.WARNING]


@pytest.mark.parametrize(
    ("data", "finish"),
    [
        (sse(chunk({"role": "assistant", "content": ""}), chunk({}, "stop")), "stop"),
        (sse(chunk({"content": None}), chunk({}, "content_filter")), "content_filter"),
        (sse(chunk({"content": "\n \n"}), chunk({}, "stop")), "stop"),
    ],
)
def test_an_empty_streamed_reply_is_warned_about(data: bytes, finish: str) -> None:
    actions = actions_for(decode(200, b"", SSE, [data[i : i + 5] for i in range(0, len(data), 5)]))
    assert warnings(actions) == [f"the model sent an empty reply (finish_reason: {finish})"]
    end = next(a for a in actions if isinstance(a, EndTurn))
    assert end.reason is TurnEnd.COMPLETED
    shown = next(i for i, a in enumerate(actions) if isinstance(a, ShowText))
    assert shown < actions.index(end)


def test_an_empty_reply_without_a_finish_reason() -> None:
    actions = actions_for(decode(200, sse(chunk({"content": ""})), SSE))
    assert warnings(actions) == ["the model sent an empty reply (no finish_reason)"]


def test_an_empty_non_streamed_reply_is_warned_about() -> None:
    body = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "length"}
        ]
    }
    config = KernelConfig(model="m", system_prompt="s", stream=False)
    _, actions = transition(awaiting_model(config), decode(200, body))
    assert warnings(actions) == ["the model sent an empty reply (finish_reason: length)"]
    end = next(a for a in actions if isinstance(a, EndTurn))
    assert end.reason is TurnEnd.COMPLETED and end.detail == "the reply was cut off at the token limit"


def test_a_hostile_finish_reason_is_shown_short() -> None:
    actions = actions_for(ModelReply(finish_reason="x" * 10_000))
    (warning,) = warnings(actions)
    assert len(warning) < 200


@pytest.mark.parametrize(
    "reply",
    [
        ModelReply(content="hi", finish_reason="stop"),
        ModelReply(reasoning="thinking about it", finish_reason="stop"),
    ],
)
def test_a_reply_with_something_in_it_is_not_warned_about(reply: ModelReply) -> None:
    assert warnings(actions_for(reply)) == []


@given(model_replies(DEMO_TOOLS, ()))
def test_the_empty_reply_warning_appears_exactly_for_empty_replies(reply: ModelReply) -> None:
    actions = actions_for(reply)
    empty = not reply.tool_calls and not reply.content.strip() and not reply.reasoning.strip()
    warned = any("empty reply" in text for text in warnings(actions))
    assert warned == empty
    if empty:
        assert any(isinstance(a, EndTurn) and a.reason is TurnEnd.COMPLETED for a in actions)
