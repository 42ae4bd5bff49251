"""Issue 18, items 5, 10 and 12: one writer per session file, a full disk, big records.

- 5: a session file has one writer at a time. A second `--resume S` (or a resume
  of a session still being recorded) is refused with "S is open in process PID";
  the lock of a writer that was killed is taken over.
- 10: a disk that fills up while recording stops the run with one plain line
  (recording stopped, where, what is kept and how to resume), never "session
  recorded" nor "internal error"; the file stays loadable and resumable. Tested
  on a real 64 KiB tmpfs mounted for the test (root only).
- 12: `nano-code sessions` lists a file with a big record without holding it (peak
  RSS measured in a fresh process); a record over MAX_RECORD_BYTES is one clear
  line from every reader, read no further than the cap.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import Agent, assert_one_clean_error, kill_if_running, wait_for
from trust_helpers import run_measured

from nano_code.adapters import session_file
from nano_code.adapters.session_file import MAX_RECORD_BYTES, SessionFileError, load_session
from nano_code.adapters.session_lock import SessionLocked
from nano_code.adapters.session_writer import RecordingStopped, SessionWriter
from nano_code.testing.fake_server import hang, reply

MIB = 1 << 20


def _record(agent: Agent, path: Path, task: str = "first task") -> Path:
    agent.serve([reply(tool_calls=[("shell", {"command": "echo hi"})]), reply(content="done")])
    done = agent.run("-p", task, "--yes", "--record", str(path))
    assert done.returncode == 0, done.stderr
    return path


def _writing(agent: Agent, *args: str) -> subprocess.Popen[str]:
    """A nano-code that holds its session open: its model never answers."""
    server = agent.serve([hang(30)])
    process = agent.spawn(*args, text=True)
    assert wait_for(lambda: len(server.requests) == 1, timeout=20), "no request reached the server"
    return process


@contextlib.contextmanager
def _writer(agent: Agent, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`_writing`, ended with SIGTERM (and killed if need be) when the block is left."""
    first = _writing(agent, *args)
    try:
        yield first
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=20)
        kill_if_running(first)


def _assert_refused_as_open(second: subprocess.CompletedProcess[str], session: Path, first: int) -> None:
    assert second.returncode == 2, second.stderr
    assert_one_clean_error(second.stderr)
    assert f"nano-code: {session} is open in process {first}" in second.stderr.splitlines()


# ------------------------------------------------------------------------------------------ item 5


def test_5_a_second_resume_of_a_session_being_written_is_refused(agent: Agent, tmp_path: Path) -> None:
    session = _record(agent, tmp_path / "s.yaml")
    with _writer(agent, "--resume", str(session), "-p", "continue") as first:
        before = session.read_bytes()
        second = agent.run("--resume", str(session), "-p", "continue too", timeout=20)
        assert session.read_bytes() == before  # the second wrote nothing
    _assert_refused_as_open(second, session, first.pid)


def test_5_resume_of_a_session_still_being_recorded_is_refused(agent: Agent, tmp_path: Path) -> None:
    session = tmp_path / "live.yaml"
    with _writer(agent, "-p", "a long task", "--record", str(session)) as first:
        second = agent.run("--resume", str(session), "-p", "butt in", timeout=20)
    _assert_refused_as_open(second, session, first.pid)
    assert "internal error" not in second.stderr


def test_5_the_lock_of_a_killed_writer_is_taken_over(agent: Agent, tmp_path: Path) -> None:
    session = tmp_path / "killed.yaml"
    first = _writing(agent, "-p", "a task that dies", "--record", str(session))
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=20)

    agent.serve([reply(content="picked up")])
    resumed = agent.run("--resume", str(session), "-p", "go on", timeout=30)
    assert resumed.returncode == 0, resumed.stderr
    assert "is open in process" not in resumed.stderr
    assert any("go on" in json.dumps(record) for record in load_session(session).journal)


def test_5_one_writer_in_process_too(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    metadata = {"format": "nano-code-session", "format_version": 2}
    writer = SessionWriter(path, metadata)
    writer.journal({"note": 1})
    with pytest.raises(SessionLocked) as refused:
        SessionWriter(path, None, resume_from=load_session(path))
    assert str(refused.value) == f"{path} is open in process {os.getpid()}"
    writer.close()
    again = SessionWriter(path, None, resume_from=load_session(path))
    again.journal({"note": 2})
    again.close()
    assert [r.data for r in load_session(path).records] == [{"note": 1}, {"note": 2}]


def test_5_a_resume_refuses_a_file_that_grew_since_it_was_read(tmp_path: Path) -> None:
    path = tmp_path / "grew.yaml"
    writer = SessionWriter(path, {"format": "nano-code-session", "format_version": 2})
    read_before = load_session(path)
    writer.journal({"note": 1})
    writer.close()
    with pytest.raises(SessionFileError, match="changed since it was read"):
        SessionWriter(path, None, resume_from=read_before)


# ----------------------------------------------------------------------------------------- item 10


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs of its own, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_10_a_full_disk_stops_the_recording_with_one_plain_line(agent: Agent, tiny_disk: Path) -> None:
    session = tiny_disk / "s.yaml"
    agent.serve([reply(tool_calls=[("shell", {"command": "echo hi"})]), reply(content="y" * 100_000)])
    done = agent.run("-p", "fill the disk", "--yes", "--record", str(session))

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert "session recorded" not in done.stderr + done.stdout
    (line,) = [line for line in done.stderr.splitlines() if "recording stopped" in line]
    assert line.startswith("nano-code: recording stopped: No space left on device"), line
    assert str(session) in line and "kept" in line and f"nano-code --resume {session}" in line

    # What was written is kept whole: no torn line, the first exchange and the tool run in it.
    kept = load_session(session)
    assert not kept.torn_tail
    assert kept.interaction_count == 1
    assert any("ToolResult" in json.dumps(record) for record in kept.journal)

    # Room again (the user freed some): the session resumes, and replays.
    subprocess.run(["mount", "-o", "remount,size=4m", str(tiny_disk)], check=True)
    agent.serve([reply(content="resumed fine")])
    resumed = agent.run("--resume", str(session), "-p", "carry on", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert "session recorded" in resumed.stderr
    replayed = agent.run("replay", "-q", str(session))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_10_no_room_for_the_header_leaves_no_file(agent: Agent, tiny_disk: Path) -> None:
    fd = os.open(tiny_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    session = tiny_disk / "s.yaml"
    agent.serve([reply(content="never asked")])
    done = agent.run("-p", "no room", "--record", str(session))

    assert done.returncode == 2, done.stderr
    assert_one_clean_error(done.stderr)
    assert "cannot record the session" in done.stderr and "No space left" in done.stderr
    assert not session.exists()


# ----------------------------------------------------------------------------------------- item 12


def _with_big_interaction(source: Path, target: Path, size: int) -> Path:
    """`source` with one more interaction whose response body is `size` bytes."""
    lines = source.read_text().splitlines(keepends=True)
    last = max(i for i, line in enumerate(lines) if line.startswith("- "))
    record = json.loads(lines[last][2:])
    record["response"]["body"]["string"] = "z" * size
    with open(target, "w") as out:
        out.writelines(lines[: last + 1])
        out.write("- " + json.dumps(record) + "\n")
        out.writelines(lines[last + 1 :])
    return target


def test_12_listing_a_big_session_does_not_hold_its_records(agent: Agent) -> None:
    agent.sessions_dir.mkdir(parents=True)
    small = _record(agent, agent.sessions_dir / "a-small.yaml", task="the big one's task")
    big = _with_big_interaction(small, agent.sessions_dir / "b-big.yaml", 48 * MIB)

    measured = run_measured(agent.command(["sessions", "--json"]), agent.workspace, agent.env(), timeout=60)
    assert measured.returncode == 0, measured.stderr
    rows = {row["path"]: row for row in map(json.loads, measured.stdout.splitlines())}
    assert str(big) in rows, measured.stderr
    assert rows[str(big)]["steps"] == rows[str(small)]["steps"] + 1
    assert rows[str(big)]["task"] == "the big one's task"
    assert rows[str(big)]["tokens"] == rows[str(small)]["tokens"] > 0
    # Holding the 48 MiB record once takes 48 MiB; parsing it, three times that.
    assert measured.max_rss_kib < 70 * 1024, f"peak RSS {measured.max_rss_kib // 1024} MiB"


def test_12_a_record_over_the_cap_is_one_clear_line_everywhere(agent: Agent, tmp_path: Path) -> None:
    agent.sessions_dir.mkdir(parents=True)
    small = _record(agent, tmp_path / "small.yaml")
    big = _with_big_interaction(small, agent.sessions_dir / "huge.yaml", MAX_RECORD_BYTES + MIB)
    needle = f"a record longer than {MAX_RECORD_BYTES:,} bytes"

    for args in (["replay", str(big)], ["export", str(big), "--output", str(tmp_path / "out.yaml")]):
        measured = run_measured(agent.command(args), agent.workspace, agent.env(), timeout=60)
        assert measured.returncode != 0, measured.stdout + measured.stderr
        assert "Traceback" not in measured.stderr and "internal error" not in measured.stderr
        assert len([line for line in measured.stderr.splitlines() if needle in line]) == 1, measured.stderr
        # Read up to the cap and no further: never the whole line, never parsed.
        assert measured.max_rss_kib < MAX_RECORD_BYTES // 1024 + 100 * 1024, measured.max_rss_kib
    assert not (tmp_path / "out.yaml").exists()

    listing = agent.run("sessions", timeout=30)
    assert listing.returncode == 0, listing.stderr
    (skipped,) = [line for line in listing.stderr.splitlines() if str(big) in line]
    assert skipped.startswith("skipped") and needle in skipped

    resumed = agent.run("--resume", str(big), "-p", "more", timeout=30)
    assert resumed.returncode == 2 and needle in resumed.stderr, resumed.stderr
    assert_one_clean_error(resumed.stderr)


def test_12_the_writer_never_writes_a_record_over_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_file, "MAX_RECORD_BYTES", 1000)
    path = tmp_path / "capped.yaml"
    writer = SessionWriter(path, {"format": "nano-code-session", "format_version": 2})
    writer.journal({"small": "x"})
    with pytest.raises(RecordingStopped, match="longer than a session file may hold"):
        writer.journal({"big": "x" * 2000})
    writer.journal({"after": "the stop, nothing"})
    writer.close()
    assert [r.data for r in load_session(path).records] == [{"small": "x"}]


def test_10_no_room_for_the_last_record_while_closing_is_one_line_too(agent: Agent, tmp_path: Path) -> None:
    """The snapshot's record is written as the session closes; when it is the one that finds
    no room (a file size limit here: EFBIG, as a full disk gives ENOSPC) it is said the same way."""
    import resource

    agent.serve([reply(content="done")])
    measured = tmp_path / "a" / "s.yaml"
    assert agent.run("-p", "a task", "--record", str(measured)).returncode == 0
    text = measured.read_bytes()
    assert b'"workspace_snapshot"' in text.splitlines()[-1]  # the last record is the snapshot's
    limit = len(text) - len(text.splitlines()[-1]) + 20  # room for all but the snapshot's record

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    agent.serve([reply(content="done")])
    session = tmp_path / "b" / "s.yaml"
    done = subprocess.run(
        agent.command(["-p", "a task", "--record", str(session)]),
        cwd=agent.workspace,
        env=agent.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=limited,
    )
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert "session recorded" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "recording stopped" in line]
    assert "File too large" in line and str(session) in line, line
    kept = load_session(session)
    assert not kept.torn_tail and kept.interaction_count == 1
