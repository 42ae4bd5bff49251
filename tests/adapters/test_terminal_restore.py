"""A command that changes the user's terminal (stty -echo through its path) cannot leave it changed.

Each test runs a small nano-code stand-in with a pseudo-terminal as its stdin:
it runs shell commands through the tool and exits through `kill_left_running`,
as the CLI does, and the terminal's ECHO flag must be on again afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = """
import fcntl, os, shlex, sys, termios, time
from pathlib import Path
from nano_code.adapters.process_groups import kill_left_running
from nano_code.adapters.tool import ToolContext
from nano_code.adapters.tools import run_tool

if sys.argv[2] == "controlling":
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
terminal = shlex.quote(os.ttyname(0))

def echo():
    return bool(termios.tcgetattr(0)[3] & termios.ECHO)

context = ToolContext(workspace=Path(sys.argv[1]))
try:
    outcome = run_tool("shell", {"command": f"stty -echo < {terminal} && echo changed"}, context)
    print("command:", outcome.output.strip(), flush=True)
    print("echo after the command:", echo(), flush=True)
    run_tool("shell", {"command": f"(sleep 0.3; stty -echo < {terminal}) >/dev/null 2>&1 &"}, context)
    deadline = time.monotonic() + 10
    while echo() and time.monotonic() < deadline:
        time.sleep(0.02)
    print("echo after the background process:", echo(), flush=True)
finally:
    kill_left_running()
"""


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    main, secondary = os.openpty()
    try:
        yield main, secondary
    finally:
        os.close(main)
        os.close(secondary)


def echo_on(fd: int) -> bool:
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)


@pytest.mark.parametrize("how", ["controlling", "stdin-only"])
def test_echo_is_back_on_after_each_command_and_at_exit(
    pty: tuple[int, int], tmp_path: Path, how: str
) -> None:
    _, terminal = pty
    assert echo_on(terminal)
    child = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path.resolve()), how],
        stdin=terminal,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=how == "controlling",
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == [
        "command: changed",
        "echo after the command: True",  # put back as soon as the command was done
        "echo after the background process: False",  # it changed the terminal later
    ]
    assert echo_on(terminal)  # and the exit put it back
