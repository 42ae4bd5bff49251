"""Running one shell command for the model: bounded in time and in memory.

The command runs in its own session (hence its own process group, and no
controlling terminal, so nothing can stop to ask for a password), with stdin
closed and stdout and stderr merged into one pipe. The pipe is read
incrementally: only the first `head_bytes` and a rolling window of the last
`tail_bytes` are ever held, however much the command prints.

On timeout, or when the user presses Ctrl-C while we wait, the whole process
group is terminated (SIGTERM, then SIGKILL after a short grace), so a command's
children do not outlive it. A command that leaves a background process holding
the pipe returns shortly after the shell itself exits, instead of waiting for
the pipe to close.
"""

from __future__ import annotations

import contextlib
import enum
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import attrs

from nano_code.kernel.policy import join_head_and_tail

SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
READ_SIZE = 65536
KILL_GRACE = 1.0
"""Seconds between SIGTERM and SIGKILL to the process group."""
LINGER = 0.5
"""Seconds we keep reading after the shell exits while something still holds the pipe."""
_TICK = 0.1
"""How often we check whether the shell has exited while its output is quiet."""


class Ending(enum.Enum):
    EXITED = "exited"
    """The shell exited and the pipe closed."""
    LEFT_RUNNING = "left_running"
    """The shell exited but a process it started still holds the pipe."""
    TIMED_OUT = "timed_out"


@attrs.frozen
class CommandResult:
    output: str
    """Merged stdout and stderr, decoded, with the middle cut out if it was too long."""
    ending: Ending
    exit_status: int | None
    """The shell's exit status (128 + N when signal N ended it); None after a timeout."""
    signal_name: str | None
    """Name of the signal that ended the shell, if one did (and it was not our kill)."""
    omitted_bytes: int
    process_group: int
    """Id of the command's process group (its leader's pid)."""


class _Capture:
    """Keeps the first `head_limit` bytes and the last `tail_limit` bytes fed to it."""

    def __init__(self, head_limit: int, tail_limit: int) -> None:
        self.head_limit = head_limit
        self.tail_limit = tail_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.omitted = 0

    def feed(self, chunk: bytes) -> None:
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        excess = len(self.tail) - self.tail_limit
        if excess > 0:
            del self.tail[:excess]
            self.omitted += excess

    def text(self) -> tuple[str, int]:
        """The captured output as text, and how many bytes were left out of it."""
        if self.omitted == 0:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace"), 0
        # Cut at character boundaries so the marker is not flanked by U+FFFD.
        head, head_cut = _without_partial_last_char(bytes(self.head))
        tail, tail_cut = _without_partial_first_char(bytes(self.tail))
        omitted = self.omitted + head_cut + tail_cut
        text = join_head_and_tail(
            head.decode("utf-8", "replace"), tail.decode("utf-8", "replace"), omitted, "bytes"
        )
        return text, omitted


def _without_partial_last_char(data: bytes) -> tuple[bytes, int]:
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: keep looking for the lead byte
        if byte < 0xC0:
            return data, 0
        needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
        return (data[:-back], back) if back < needed else (data, 0)
    return data, 0


def _without_partial_first_char(data: bytes) -> tuple[bytes, int]:
    skip = 0
    while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
        skip += 1
    return data[skip:], skip


def run_command(
    command: str,
    cwd: Path,
    *,
    timeout: float,
    head_bytes: int = 65536,
    tail_bytes: int = 65536,
    kill_grace: float = KILL_GRACE,
    linger: float = LINGER,
) -> CommandResult:
    """Run `command` with the shell in `cwd` and wait at most `timeout` seconds.

    Raises OSError if the shell cannot be started (e.g. `cwd` is missing).
    KeyboardInterrupt while waiting kills the process group, then propagates.
    """
    capture = _Capture(head_bytes, tail_bytes)
    process = subprocess.Popen(
        [SHELL, "-c", command],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    pipe = process.stdout
    try:
        try:
            ending = _pump(process, pipe.fileno(), capture, timeout, linger)
        except BaseException:
            _kill_group(process, kill_grace)
            raise
        if ending is Ending.TIMED_OUT:
            _kill_group(process, kill_grace)
            _drain(pipe.fileno(), capture)
        elif ending is Ending.LEFT_RUNNING:
            _LEFT_RUNNING.add(process.pid)
    finally:
        pipe.close()

    output, omitted = capture.text()
    exit_status: int | None = None
    signal_name: str | None = None
    if ending is not Ending.TIMED_OUT:
        code = process.returncode
        if code < 0:
            exit_status = 128 - code
            signal_name = _signal_name(-code)
        else:
            exit_status = code
    return CommandResult(
        output=output,
        ending=ending,
        exit_status=exit_status,
        signal_name=signal_name,
        omitted_bytes=omitted,
        process_group=process.pid,
    )


_LEFT_RUNNING: set[int] = set()
"""Process groups of commands that returned while a background child kept running."""


def kill_left_running(grace: float = 0.5) -> int:
    """Kill what commands left running in the background; called when the session ends.

    A model's `server &` lives as long as the session that started it, not
    longer. (A process that leaves its group on purpose, e.g. with setsid or
    nohup and its own session, is the user's to manage.) Returns how many
    groups were still alive.
    """
    alive = 0
    for group in sorted(_LEFT_RUNNING):
        try:
            os.killpg(group, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
        alive += 1
    if alive:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_group_alive(g) for g in _LEFT_RUNNING):
            time.sleep(0.02)
        for group in _LEFT_RUNNING:
            _signal_group(group, signal.SIGKILL)
    _LEFT_RUNNING.clear()
    return alive


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return _has_live_member(group)


def _pump(
    process: subprocess.Popen[bytes], fd: int, capture: _Capture, timeout: float, linger: float
) -> Ending:
    """Read the pipe until it closes, the time is up, or the shell exited long enough ago."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    exited_at: float | None = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            return Ending.TIMED_OUT
        if exited_at is None and process.poll() is not None:
            exited_at = now
        if exited_at is None:
            wait = min(deadline - now, _TICK)
        else:
            wait = min(deadline - now, exited_at + linger - now)
            if wait <= 0:
                return Ending.LEFT_RUNNING
        if poller.poll(wait * 1000):
            chunk = os.read(fd, READ_SIZE)
            if not chunk:
                break
            capture.feed(chunk)
    # The pipe closed; the shell may still be running with its output closed.
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return Ending.TIMED_OUT
    return Ending.EXITED


def _drain(fd: int, capture: _Capture, budget: float = 0.2) -> None:
    """Collect what the killed processes left in the pipe, without waiting on survivors."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    deadline = time.monotonic() + budget
    while (left := deadline - time.monotonic()) > 0 and poller.poll(left * 1000):
        chunk = os.read(fd, READ_SIZE)
        if not chunk:
            return
        capture.feed(chunk)


def _kill_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the whole group, then SIGKILL whatever is still there after `grace` seconds."""
    group = process.pid
    gone = False
    try:
        _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while not (gone := _group_gone(process, group)) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        # Also reached on a second Ctrl-C during the grace period.
        if not gone:
            _signal_group(group, signal.SIGKILL)
        process.wait()


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _group_gone(process: subprocess.Popen[bytes], group: int) -> bool:
    process.poll()  # reap the leader, or its zombie would keep the group alive
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return not _has_live_member(group)


def _has_live_member(group: int) -> bool:
    """Whether a process of `group` is still running, not merely a zombie awaiting its reaper.

    Killed orphans wait for init to reap them, which some container inits do
    only every second or so; without this, each kill would sit out the grace.
    Where /proc is unavailable we assume the worst.
    """
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat_file:
                fields = stat_file.read().rpartition(b")")[2].split()
        except OSError:
            continue  # it exited while we looked
        # After the command name: state, ppid, process group.
        if len(fields) >= 3 and int(fields[2]) == group and fields[0] != b"Z":
            return True
    return False


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
