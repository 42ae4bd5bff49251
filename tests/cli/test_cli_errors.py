"""Server and network failures: clear one-line errors, retries, and the API key kept secret."""

from __future__ import annotations

import json
import socket
import time

import pytest
from cli_helpers import Agent, assert_one_clean_error

from nano_code.testing.fake_server import http_error, reply

FAKE_KEY = "sk-or-v1-e2e-NOT-A-REAL-KEY-5f1c0ffee"


def test_401_says_which_variable_to_set_and_never_shows_the_key(agent: Agent) -> None:
    # A server that echoes the key back must not get it onto the screen or into the recording.
    echo = {"error": {"message": f"No auth credentials for {FAKE_KEY}", "code": 401}}
    server = agent.serve([http_error(401, echo)])
    result = agent.run("-p", "hello", env={"OPENROUTER_API_KEY": FAKE_KEY})

    assert result.returncode == 1
    assert_one_clean_error(result.stderr)
    assert "401" in result.stderr
    assert "OPENROUTER_API_KEY" in result.stderr
    assert len(server.requests) == 1  # a refused key is not retried
    assert server.requests[0]["headers"].get("Authorization") == f"Bearer {FAKE_KEY}"
    assert FAKE_KEY not in result.stdout
    assert FAKE_KEY not in result.stderr
    (path,) = agent.session_files()
    recorded = path.read_text(encoding="utf-8")
    assert FAKE_KEY not in recorded
    assert FAKE_KEY[-12:] not in recorded


@pytest.mark.parametrize(
    "headers", [{"Retry-After": "0"}, {"retry-after-ms": "20"}], ids=["retry-after", "retry-after-ms"]
)
def test_429_is_retried_with_the_same_body(agent: Agent, headers: dict[str, str]) -> None:
    limited = http_error(429, {"error": {"message": "rate limited", "code": 429}}, headers)
    server = agent.serve([limited, reply(content="second try")])
    result = agent.run("-p", "hello")

    assert result.returncode == 0, result.stderr
    assert "second try" in result.stdout
    assert len(server.requests) == 2
    first, second = agent.bodies(server)
    assert first == second
    assert "Traceback" not in result.stderr


def test_a_non_json_200_is_retried_then_fails_cleanly(agent: Agent) -> None:
    server = agent.serve([http_error(200, "<html>gateway says hi</html>", {"Content-Type": "text/html"})] * 6)
    result = agent.run("-p", "hello")

    assert result.returncode == 1
    assert_one_clean_error(result.stderr)
    assert "not JSON" in result.stderr
    bodies = agent.bodies(server)
    assert 2 <= len(bodies) <= 5
    assert all(body == bodies[0] for body in bodies)
    assert result.stdout.strip() == ""


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_fails_with_one_clear_line(agent: Agent) -> None:
    started = time.monotonic()
    result = agent.run(
        "-p", "hello", env={"INFERENCE_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1"}, timeout=60
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    assert_one_clean_error(result.stderr)
    assert "cannot connect" in result.stderr
    assert "HTTPConnection" not in result.stderr  # urllib3's object reprs stay out of the message
    # The kernel's backoff (1 + 2 + 4 + 8 s over 5 attempts) bounds this; nothing may hang beyond it.
    assert elapsed < 40


def test_json_output_reports_the_failure_without_the_key(agent: Agent) -> None:
    agent.serve([http_error(401, {"error": {"message": f"bad key {FAKE_KEY}"}})])
    result = agent.run("-p", "hello", "--json", env={"OPENROUTER_API_KEY": FAKE_KEY})

    assert result.returncode == 1
    assert FAKE_KEY not in result.stdout + result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    (failure,) = [o for o in objects if o["type"] == "ModelFailure"]
    assert failure["kind"] == "event"
    assert failure["failure_kind"] == "auth"
    assert failure["status"] == 401
    assert objects[-1]["kind"] == "action"
    assert "OPENROUTER_API_KEY" in result.stderr
