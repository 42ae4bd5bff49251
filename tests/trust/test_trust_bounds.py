"""Issue 7, item 4: a reply is bounded in bytes (after decompression) and in time.

At small scale, through the settings NANO_CODE_MAX_RESPONSE_BYTES and
NANO_CODE_CALL_TIMEOUT, against a raw server of our own on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from cli_helpers import Agent, assert_one_clean_error
from trust_helpers import (
    SSE_HEAD,
    Connection,
    Measured,
    RawServer,
    answer,
    compression_bomb,
    endless,
    head_bytes,
    run_measured,
    send_response,
)

from nano_code.adapters.session_file import load_session
from nano_code.testing.fake_server import http_error

CAP = 64 * 1024
CAP_SETTING = "NANO_CODE_MAX_RESPONSE_BYTES"
TIME_SETTING = "NANO_CODE_CALL_TIMEOUT"


def _run(agent: Agent, base_url: str, env: Mapping[str, str], *args: str, timeout: float = 20) -> Measured:
    full_env = agent.env({"INFERENCE_BASE_URL": base_url, **env})
    return run_measured(agent.command(args), agent.workspace, full_env, timeout=timeout)


def test_4a_endless_keep_alive_comments_stop_at_the_cap(agent: Agent) -> None:
    record = agent.workspace / "flood.yaml"
    flood = endless(head_bytes(200, SSE_HEAD), b": keep-alive\n")
    with RawServer([flood, flood]) as server:
        done = _run(agent, server.base_url, {CAP_SETTING: str(CAP)}, "-p", "hi", "--record", str(record))
        assert server.wait_for_connections(1, timeout=5)
        connections = list(server.connections)

    assert done.returncode == 1, done.stderr
    assert_one_clean_error(done.stderr)
    error = next(line for line in done.stderr.splitlines() if line.startswith("error"))
    assert CAP_SETTING in error and f"{CAP:,}" in error, error
    assert "retrying" not in done.stderr
    assert len(connections) == 1, "a reply over the cap must not be asked for again"
    assert connections[0].sent > CAP  # the server did send more than the cap
    assert done.seconds < 8
    assert record.stat().st_size < 10 * CAP, record.stat().st_size
    session = load_session(record)
    assert session.metadata["format"] == "nano-code-session"


@pytest.mark.parametrize(
    ("encoding", "stream"),
    [
        ("gzip", "--stream"),
        ("gzip", "--no-stream"),
        ("deflate", "--stream"),
        ("gzip-members", "--no-stream"),
    ],
)
def test_4b_compression_bomb_is_inflated_only_up_to_the_cap(agent: Agent, encoding: str, stream: str) -> None:
    cap = 1 << 20
    bomb = compression_bomb(b" " * 64, 200 << 20, encoding)  # 200 MiB of spaces
    assert len(bomb) < 250_000  # ~200 KB on the wire
    content_type = "text/event-stream" if stream == "--stream" else "application/json"
    wire_encoding = "gzip" if encoding == "gzip-members" else encoding

    def handle(connection: Connection) -> None:
        send_response(connection, 200, bomb, content_type, {"Content-Encoding": wire_encoding})

    record = agent.workspace / "bomb.yaml"
    with RawServer([handle, handle]) as server:
        done = _run(
            agent, server.base_url, {CAP_SETTING: str(cap)}, "-p", "hi", stream, "--record", str(record)
        )
        connections = list(server.connections)

    assert done.returncode == 1, done.stderr
    assert_one_clean_error(done.stderr)
    assert CAP_SETTING in done.stderr
    assert len(connections) == 1
    assert done.seconds < 8, done.seconds
    # Inflated whole it takes 200 MiB and more (about 850 MiB peak when measured without a
    # cap); capped, nano-code stays near its usual size.
    assert done.max_rss_kib < 150 * 1024, f"peak RSS {done.max_rss_kib} KiB"
    assert record.stat().st_size < 10 * cap
    load_session(record)


def test_4a_an_endless_error_body_is_capped_too(agent: Agent) -> None:
    flood = endless(head_bytes(500, {"Content-Type": "text/plain", "Connection": "close"}), b"x" * 1024)
    with RawServer([flood, flood]) as server:
        done = _run(agent, server.base_url, {CAP_SETTING: str(CAP)}, "-p", "hi", "--no-record")
        connections = list(server.connections)
    assert done.returncode == 1, done.stderr
    assert_one_clean_error(done.stderr)
    assert CAP_SETTING in done.stderr
    assert len(connections) == 1
    assert done.seconds < 8


def test_4c_every_attempt_is_bounded_by_the_call_timeout(agent: Agent) -> None:
    """A server that trickles keep-alives on attempt after attempt: each one is cut off
    at the limit and retried, so the whole call is bounded by attempts x limit plus
    the retry delays, and the answer that finally comes is shown."""
    limit = 1.0
    trickle = endless(head_bytes(200, SSE_HEAD) + b": keep-alive\n", b"\n", interval=0.2)
    with RawServer([trickle, trickle, answer("THIRD-TIME")]) as server:
        done = _run(agent, server.base_url, {TIME_SETTING: str(limit)}, "-p", "hi", timeout=30)
        assert server.wait_for_connections(3, timeout=5)
        connections = list(server.connections)
    assert done.returncode == 0, done.stderr
    assert "THIRD-TIME" in done.stdout
    assert done.stderr.count(TIME_SETTING) == 2, done.stderr
    assert "retrying" in done.stderr, done.stderr
    for connection in connections[:2]:
        assert connection.ended is not None
        took = connection.ended - connection.started
        assert limit - 0.3 <= took <= limit + 1.5, f"a trickling attempt lasted {took:.2f} s"
    # Two attempts cut at 1 s each, retry delays 1 + 2 s, a quick third attempt, and slack.
    assert done.seconds < 2 * limit + 3 + 3, done.seconds


def test_4d_an_unknown_content_encoding_is_a_clear_error(agent: Agent) -> None:
    body = '{"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}'
    agent.serve(
        [
            http_error(200, body, headers={"Content-Encoding": "br"}),
            http_error(200, body, headers={"Content-Encoding": "br"}),
        ]
    )
    done = agent.run("-p", "hi", "--no-stream", timeout=20)
    assert done.returncode == 1, done.stderr
    assert_one_clean_error(done.stderr)
    assert "Content-Encoding" in done.stderr and "'br'" in done.stderr, done.stderr
    assert "retrying" not in done.stderr
    assert len(agent.requests()) == 1


def _silent(connection: Connection) -> None:
    """Accepts the request and never answers (until the client hangs up)."""
    while not connection.gone(0.2) and not connection.stopping.is_set():
        pass


@pytest.mark.parametrize(
    "server_kind",
    ["silent", "header trickle"],
)
def test_4c_the_call_timeout_bounds_the_wait_for_the_headers_too(agent: Agent, server_kind: str) -> None:
    limit = 1.0
    slow = (
        _silent
        if server_kind == "silent"
        else endless(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Slow: ", b"a", interval=0.2)
    )
    with RawServer([slow, answer("AFTER-THE-WAIT")]) as server:
        done = _run(agent, server.base_url, {TIME_SETTING: str(limit)}, "-p", "hi", "--no-record", timeout=6)
    assert done.returncode == 0, done.stderr
    assert TIME_SETTING in done.stderr
    assert "AFTER-THE-WAIT" in done.stdout
