"""Issue 7, item 5: recordings are private -- directory 0700, files 0600 -- whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from cli_helpers import Agent

from nano_code.testing.fake_server import reply


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _run_umask_022(agent: Agent, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI with umask 022, as on most machines (files 0644 unless made private)."""
    done = subprocess.run(
        agent.command(args),
        cwd=agent.workspace,
        env=agent.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=lambda: os.umask(0o022),
    )
    agent.check_requests()
    return done


def _two_steps() -> list[dict[str, object]]:
    return [reply(tool_calls=[("read_file", {"path": "secret.env"})]), reply(content="read it")]


def test_5_session_file_0600_and_sessions_directory_0700(agent: Agent) -> None:
    (agent.workspace / "secret.env").write_text("DB_PASSWORD=hunter2\n")
    agent.serve(_two_steps())
    done = _run_umask_022(agent, "-p", "read the secret")
    assert done.returncode == 0, done.stderr
    (session,) = agent.session_files()
    assert "DB_PASSWORD=hunter2" in session.read_text()  # why it must be private
    assert _mode(agent.sessions_dir) == 0o700
    assert _mode(session) == 0o600
    # Control: the umask really was 022 (a file made without care would be 0644).
    probe = subprocess.run(
        ["bash", "-c", "umask"], capture_output=True, text=True, preexec_fn=lambda: os.umask(0o022)
    )
    assert probe.stdout.strip() == "0022"


def test_5_an_existing_0755_sessions_directory_is_tightened(agent: Agent) -> None:
    agent.sessions_dir.mkdir()
    agent.sessions_dir.chmod(0o755)
    agent.serve([reply(content="hello")])
    done = _run_umask_022(agent, "-p", "hi")
    assert done.returncode == 0, done.stderr
    assert _mode(agent.sessions_dir) == 0o700
    (session,) = agent.session_files()
    assert _mode(session) == 0o600


def test_5_record_path_creates_missing_directories_0700(agent: Agent) -> None:
    agent.serve([reply(content="hello")])
    done = _run_umask_022(agent, "-p", "hi", "--record", "sub/dir/s.yaml")
    assert done.returncode == 0, done.stderr
    assert _mode(agent.workspace / "sub") == 0o700
    assert _mode(agent.workspace / "sub" / "dir") == 0o700
    assert _mode(agent.workspace / "sub" / "dir" / "s.yaml") == 0o600


def test_5_resume_makes_a_loose_session_file_private(agent: Agent) -> None:
    agent.serve([reply(content="first"), reply(content="second")])
    session = agent.workspace / "s.yaml"
    assert _run_umask_022(agent, "-p", "one", "--record", str(session)).returncode == 0
    session.chmod(0o644)  # copied around, or written by an older version
    done = _run_umask_022(agent, "--resume", str(session), "-p", "two")
    assert done.returncode == 0, done.stderr
    assert _mode(session) == 0o600


def test_5_rebless_and_fork_outputs_are_0600(agent: Agent, tmp_path: Path) -> None:
    (agent.workspace / "secret.env").write_text("DB_PASSWORD=hunter2\n")
    session = tmp_path / "s.yaml"
    agent.serve(_two_steps())
    assert _run_umask_022(agent, "-p", "read", "--record", str(session)).returncode == 0

    done = _run_umask_022(agent, "replay", "--rebless", str(session))
    assert done.returncode == 0, done.stdout + done.stderr
    reblessed = session.with_suffix(".reblessed.yaml")
    assert _mode(reblessed) == 0o600

    server = agent.serve([reply(content="live continuation")])
    done = _run_umask_022(agent, "replay", str(session), "--fork-at", "1", "--base-url", server.base_url)
    assert done.returncode == 0, done.stdout + done.stderr
    fork = session.with_suffix(".fork1.yaml")
    assert _mode(fork) == 0o600
    assert len(server.requests) == 1
