"""Running one shell command for the model: bounded in time and in memory, nothing left behind.

The command runs in a session of its own (no controlling terminal), stdin
closed, stdout and stderr merged into one pipe of which only the first
`head_bytes` and the last `tail_bytes` are held. On timeout or Ctrl-C its whole
process group is terminated (SIGTERM, then SIGKILL). Background processes it
leaves running live until nano-code exits (`kill_left_running`); one that
calls `setsid` leaves on purpose and is the user's. Inside bubblewrap
(`sandbox`), the pid namespace ends everything when the shell exits.

A command can change the user's terminal (`stty -echo` on /dev/tty): its
settings are saved before the first command and put back after each.
"""

from __future__ import annotations

import contextlib
import enum
import os
import select
import signal
import subprocess
import termios
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters import workspace_scan
from nano_code.adapters.sandbox import Sandbox
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
    created_repositories: tuple[str, ...] = attrs.field(default=())
    """Git repositories (workspace-relative) a sandboxed command created; see `workspace_scan`."""


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
    sandbox: Sandbox | None = None,
) -> CommandResult:
    """Run `command` in `cwd` (inside `sandbox`, if given) and wait at most `timeout` seconds.

    Raises OSError if the shell cannot start; Ctrl-C kills the process group, then propagates.
    """
    capture = _Capture(head_bytes, tail_bytes)
    _TERMINAL.save()
    _forget_ended_sessions()
    argv = [SHELL, "-c", command]
    before = workspace_scan.scan(sandbox.workspace) if sandbox is not None else None
    process = subprocess.Popen(
        argv if sandbox is None else sandbox.wrap(argv, before),
        cwd=cwd,
        env=command_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _SESSIONS.add(process.pid)
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
    finally:
        pipe.close()
        _TERMINAL.restore()
        if sandbox is not None:
            sandbox.after_command()
    created: tuple[str, ...] = ()
    if sandbox is not None and before is not None:
        created = tuple(sorted(workspace_scan.scan(sandbox.workspace).repositories - before.repositories))

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
        created_repositories=created,
    )


_SESSIONS: set[int] = set()
"""Sessions our commands started (each one's id is its shell's pid), while something may be left in them."""


def kill_left_running(grace: float = 0.5) -> int:
    """End what commands left running (SIGTERM, then SIGKILL after `grace`) and put the terminal back.

    Called when nano-code ends; returns how many process groups were still alive.
    """
    try:
        groups = _live_groups(_SESSIONS)
        for group in groups:
            _signal_group(group, signal.SIGTERM)
        if groups:
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _live_groups(_SESSIONS):
                time.sleep(0.02)
            for group in _live_groups(_SESSIONS):
                _signal_group(group, signal.SIGKILL)
        _SESSIONS.clear()
        return len(groups)
    finally:
        _TERMINAL.restore()


_PRUNE_EVERY = 32
_prune_at = _PRUNE_EVERY


def _forget_ended_sessions() -> None:
    """Drop sessions nothing is left in (so a recycled pid is not taken for one of ours), now and then."""
    global _prune_at
    if len(_SESSIONS) >= _prune_at:
        known = set(_SESSIONS)
        _SESSIONS.difference_update(known - {session for session, _ in _live_members(known)})
        _prune_at = len(_SESSIONS) + _PRUNE_EVERY


def _live_groups(sessions: Iterable[int]) -> set[int]:
    """The process groups that still have a running (not zombie) process in one of `sessions`."""
    return {group for _, group in _live_members(sessions)}


def _live_members(sessions: Iterable[int]) -> set[tuple[int, int]]:
    """(session, process group) of each running process in one of `sessions` (without /proc: its first group)."""
    wanted = set(sessions)
    table = _process_table()
    if table is None:
        found = set()
        for session in wanted:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(session, 0)
                found.add((session, session))
        return found
    return {(session, group) for state, group, session in table if session in wanted and state != b"Z"}


def _process_table() -> list[tuple[bytes, int, int]] | None:
    """(state, process group, session) of every process, from /proc; None where there is no /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    table = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat_file:
                fields = stat_file.read().rpartition(b")")[2].split()
            # After the command name: state, ppid, process group, session.
            table.append((fields[0], int(fields[2]), int(fields[3])))
        except (OSError, IndexError, ValueError):
            continue  # it exited while we looked
    return table


HIDDEN_VARIABLES = frozenset({"OPENROUTER_API_KEY"})
"""Never handed to a command: a command could print the model's key, or send it out."""
SECRET_NAME_PARTS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL")
"""A variable whose name holds one of these (any case) looks like a secret and is withheld."""
SECRET_NAME_WORDS = frozenset({"AUTH", "COOKIE", "PAT"})
"""...and so is one with one of these as a whole `_`-separated word (AUTH but not AUTHOR)."""
PASS_ENV = "NANO_CODE_PASS_ENV"
"""Secret-looking variables the user lets through (comma- or space-separated); never from a `.env`."""


def looks_secret(name: str) -> bool:
    """Whether the variable `name` looks like it holds a secret (GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY)."""
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS) or not SECRET_NAME_WORDS.isdisjoint(
        upper.split("_")
    )


def command_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """nano-code's environment less the model's key and every secret-looking variable not in `PASS_ENV`."""
    environ = dict(os.environ) if environ is None else environ
    passed = set(environ.get(PASS_ENV, "").replace(",", " ").split())
    return {
        name: value
        for name, value in environ.items()
        if name not in HIDDEN_VARIABLES and (name in passed or not looks_secret(name))
    }


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
    """Whether a process of `group` still runs, not merely a zombie (some inits reap only every second)."""
    table = _process_table()
    if table is None:
        return True
    return any(member == group and state != b"Z" for state, member, _ in table)


class _Terminal:
    """The settings of the user's terminal, saved once and put back after commands change them."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.settings: list[Any] | None = None

    def save(self) -> None:
        """Remember the first terminal among stdin, stdout and stderr, and its settings (once)."""
        if self.settings is not None:
            return
        for fd in (0, 1, 2):
            with contextlib.suppress(OSError, termios.error):
                if os.isatty(fd):
                    self.settings = termios.tcgetattr(fd)
                    self.fd = fd
                    return

    def restore(self) -> None:
        """Put the saved settings back if they changed, unless in the background (SIGTTOU would stop us)."""
        if self.fd is None or self.settings is None:
            return
        with contextlib.suppress(OSError, termios.error):
            if termios.tcgetattr(self.fd) == self.settings:
                return
            try:
                foreground: int | None = os.tcgetpgrp(self.fd)
            except OSError:
                foreground = None  # not our controlling terminal: no job control applies
            if foreground is None or foreground == os.getpgrp():
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.settings)


_TERMINAL = _Terminal()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
