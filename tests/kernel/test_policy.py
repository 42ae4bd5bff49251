"""The kernel's decisions, as pure functions: retries, truncation, approval, argument checks."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nano_code.kernel.events import FailureKind, ModelFailure
from nano_code.kernel.policy import (
    MAX_ARGUMENT_DEPTH,
    Approval,
    approval_requirement,
    cut_middle,
    format_tool_output,
    parse_arguments,
    retry_delay,
)
from nano_code.kernel.types import ApprovalMode, RetryPolicy, ToolSpec
from nano_code.testing.strategies import DEMO_TOOLS, model_failures, retry_policies

POLICY = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=30.0, max_server_wait=120.0)
READ, WRITE, SHELL, NOW = DEMO_TOOLS


def failure(kind: FailureKind, status: int | None = None, retry_after: float | None = None) -> ModelFailure:
    return ModelFailure(kind=kind, message="m", status=status, retry_after=retry_after)


# ---------------------------------------------------------------- retry_delay


@pytest.mark.parametrize("kind", [FailureKind.AUTH, FailureKind.BAD_REQUEST, FailureKind.CONTEXT_OVERFLOW])
def test_request_problems_are_never_retried(kind: FailureKind) -> None:
    assert retry_delay(failure(kind, 400, retry_after=1.0), 1, POLICY) is None


@pytest.mark.parametrize(
    "kind",
    [
        FailureKind.RATE_LIMIT,
        FailureKind.SERVER_ERROR,
        FailureKind.TRANSPORT,
        FailureKind.TIMEOUT,
        FailureKind.MALFORMED,
        FailureKind.IN_BAND_ERROR,
    ],
)
def test_transient_failures_are_retried_with_exponential_backoff_and_a_cap(kind: FailureKind) -> None:
    delays = [retry_delay(failure(kind), attempt, POLICY) for attempt in range(1, 5)]
    assert delays == [1.0, 2.0, 4.0, 8.0]
    capped = RetryPolicy(max_attempts=20, base_delay=1.0, max_delay=30.0)
    assert retry_delay(failure(kind), 10, capped) == 30.0


def test_attempts_are_bounded() -> None:
    assert retry_delay(failure(FailureKind.SERVER_ERROR), 4, POLICY) is not None
    assert retry_delay(failure(FailureKind.SERVER_ERROR), 5, POLICY) is None
    assert retry_delay(failure(FailureKind.SERVER_ERROR), 1, RetryPolicy(max_attempts=1)) is None


def test_server_wait_is_honoured_even_beyond_the_backoff_cap() -> None:
    assert retry_delay(failure(FailureKind.RATE_LIMIT, 429, retry_after=18.642), 1, POLICY) == 18.642
    assert retry_delay(failure(FailureKind.RATE_LIMIT, 429, retry_after=100.0), 3, POLICY) == 100.0
    assert retry_delay(failure(FailureKind.RATE_LIMIT, 429, retry_after=0.0), 1, POLICY) == 0.0


def test_a_server_wait_longer_than_allowed_means_giving_up() -> None:
    assert retry_delay(failure(FailureKind.RATE_LIMIT, 429, retry_after=120.0), 1, POLICY) == 120.0
    assert retry_delay(failure(FailureKind.RATE_LIMIT, 429, retry_after=120.5), 1, POLICY) is None
    assert retry_delay(failure(FailureKind.RATE_LIMIT, 429, retry_after=411480.0), 1, POLICY) is None


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_in_band_client_errors_are_not_retried(status: int) -> None:
    assert retry_delay(failure(FailureKind.IN_BAND_ERROR, status), 1, POLICY) is None


@pytest.mark.parametrize("status", [None, 408, 409, 429, 500, 502, 503])
def test_in_band_transient_errors_are_retried(status: int | None) -> None:
    assert retry_delay(failure(FailureKind.IN_BAND_ERROR, status), 1, POLICY) == 1.0


@given(failure=model_failures(), attempt=st.integers(1, 10_000), policy=retry_policies())
def test_retry_delay_is_total_and_bounded(failure: ModelFailure, attempt: int, policy: RetryPolicy) -> None:
    delay = retry_delay(failure, attempt, policy)
    if delay is not None:
        assert attempt < policy.max_attempts
        assert 0.0 <= delay <= max(policy.max_delay, policy.max_server_wait)


def test_regression_huge_attempt_count_does_not_overflow() -> None:
    """2.0 ** (attempt - 1) overflowed for attempt > 1024 with a generous max_attempts."""
    policy = RetryPolicy(max_attempts=5000, base_delay=1.0, max_delay=30.0)
    assert retry_delay(failure(FailureKind.SERVER_ERROR), 2000, policy) == 30.0


# ---------------------------------------------------------------- cut_middle


def test_short_text_is_kept_whole() -> None:
    assert cut_middle("abc", 3) == "abc"
    assert format_tool_output("ok", None, 200) == "ok"


def test_cut_keeps_head_and_tail_and_says_how_much_was_cut() -> None:
    text = "".join(f"line {n}\n" for n in range(1000))
    cut = cut_middle(text, 1000)
    head, marker, tail = (
        cut.split("\n", 1)[0],
        re.search(r"\[\.\.\. (\d+) characters omitted \.\.\.\]", cut),
        cut,
    )
    assert text.startswith(cut[: cut.index("\n[...")])
    assert text.endswith(cut[cut.index("omitted ...]\n") + len("omitted ...]\n") :])
    assert head == "line 0" and tail.endswith("line 999\n")
    assert marker is not None
    kept = len(cut) - len(marker.group(0)) - 2
    assert int(marker.group(1)) == len(text) - kept
    assert kept == 1000


@given(text=st.text(max_size=3000), limit=st.integers(200, 2000))
def test_cut_middle_is_lossless_about_what_it_drops(text: str, limit: int) -> None:
    cut = cut_middle(text, limit)
    if len(text) <= limit:
        assert cut == text
        return
    match = re.search(r"\n\[\.\.\. (\d+) characters omitted \.\.\.\]\n", cut)
    assert match is not None
    head, tail = cut[: match.start()], cut[match.end() :]
    assert text.startswith(head) and text.endswith(tail)
    assert len(head) + len(tail) + int(match.group(1)) == len(text)
    assert len(head) + len(tail) <= limit


def test_exit_status_is_reported() -> None:
    assert format_tool_output("boom", 2, 200) == "boom\n[exit status: 2]"
    assert format_tool_output("", 0, 200) == "[exit status: 0]"


# ---------------------------------------------------------------- approval


@pytest.mark.parametrize(
    ("spec", "mode", "always", "inside", "expected"),
    [
        (READ, ApprovalMode.ASK, frozenset(), None, Approval.NEEDS_FACTS),
        (READ, ApprovalMode.ASK, frozenset(), True, Approval.RUN),
        (READ, ApprovalMode.ASK, frozenset(), False, Approval.ASK),
        (READ, ApprovalMode.AUTO, frozenset(), False, Approval.RUN),
        (READ, ApprovalMode.ASK, frozenset({"read_file"}), False, Approval.RUN),
        (WRITE, ApprovalMode.ASK, frozenset(), True, Approval.ASK),
        (WRITE, ApprovalMode.ASK, frozenset(), None, Approval.ASK),
        (WRITE, ApprovalMode.AUTO, frozenset(), False, Approval.RUN),
        (WRITE, ApprovalMode.ASK, frozenset({"write_file"}), False, Approval.RUN),
        (WRITE, ApprovalMode.ASK, frozenset({"shell"}), True, Approval.ASK),
        (SHELL, ApprovalMode.ASK, frozenset(), None, Approval.ASK),
        (SHELL, ApprovalMode.AUTO, frozenset(), None, Approval.RUN),
        (NOW, ApprovalMode.ASK, frozenset(), None, Approval.RUN),
    ],
)
def test_approval_matrix(
    spec: ToolSpec, mode: ApprovalMode, always: frozenset[str], inside: bool | None, expected: Approval
) -> None:
    assert approval_requirement(spec, mode, always, inside) is expected


# ---------------------------------------------------------------- parse_arguments


def test_valid_arguments_parse() -> None:
    assert parse_arguments(READ, "read_file", '{"path": "a.txt", "offset": 3}') == {
        "path": "a.txt",
        "offset": 3,
    }
    assert parse_arguments(SHELL, "shell", '{"command": "ls", "timeout": 5}') == {
        "command": "ls",
        "timeout": 5,
    }


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_absent_null_or_empty_arguments_mean_none(raw: str | None) -> None:
    assert parse_arguments(NOW, "current_time", raw) == {}


@pytest.mark.parametrize(
    ("spec", "name", "raw", "says"),
    [
        (None, "rm_rf", "{}", ["no tool named 'rm_rf'", "Use one of the tools"]),
        (READ, "read_file", '{"path": "a', ["not valid JSON", "not run", "complete JSON object"]),
        (READ, "read_file", "[]", ["must be a JSON object", "not run"]),
        (READ, "read_file", '"a.txt"', ["must be a JSON object"]),
        (READ, "read_file", None, ["needs the parameter(s) path", "not run"]),
        (WRITE, "write_file", "{}", ["needs the parameter(s) path, content"]),
        (READ, "read_file", '{"path": 7}', ["parameter 'path'", "type string"]),
        (READ, "read_file", '{"path": "a", "offset": "3"}', ["parameter 'offset'", "type integer"]),
        (READ, "read_file", '{"path": "a", "offset": true}', ["parameter 'offset'", "type integer"]),
        (SHELL, "shell", '{"command": "ls", "timeout": NaN}', ["not valid JSON", "NaN"]),
    ],
)
def test_unusable_arguments_explain_themselves(
    spec: ToolSpec | None, name: str, raw: str | None, says: list[str]
) -> None:
    message = parse_arguments(spec, name, raw)
    assert isinstance(message, str) and message.startswith("Error:")
    for fragment in says:
        assert fragment in message


def test_regression_nan_and_infinity_are_not_json() -> None:
    """Python's json accepts NaN/Infinity; strict servers reject them when the history is replayed."""
    assert isinstance(parse_arguments(NOW, "current_time", '{"value": NaN, "limit": Infinity}'), str)
    assert isinstance(parse_arguments(NOW, "current_time", '{"x": -Infinity}'), str)


def test_regression_deeply_nested_arguments_do_not_raise() -> None:
    """json.loads raised RecursionError (not a ValueError) out of transition."""
    message = parse_arguments(NOW, "current_time", "[" * 100_000)
    assert isinstance(message, str) and "not valid JSON" in message


def test_regression_arguments_nested_too_deep_are_refused() -> None:
    """A 600-deep arguments object parsed fine but broke serialising the state."""
    deep = '{"a":' * 600 + "1" + "}" * 600
    message = parse_arguments(NOW, "current_time", deep)
    assert isinstance(message, str) and f"nested more than {MAX_ARGUMENT_DEPTH}" in message
    ok = '{"a":' * (MAX_ARGUMENT_DEPTH - 1) + "1" + "}" * (MAX_ARGUMENT_DEPTH - 1)
    assert isinstance(parse_arguments(NOW, "current_time", ok), dict)
    assert json.loads(ok) == parse_arguments(NOW, "current_time", ok)
