"""What shell commands leave behind: their process groups and the user's terminal settings.

Each command runs in a session of its own; `kill_left_running` ends what is still alive in
those sessions when nano-code exits. A command can change the terminal (`stty -echo` on
/dev/tty): its settings are saved before the first command and put back after each.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import termios
import time
from collections.abc import Iterable
from typing import Any

SESSIONS: set[int] = set()
"""Sessions our commands started (each one's id is its shell's pid), while something may be left in them."""


def kill_left_running(grace: float = 0.5) -> int:
    """At exit: SIGTERM what commands left running, SIGKILL it after `grace`, put the terminal back.
    Returns how many process groups were still alive."""
    try:
        SESSIONS.update(_sessions_led_by_our_children())
        groups = _live_groups(SESSIONS)
        for group in groups:
            _signal_group(group, signal.SIGTERM)
        if groups:
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _live_groups(SESSIONS):
                time.sleep(0.02)
            for group in _live_groups(SESSIONS):
                _signal_group(group, signal.SIGKILL)
        SESSIONS.clear()
        return len(groups)
    finally:
        TERMINAL.restore()


def _sessions_led_by_our_children() -> set[int]:
    """Sessions our own children lead: a command whose start a signal cut short (after the fork,
    before it was added to SESSIONS) is ours too."""
    me, found = os.getpid(), set()
    with contextlib.suppress(OSError):
        for entry in filter(str.isdigit, os.listdir("/proc")):
            with (
                contextlib.suppress(OSError, IndexError, ValueError),
                open(f"/proc/{entry}/stat", "rb") as stat,
            ):
                fields = stat.read().rpartition(b")")[2].split()  # state, ppid, group, session, ...
                if int(fields[1]) == me and int(fields[3]) == int(entry):
                    found.add(int(entry))
    return found


_PRUNE_EVERY = 32
_prune_at = _PRUNE_EVERY


def forget_ended_sessions() -> None:
    """Drop sessions nothing is left in (so a recycled pid is not taken for one of ours), now and then."""
    global _prune_at
    if len(SESSIONS) >= _prune_at:
        known = set(SESSIONS)
        SESSIONS.difference_update(known - {session for session, _ in _live_members(known)})
        _prune_at = len(SESSIONS) + _PRUNE_EVERY


def _live_groups(sessions: Iterable[int]) -> set[int]:
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


def kill_group(process: subprocess.Popen[bytes], grace: float) -> None:
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
    """Whether no process of `group` still runs; a zombie does not count (some inits reap only every second)."""
    process.poll()  # reap the leader, or its zombie would keep the group alive
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    table = _process_table()
    return table is not None and not any(member == group and state != b"Z" for state, member, _ in table)


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


TERMINAL = _Terminal()
