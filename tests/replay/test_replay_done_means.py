"""The issue's "done means": a session recorded by the real CLI replays identically
with no network at all, including retries and interrupts, and replay never fetches
anything live."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from replay_helpers import (
    NANO,
    TASK,
    cli_env,
    delete_line,
    interaction_indexes,
    record_cli,
    record_inproc,
    record_lines,
    replay_cli,
    three_step_script,
)

from nano_code.adapters.session_file import load_session
from nano_code.session.replay import replay_session
from nano_code.testing.fake_server import FakeServer, http_error, reply


@pytest.mark.parametrize("stream_flag", ["--stream", "--no-stream"])
def test_cli_recording_replays_identically_without_network(
    tmp_path: Path, workspace: Path, stream_flag: str, unshare_ok: None
) -> None:
    session = tmp_path / "s.yaml"
    done, server = record_cli(session, workspace, three_step_script(), extra=[stream_flag])
    assert "hi there" in done.stdout
    assert (workspace / "hello.py").read_text() == "print('hi there')\n"
    assert len(server.requests) == 3
    assert all(bool(r["body"].get("stream")) is (stream_flag == "--stream") for r in server.requests)

    loaded = load_session(session)
    assert len(loaded.interactions) == 3
    content_types = {i["response"]["headers"]["Content-Type"][0] for i in loaded.interactions}
    assert content_types == ({"text/event-stream"} if stream_flag == "--stream" else {"application/json"})

    # Replay somewhere else, inside a namespace with no network at all: the tools
    # are served from the recording, so nothing is written there either.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    replayed = replay_cli(str(session), cwd=elsewhere, home=tmp_path / "home", unshare=True)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "identical (3 steps, 2 tool calls)" in replayed.stdout
    assert "Done: hello.py prints hi there." in replayed.stdout  # the transcript is shown again
    assert not (elsewhere / "hello.py").exists()

    quiet = replay_cli("--json", str(session), cwd=elsewhere, home=tmp_path / "home", unshare=True)
    assert quiet.returncode == 0, quiet.stderr
    (report,) = [json.loads(line) for line in quiet.stdout.splitlines()]
    assert report["status"] == "identical"
    assert (report["steps"], report["tool_calls"]) == (3, 2)
    assert report["usage"]["total_tokens"] == 360
    assert report["divergence"] is None


def test_retry_after_429_replays_identically_without_sleeping(
    tmp_path: Path, workspace: Path, unshare_ok: None
) -> None:
    session = tmp_path / "retry.yaml"
    script = [
        http_error(429, {"error": {"message": "slow down", "code": 429}}, headers={"Retry-After": "1"}),
        reply(content="finally"),
    ]
    started = time.monotonic()
    record_cli(session, workspace, script, task="say something")
    assert time.monotonic() - started >= 1.0  # the live run honoured Retry-After

    loaded = load_session(session)
    assert [i["response"]["status"]["code"] for i in loaded.interactions] == [429, 200]
    (retry,) = [j["retry"] for j in loaded.journal if "retry" in j]
    assert retry["delay"] == 1.0

    report = replay_session(session)
    assert report.status == "identical", report
    assert report.steps == 2  # the failed attempt and its retry are both model calls
    assert report.seconds < 0.8, "replay must not sleep the recorded Retry-After"

    replayed = replay_cli(str(session), cwd=tmp_path, home=tmp_path / "home", unshare=True)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "identical" in replayed.stdout


def _wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_ctrl_c_during_a_tool_replays_identically(tmp_path: Path, workspace: Path, unshare_ok: None) -> None:
    session = tmp_path / "interrupted.yaml"
    script = [reply(tool_calls=[("shell", {"command": "echo started; sleep 30"})])]
    with FakeServer(script) as server:
        process = subprocess.Popen(
            [str(NANO), "--record", str(session), "--yes", "-p", "wait a bit"],
            cwd=workspace,
            env=cli_env(server.base_url, tmp_path / "home"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for(lambda: session.exists() and "- {" in session.read_text())
            time.sleep(0.3)  # the shell tool is running `sleep 30` now
            started = time.monotonic()
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, out + err
    assert time.monotonic() - started < 10, "the interrupted tool must be stopped, not waited for"

    journal = load_session(session).journal
    assert any((j.get("event") or {}).get("type") == "Interrupt" for j in journal)
    assert any((j.get("turn_end") or {}).get("reason") == "interrupted" for j in journal)

    report = replay_session(session)
    assert report.status == "identical", report
    replayed = replay_cli(str(session), cwd=tmp_path, home=tmp_path / "home", unshare=True)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_replay_fails_closed_when_a_response_is_missing(tmp_path: Path, workspace: Path) -> None:
    """A model call whose recorded interaction is gone is a divergence, never a live call."""
    session = tmp_path / "s.yaml"
    with FakeServer(three_step_script()) as server:
        record_inproc(session, workspace, server.base_url, [TASK])
        assert len(server.requests) == 3
        assert (workspace / "hello.py").exists()
        delete_line(session, interaction_indexes(session)[1])  # step 2's response; its journal stays

        report = replay_session(session)
        assert report.status in ("diverged", "error"), report
        assert not report.ok
        if report.divergence is not None:
            assert report.divergence.step == 2
        # The server is still listening at the recorded address, and heard nothing.
        assert len(server.requests) == 3

    # The last interaction gone (nothing after it to notice): still never fetched.
    last = tmp_path / "last.yaml"
    with FakeServer(three_step_script()) as server:
        record_inproc(last, workspace, server.base_url, [TASK])
        delete_line(last, interaction_indexes(last)[-1])
        before = len(server.requests)
        report = replay_session(last)
        assert not report.ok, report
        assert len(server.requests) == before
    assert any(kind == "journal" for _, kind, _ in record_lines(last))


def test_replay_cli_fails_closed_offline(tmp_path: Path, workspace: Path, unshare_ok: None) -> None:
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, three_step_script())
    delete_line(session, interaction_indexes(session)[1])
    replayed = replay_cli(str(session), cwd=tmp_path, home=tmp_path / "home", unshare=True)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "diverged at step 2" in replayed.stdout or "error" in replayed.stdout
