"""Background processes a command leaves running live until nano-code exits, not longer.

Each command runs in a session of its own; `kill_left_running` (called when
nano-code ends) ends what is still in any of them, output redirected or not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nano_code.adapters import process_groups
from nano_code.adapters.process_groups import kill_left_running
from nano_code.adapters.tool import ToolContext
from nano_code.adapters.tools import run_tool

HAS_PROC = os.path.exists("/proc/self/stat")


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            return stat_file.read().rpartition(b")")[2].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def context(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path.resolve(), shell_timeout=20.0)


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Processes a test started; whatever survives the test is killed."""
    started: list[int] = []
    try:
        yield started
    finally:
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "command",
    [
        "sleep 300 >/dev/null 2>&1 & echo $!",
        "nohup sleep 300 >/dev/null 2>&1 & echo $!",
        "sleep 300 >/dev/null 2>&1 & disown; echo $!",
        "(trap '' TERM; exec sleep 300) >/dev/null 2>&1 & echo $!",
        pytest.param(
            "set -m; sleep 300 >/dev/null 2>&1 & echo $!",
            marks=pytest.mark.skipif(not HAS_PROC, reason="finding other groups of a session needs /proc"),
        ),
    ],
    ids=["redirected", "nohup", "disown", "ignores-sigterm", "own-group"],
)
def test_background_process_is_ended_at_exit(context: ToolContext, pids: list[int], command: str) -> None:
    outcome = run_tool("shell", {"command": command}, context)
    assert not outcome.is_error, outcome.output
    pid = int(outcome.output.split()[-1])
    pids.append(pid)
    time.sleep(0.2)
    assert running(pid)  # a server started in the background keeps running while nano-code does
    assert kill_left_running(grace=0.3) >= 1
    assert gone(pid)


def test_nothing_left_means_nothing_to_kill(context: ToolContext) -> None:
    kill_left_running()
    assert run_tool("shell", {"command": "true"}, context).exit_status == 0
    assert kill_left_running() == 0


@pytest.mark.skipif(not HAS_PROC, reason="telling a recycled id apart needs /proc")
def test_a_group_that_is_not_one_of_our_sessions_is_left_alone(pids: list[int]) -> None:
    """A remembered id now naming some other process group (a recycled pid) is not signalled."""
    kill_left_running()
    other = subprocess.Popen(["sleep", "300"], process_group=0)  # its own group, but our session
    pids.append(other.pid)
    process_groups.SESSIONS.add(other.pid)
    try:
        assert kill_left_running(grace=0.1) == 0
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


@pytest.mark.skipif(not HAS_PROC, reason="finding our own children's sessions needs /proc")
def test_a_command_whose_start_a_signal_cut_short_is_ended_too(pids: list[int]) -> None:
    """Regression (CI, replay interrupted by SIGTERM): a signal between the fork and the command's
    registration left its shell running. A session led by our own child is ours at exit."""
    kill_left_running()
    orphan = subprocess.Popen(["sleep", "300"], start_new_session=True)  # never registered
    pids.append(orphan.pid)
    assert kill_left_running(grace=0.1) == 1
    assert orphan.wait(timeout=5) is not None


def test_background_process_dies_when_nano_code_exits(tmp_path: Path, pids: list[int]) -> None:
    """End to end: a process that ran the tool and then exited through the cleanup path."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from nano_code.adapters.process_groups import kill_left_running\n"
        "from nano_code.adapters.tool import ToolContext\n"
        "from nano_code.adapters.tools import run_tool\n"
        "context = ToolContext(workspace=Path(sys.argv[1]))\n"
        "try:\n"
        "    command = 'sleep 300 >/dev/null 2>&1 & echo $!'\n"
        "    print(run_tool('shell', {'command': command}, context).output, flush=True)\n"
        "    sys.stdin.readline()\n"
        "finally:\n"
        "    kill_left_running()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path.resolve())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    pid = int(child.stdout.readline())
    pids.append(pid)
    assert running(pid)
    child.stdin.write("done\n")
    child.stdin.close()
    assert child.wait(timeout=20) == 0
    assert gone(pid)
