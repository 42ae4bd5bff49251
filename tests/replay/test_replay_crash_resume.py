"""kill -9 mid-recording: the file stays loadable with every completed step, the
session resumes live (appending to the same file), and the whole file replays."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from message_text import text
from replay_helpers import (
    NANO,
    TASK,
    cli_env,
    interaction_indexes,
    record_cli,
    record_inproc,
    run_cli,
    three_step_script,
)

from nano_code.adapters.session_file import SessionFileError, load_session
from nano_code.session.replay import replay_session
from nano_code.testing.fake_server import FakeServer, hang, reply


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _record_then_kill(
    session: Path, workspace: Path, server: FakeServer, home: Path, ready: Callable[[str], object]
) -> None:
    """Run the CLI recording `session`; SIGKILL it once `ready(text)` holds for the file."""
    process = subprocess.Popen(
        [str(NANO), "--record", str(session), "--yes", "-p", TASK],
        cwd=workspace,
        env=cli_env(server.base_url, home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not (session.exists() and ready(session.read_text())):
            assert process.poll() is None, "the CLI ended before it could be killed"
            assert time.monotonic() < deadline, "timed out waiting for the recording"
            time.sleep(0.02)
        time.sleep(0.2)
        orphans = _children(process.pid)  # the shell tool's command, in its own process group
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    for pid in orphans:
        with contextlib.suppress(OSError):  # already gone
            os.killpg(pid, signal.SIGKILL)


def _resume_and_replay(session: Path, workspace: Path, server: FakeServer, home: Path) -> None:
    size_before = session.stat().st_size
    resumed = run_cli(
        ["--resume", str(session), "--yes", "-p", "continue"], workspace, cli_env(server.base_url, home)
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed: the step that was in flight was recorded as interrupted" in resumed.stderr
    assert "session recorded: " + str(session) in resumed.stderr
    text = session.read_text()
    assert session.stat().st_size > size_before

    after = load_session(session)
    assert not after.torn_tail
    inputs = [j["event"]["text"] for j in after.journal if (j.get("event") or {}).get("type") == "UserInput"]
    assert inputs == [TASK, "continue"]
    assert [j["turn_end"]["reason"] for j in after.journal if "turn_end" in j] == ["interrupted", "completed"]
    assert yaml.safe_load(text)["interactions"]

    report = replay_session(session)
    assert report.status == "identical", report.divergence.render() if report.divergence else report.error


def test_kill_during_a_tool_then_resume(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "killed.yaml"
    home = tmp_path / "home"
    script = [
        reply(tool_calls=[("write_file", {"path": "a.txt", "content": "one\n"})]),
        reply(tool_calls=[("shell", {"command": "sleep 20"})]),
        reply(content="picked up where we left off"),
    ]
    with FakeServer(script) as server:
        _record_then_kill(session, workspace, server, home, lambda text: text.count("\n- {") == 2)

        crashed = load_session(session)
        assert len(crashed.interactions) == 2  # every completed step is there
        assert [j["event"]["type"] for j in crashed.journal if "event" in j] == ["UserInput", "ToolResult"]
        plain = yaml.safe_load(session.read_text())
        assert plain["version"] == 1 and len(plain["interactions"]) == 2

        _resume_and_replay(session, workspace, server, home)
        assert len(load_session(session).interactions) == 3
        assert len(server.requests) == 3


def test_kill_while_waiting_for_the_model_then_resume(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "killed.yaml"
    home = tmp_path / "home"
    script = [
        reply(tool_calls=[("write_file", {"path": "a.txt", "content": "one\n"})]),
        hang(15),
        reply(content="done after all"),
    ]
    with FakeServer(script) as server:
        _record_then_kill(
            session,
            workspace,
            server,
            home,
            lambda text: '"ToolResult"' in text and len(server.requests) == 2,
        )
        crashed = load_session(session)
        assert len(crashed.interactions) == 1
        assert yaml.safe_load(session.read_text())["interactions"]

        _resume_and_replay(session, workspace, server, home)
        # the hung request was never answered, so the file holds two interactions
        assert len(load_session(session).interactions) == 2


def test_kill_before_any_interaction_leaves_a_loadable_file(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "early.yaml"
    with FakeServer([hang(15)]) as server:
        _record_then_kill(
            session,
            workspace,
            server,
            tmp_path / "home",
            lambda text: "UserInput" in text and server.requests,
        )
    loaded = load_session(session)
    assert loaded.interactions == []
    assert [j["event"]["type"] for j in loaded.journal] == ["UserInput"]
    plain = yaml.safe_load(session.read_text())
    assert plain["version"] == 1 and plain["metadata"]["format"] == "nano-code-session"


def test_a_torn_last_line_is_ignored_on_load(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "torn.yaml"
    with FakeServer(three_step_script()) as server:
        record_inproc(session, workspace, server.base_url)
    complete = load_session(session)
    last = interaction_indexes(session)[-1]
    lines = session.read_text().split("\n")
    torn_text = "\n".join(lines[:last]) + "\n" + lines[last][: len(lines[last]) // 2]
    session.write_text(torn_text)

    torn = load_session(session)
    assert torn.torn_tail
    assert len(torn.interactions) == 2
    assert torn.records == tuple(r for r in complete.records if r.line <= last)

    # A corrupt line that is *not* the last one is an error, not silently skipped.
    session.write_text(torn_text + '\n#nc {"event": {"type": "Interrupt"}}\n')
    with pytest.raises(SessionFileError, match="corrupt record"):
        load_session(session)


def test_resume_after_a_torn_line_appends_cleanly(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "torn.yaml"
    home = tmp_path / "home"
    script = [*three_step_script(), reply(content="finished")]
    with FakeServer(script) as server:
        record_inproc(session, workspace, server.base_url)
        lines = session.read_text().split("\n")
        last = interaction_indexes(session)[-1]
        session.write_text("\n".join(lines[:last]) + "\n" + lines[last][:100])
        assert load_session(session).torn_tail

        resumed = run_cli(
            ["--resume", str(session), "--yes", "-p", "continue"], workspace, cli_env(server.base_url, home)
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = load_session(session)
    assert not after.torn_tail
    assert len(after.interactions) == 3  # two kept, the torn third gone, one from the resumed turn
    assert yaml.safe_load(session.read_text())["interactions"]  # no corrupt line left behind
    report = replay_session(session)
    assert report.status == "identical", report.divergence.render() if report.divergence else report.error


def test_appending_after_a_record_that_only_lacks_its_newline_keeps_it(
    tmp_path: Path, workspace: Path
) -> None:
    from nano_code.adapters.session_writer import SessionWriter

    session = tmp_path / "s.yaml"
    with FakeServer(three_step_script()) as server:
        record_inproc(session, workspace, server.base_url)
    text = session.read_text()
    assert text.endswith("\n")
    session.write_text(text[:-1])  # the crash hit between the record and its newline
    before = load_session(session)
    assert not before.torn_tail

    writer = SessionWriter(session, None)
    writer.journal({"event": {"type": "Interrupt"}})
    writer.close()
    after = load_session(session)
    assert after.records[:-1] == before.records
    assert after.records[-1].data == {"event": {"type": "Interrupt"}}
    assert yaml.safe_load(session.read_text())["interactions"]


def test_resume_takes_approval_from_this_command_line_not_the_file(tmp_path: Path, workspace: Path) -> None:
    """A session recorded with --yes, resumed without it (and without a terminal): the
    resumed part asks, so here it refuses; the switch is journalled and the file replays."""
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, [reply(content="first turn done")])
    assert load_session(session).metadata["settings"]["auto_approve"] is True
    script = [reply(tool_calls=[("shell", {"command": "touch resumed-ran"})]), reply(content="ok")]
    with FakeServer(script) as server:
        done = run_cli(
            ["--resume", str(session), "-p", "touch it"],
            workspace,
            cli_env(server.base_url, tmp_path / "home"),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        told = server.requests[1]["body"]["messages"][-1]
    assert not (workspace / "resumed-ran").exists()
    assert told["role"] == "tool" and "not run" in text(told).lower()
    assert "ignoring --yes" not in done.stderr
    modes = [record["approval_mode"] for record in load_session(session).journal if "approval_mode" in record]
    assert modes == ["ask"]
    report = replay_session(session)
    assert report.status == "identical", report.divergence.render() if report.divergence else report.error

    # And with --yes on this command line, the resumed part runs it.
    with FakeServer(script) as server:
        done = run_cli(
            ["--resume", str(session), "--yes", "-p", "touch it"],
            workspace,
            cli_env(server.base_url, tmp_path / "home"),
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert (workspace / "resumed-ran").exists()
    report = replay_session(session)
    assert report.status == "identical", report.divergence.render() if report.divergence else report.error


@pytest.mark.parametrize(
    "tail",
    [b"- ", b"-", b'#nc {"event": {"type": "UserInput", "text": "caf\xc3'],
    ids=["interaction-prefix-only", "dash-only", "cut-inside-a-character"],
)
def test_a_tail_cut_anywhere_is_ignored_on_load(tmp_path: Path, workspace: Path, tail: bytes) -> None:
    session = tmp_path / "s.yaml"
    with FakeServer(three_step_script()) as server:
        record_inproc(session, workspace, server.base_url, [TASK])
    whole = load_session(session)
    session.write_bytes(session.read_bytes() + tail)
    torn = load_session(session)
    assert torn.torn_tail and len(torn.records) == len(whole.records)
    assert replay_session(session).status == "identical"
