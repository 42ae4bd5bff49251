"""Interrupted forks and sampled forks leave nothing behind and exit 130 (Ctrl-C) or 143 (SIGTERM).

Each test runs the real `nano-code replay` as a subprocess with TMPDIR pointed at a
fresh directory, waits until it is demonstrably mid-fork (a request held open by
the fake server, or a re-run recorded command still running), signals it, and
then looks at the temporary folder and the output folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from replay_helpers import NANO, cli_env, record_cli, run_cli, three_step_script

from nano_code.adapters.session_file import load_session
from nano_code.testing.fake_server import FakeServer, hang, reply

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import kill_if_running, processes_with, wait_for

EXIT_LIMIT = 15.0
"""Generous bound on how long a replay may take to clean up and exit after the signal."""
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


def spawn(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(NANO), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def signal_and_wait(process: subprocess.Popen[str], signum: int) -> tuple[str, str]:
    try:
        process.send_signal(signum)
        return process.communicate(timeout=EXIT_LIMIT)
    finally:
        kill_if_running(process)


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    """A fresh temporary folder (the replay's TMPDIR), an output folder and a working directory."""
    made = {name: tmp_path / name for name in ("tmp", "out", "cwd", "home")}
    for path in made.values():
        path.mkdir()
    return made


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_fork_leaves_nothing_and_exits_130_or_143(
    tmp_path: Path, workspace: Path, dirs: dict[str, Path], signum: int
) -> None:
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, three_step_script())
    fork = dirs["out"] / "f.yaml"
    with FakeServer([hang(60)]) as server:
        env = cli_env(server.base_url, dirs["home"], TMPDIR=str(dirs["tmp"]))
        args = ["replay", str(session), "--fork-at", "1", "--base-url", server.base_url]
        process = spawn([*args, "--yes", "--rerun-recorded", "--output", str(fork)], dirs["cwd"], env)
        try:
            # mid-fork: the live part's request is held open by the server
            assert wait_for(lambda: len(server.requests) == 1, timeout=30), "the fork never went live"
            assert list(dirs["tmp"].glob("nano-fork-*")), "no restored workspace while forking?"
            assert (dirs["out"] / ".f.yaml.partial").exists()
        except BaseException:
            kill_if_running(process)
            raise
        out, err = signal_and_wait(process, signum)
    assert process.returncode == EXIT_STATUS[signum], out + err
    assert "Traceback" not in err and "interrupted" in err
    assert list(dirs["tmp"].iterdir()) == []  # the restored workspace is gone
    assert list(dirs["out"].iterdir()) == []  # no partial fork, no snapshot copy
    assert "forked ->" not in out


def test_an_interrupt_while_recorded_tools_re_run_leaves_nothing(
    tmp_path: Path, workspace: Path, dirs: dict[str, Path]
) -> None:
    """Interrupted in the replayed part: the recorded command re-running here is still running."""
    go = tmp_path / "go-ahead"  # exists while recording; gone at the replay, so the command waits
    go.touch()
    command = f"while [ ! -e {go} ]; do sleep 0.05; done; echo ready"
    script = [reply(tool_calls=[("shell", {"command": command})]), reply(content="ok")]
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, script, task="wait for it")
    go.unlink()
    fork = dirs["out"] / "f.yaml"
    with FakeServer([reply(content="never asked")]) as server:
        env = cli_env(server.base_url, dirs["home"], TMPDIR=str(dirs["tmp"]))
        args = ["replay", str(session), "--fork-at", "2", "--base-url", server.base_url, "--yes"]
        process = spawn([*args, "--rerun-recorded", "--output", str(fork)], dirs["cwd"], env)
        try:
            assert wait_for(lambda: bool(processes_with(str(go))), timeout=30), "the command never started"
        except BaseException:
            kill_if_running(process)
            raise
        out, err = signal_and_wait(process, signal.SIGTERM)
        assert server.requests == []
    assert process.returncode == 143, out + err
    assert wait_for(lambda: not processes_with(str(go)), timeout=5)
    assert list(dirs["tmp"].iterdir()) == []
    assert list(dirs["out"].iterdir()) == []


def finish_two_then_stall(request: dict[str, Any], number: int) -> dict[str, Any]:
    """Two forks' live parts get their answer; every later one waits."""
    return reply(content="done") if number < 2 else hang(60)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_samples_report_the_finished_forks_and_leave_nothing_else(
    tmp_path: Path, workspace: Path, dirs: dict[str, Path], signum: int
) -> None:
    """`--samples 6 --jobs 2`: two forks finish, two are mid-fork, two never start. The
    signal goes to the main process only (as `kill` sends it): it must reach the workers."""
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, three_step_script())
    with FakeServer(finish_two_then_stall) as server:
        env = cli_env(server.base_url, dirs["home"], TMPDIR=str(dirs["tmp"]))
        args = ["replay", str(session), "--fork-at", "1", "--samples", "6", "--jobs", "2", "--yes"]
        args += ["--rerun-recorded", "--base-url", server.base_url, "--output", str(dirs["out"])]
        process = spawn(args, dirs["cwd"], env)
        try:
            assert wait_for(lambda: len(server.requests) == 4, timeout=60), len(server.requests)
            assert len(list(dirs["tmp"].glob("nano-fork-*"))) == 2  # the two stalled forks'
        except BaseException:
            kill_if_running(process)
            raise
        out, err = signal_and_wait(process, signum)
        assert len(server.requests) == 4  # no fork started after the signal
    assert process.returncode == EXIT_STATUS[signum], out + err
    assert "Traceback" not in err
    assert "2 forks of" in out and "(interrupted: 2 of 6 finished)" in out
    assert "forked" in out
    assert list(dirs["tmp"].iterdir()) == []
    children = sorted(dirs["out"].glob("s.fork1.s*.yaml"))
    assert len(children) == 2, sorted(p.name for p in dirs["out"].iterdir())
    archives = sorted(dirs["out"].glob("*.workspace.tar.gz"))
    assert sorted(p.name for p in dirs["out"].iterdir()) == sorted(p.name for p in children + archives)
    assert len(archives) <= 2
    for child in children:
        assert load_session(child).metadata["parent"]["fork_at"] == 1


def test_samples_and_jobs_are_bounded_and_say_so(tmp_path: Path, workspace: Path) -> None:
    from nano_code.adapters.config import Settings
    from nano_code.session.samples import MAX_SAMPLES, max_jobs, sample_forks

    session = tmp_path / "s.yaml"
    record_cli(session, workspace, three_step_script())
    env = cli_env("http://127.0.0.1:9/v1", tmp_path / "home")
    # the 1000th fork's file exists: the capped run stops there, before any fork
    (tmp_path / "s.fork1.s1000.yaml").write_text("")
    args = ["replay", str(session), "--fork-at", "1", "--samples", "10000", "--jobs", "100000", "--yes"]
    done = run_cli(args, tmp_path, env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--samples 10000 capped at {MAX_SAMPLES}" in done.stderr
    assert f"--jobs 100000 capped at {max_jobs()}" in done.stderr
    assert "s.fork1.s1000.yaml exists" in done.stderr
    assert max_jobs() == min(64, 4 * (os.cpu_count() or 1))
    with pytest.raises(ValueError, match="at most 1000"):
        sample_forks(session, 1, MAX_SAMPLES + 1, Settings())
