"""A transient HTTP status (408, 409, 429, 5xx) decides over a body's generic type
label: LiteLLM answers a timeout with 408 and `invalid_request_error` (issue 18, item 7)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nano_code.kernel.actions import EndTurn, RetryModel, TurnEnd
from nano_code.kernel.events import FailureKind, ModelFailure, UserInput
from nano_code.kernel.failures import classify_http_error, in_band_failure
from nano_code.kernel.machine import transition
from nano_code.kernel.policy import is_transient_status, retry_delay
from nano_code.kernel.state import initial_state
from nano_code.kernel.types import ApprovalMode, KernelConfig
from nano_code.testing.strategies import DEMO_TOOLS

CONFIG = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.AUTO)
POLICY = CONFIG.retry
TRANSIENT = (408, 409, 429, 500, 502, 503, 504, 529)

LITELLM_TIMEOUT = {
    "error": {
        "message": (
            "litellm.Timeout: APITimeoutError - Request timed out. Error_str: Request timed out."
            " LiteLLM Retried: 0 times"
        ),
        "type": "invalid_request_error",
        "param": None,
        "code": "408",
    }
}
"""LiteLLM's proxy body for a timeout, as it sends it with HTTP 408."""

GENERIC_LABELS = ("invalid_request_error", "invalid_request", "bad_request", "bad_request_error", "not_found")


def retries_until_the_turn_ends(failure: ModelFailure) -> tuple[int, TurnEnd]:
    """Feed the same failure until the turn ends: (retries made, how the turn ended)."""
    state, _ = transition(initial_state(CONFIG), UserInput("go"))
    for retries in range(POLICY.max_attempts + 1):
        state, actions = transition(state, failure)
        ends = [a for a in actions if isinstance(a, EndTurn)]
        if ends:
            return retries, ends[0].reason
        assert any(isinstance(a, RetryModel) for a in actions), actions
    raise AssertionError("the turn never ended")


def test_litellm_408_timeout_is_retried_until_attempts_run_out() -> None:
    failure = classify_http_error(
        408, {"content-type": "application/json"}, json.dumps(LITELLM_TIMEOUT).encode()
    )
    assert failure.kind is FailureKind.SERVER_ERROR
    assert failure.status == 408
    assert failure.message.startswith("HTTP 408: litellm.Timeout")
    assert retries_until_the_turn_ends(failure) == (POLICY.max_attempts - 1, TurnEnd.FAILED)


@pytest.mark.parametrize("status", TRANSIENT)
@pytest.mark.parametrize("label", GENERIC_LABELS)
def test_a_transient_status_decides_over_a_generic_label(status: int, label: str) -> None:
    body = {"error": {"message": "upstream hiccup", "type": label, "param": None, "code": str(status)}}
    failure = classify_http_error(status, {}, json.dumps(body).encode())
    assert failure.kind is (FailureKind.RATE_LIMIT if status == 429 else FailureKind.SERVER_ERROR)
    assert retry_delay(failure, 1, POLICY) is not None


def test_an_in_band_error_with_a_transient_code_is_retried() -> None:
    """The same envelope inside a 200 (a stream that failed midway) keeps its 503."""
    failure = in_band_failure({"message": "overloaded", "type": "invalid_request_error", "code": "503"})
    assert (failure.kind, failure.status) == (FailureKind.IN_BAND_ERROR, 503)
    assert retry_delay(failure, 1, POLICY) is not None
    plain = in_band_failure({"message": "bad", "type": "invalid_request_error"})
    assert plain.status == 400 and retry_delay(plain, 1, POLICY) is None


def test_a_code_that_names_the_problem_still_decides() -> None:
    """Specific codes are not labels: quota on a 429, auth or context overflow on a 5xx."""
    quota = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}}
    assert classify_http_error(429, {}, json.dumps(quota).encode()).kind is FailureKind.BAD_REQUEST
    window = {
        "error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}
    }
    assert classify_http_error(503, {}, json.dumps(window).encode()).kind is FailureKind.CONTEXT_OVERFLOW
    auth = {"error": {"message": "no", "type": "authentication_error"}}
    assert classify_http_error(502, {}, json.dumps(auth).encode()).kind is FailureKind.AUTH


def test_a_non_transient_status_with_a_generic_label_is_still_not_retried() -> None:
    body = dict(LITELLM_TIMEOUT, error=dict(LITELLM_TIMEOUT["error"], code="400"))
    failure = classify_http_error(400, {}, json.dumps(body).encode())
    assert failure.kind is FailureKind.BAD_REQUEST and retry_delay(failure, 1, POLICY) is None


_label = st.sampled_from(GENERIC_LABELS) | st.text(max_size=20) | st.none() | st.integers(-1, 999)
_message = st.text(max_size=120).filter(lambda m: "try again" not in m.lower() and "context" not in m.lower())


@st.composite
def error_bodies(draw: st.DrawFn) -> bytes:
    """Error bodies of the shapes servers send, labelled with anything but a code that
    names the problem (auth, quota, rate limit, context overflow)."""
    error: dict[str, Any] = {"message": draw(_message)}
    for key in draw(st.sets(st.sampled_from(["type", "code", "param", "status"]))):
        error[key] = draw(_label)
    shape = draw(st.sampled_from(["openai", "flat", "string", "raw"]))
    if shape == "raw":
        return draw(st.binary(max_size=200))
    if shape == "flat":
        return json.dumps({"object": "error", **error}).encode()
    if shape == "string":
        return json.dumps({"error": "Error", "message": error["message"]}).encode()
    return json.dumps({"error": error}).encode()


_SPECIFIC = re.compile(
    "api_key|auth|permission|forbidden|denied|deactivated|quota|credit|balance|billing|payment"
    "|context|prompt_too_long|too_large|rate_limit|too_many|exhausted"
)
"""Words of the codes that name a problem (auth, quota, context overflow, rate limit)."""


@given(
    status=st.sampled_from(TRANSIENT) | st.integers(500, 599), body=error_bodies(), attempt=st.integers(1, 10)
)
def test_any_body_with_a_transient_status_is_retried_while_attempts_remain(
    status: int, body: bytes, attempt: int
) -> None:
    assert is_transient_status(status)
    text = body.decode("utf-8", "replace").lower()
    if _SPECIFIC.search(re.sub(r"[\s.-]+", "_", text)):
        return  # a code naming the problem decides (tested above)
    failure = classify_http_error(status, {}, body)
    assert failure.kind not in (FailureKind.BAD_REQUEST, FailureKind.AUTH, FailureKind.CONTEXT_OVERFLOW)
    delay = retry_delay(failure, attempt, POLICY)
    assert (delay is not None) == (attempt < POLICY.max_attempts)
