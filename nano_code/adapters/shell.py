"""Running one shell command for the model: bounded in time and in memory, nothing left behind.

The command runs in a session of its own, stdin closed, stdout and stderr merged into one
pipe of which only the first `head_bytes` and the last `tail_bytes` are held. On timeout or
Ctrl-C its process group is killed; what it leaves running lives until nano-code exits
(`process_groups`), except a process that calls `setsid`, which is the user's. Inside
bubblewrap the pid namespace ends everything when the shell exits.
"""

from __future__ import annotations

import enum
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import attrs

from nano_code.adapters import process_groups, workspace_scan
from nano_code.adapters.sandbox import Sandbox
from nano_code.kernel.policy import join_head_and_tail

SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
READ_SIZE = 65536
KILL_GRACE = 1.0  # seconds between SIGTERM and SIGKILL to the process group
LINGER = 0.5  # seconds we keep reading after the shell exits while something still holds the pipe
_TICK = 0.1  # how often we check whether the shell has exited while its output is quiet


class Ending(enum.Enum):
    EXITED = "exited"
    LEFT_RUNNING = "left_running"
    """The shell exited but a process it started still holds the pipe."""
    TIMED_OUT = "timed_out"


@attrs.frozen
class CommandResult:
    output: str
    ending: Ending
    exit_status: int | None
    """The shell's exit status (128 + N when signal N ended it); None after a timeout."""
    signal_name: str | None
    omitted_bytes: int
    created_repositories: tuple[str, ...] = attrs.field(default=())


@attrs.define
class _Capture:
    """Keeps the first `head_limit` bytes and the last `tail_limit` bytes fed to it."""

    head_limit: int
    tail_limit: int
    head: bytearray = attrs.Factory(bytearray)
    tail: bytearray = attrs.Factory(bytearray)
    omitted: int = 0

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
    """Run `command` in `cwd` (inside `sandbox`, if given) for at most `timeout` seconds.
    Raises OSError if the shell cannot start; Ctrl-C kills the process group, then propagates."""
    capture = _Capture(head_bytes, tail_bytes)
    process_groups.TERMINAL.save()
    process_groups.forget_ended_sessions()
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
    process_groups.SESSIONS.add(process.pid)
    assert process.stdout is not None
    pipe = process.stdout
    try:
        try:
            ending = _pump(process, pipe.fileno(), capture, timeout, linger)
        except BaseException:
            process_groups.kill_group(process, kill_grace)
            raise
        if ending is Ending.TIMED_OUT:
            process_groups.kill_group(process, kill_grace)
            _drain(pipe.fileno(), capture)
    finally:
        pipe.close()
        process_groups.TERMINAL.restore()
        if sandbox is not None:
            sandbox.after_command()
    created: tuple[str, ...] = ()
    if sandbox is not None and before is not None:
        created = tuple(sorted(workspace_scan.scan(sandbox.workspace).repositories - before.repositories))
    output, omitted = capture.text()
    code = None if ending is Ending.TIMED_OUT else process.returncode
    exit_status = None if code is None else 128 - code if code < 0 else code
    signal_name = _signal_name(-code) if code is not None and code < 0 else None
    return CommandResult(output, ending, exit_status, signal_name, omitted, created)


HIDDEN_VARIABLES = frozenset({"OPENROUTER_API_KEY"})  # a command could print the model's key, or send it out
SECRET_NAME_PARTS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL")
"""A variable whose name holds one of these (any case) looks like a secret and is withheld."""
SECRET_NAME_WORDS = frozenset({"AUTH", "COOKIE", "PAT"})
"""...and so is one with one of these as a whole `_`-separated word (AUTH but not AUTHOR)."""
PASS_ENV = "NANO_CODE_PASS_ENV"
"""Secret-looking variables the user lets through (comma- or space-separated); never from a `.env`."""


def looks_secret(name: str) -> bool:
    """Whether the variable `name` looks like it holds a secret (GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY)."""
    upper = name.upper()
    words = upper.split("_")
    return any(part in upper for part in SECRET_NAME_PARTS) or not SECRET_NAME_WORDS.isdisjoint(words)


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


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
