"""Commands started as nano-code starts, so they run on another core while Python imports the rest.

bwrap's trial run and git for the provenance: without them a sandboxed run reaches its first
request 4-14 ms later, a recorded one 3-10 ms (paired runs, bench/README.md). `start` launches a command under a key (its command line unless given);
`collect` gives the result of the one started under a key, `run` of the one started under its
command line or of a fresh run. Standard library only.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence
from pathlib import Path

_STARTED: dict[tuple[str, ...], subprocess.Popen[bytes]] = {}


def _key(key: Sequence[str], cwd: Path | str) -> tuple[str, ...]:
    return (str(cwd), *key)


def start(argv: Sequence[str], cwd: Path | str, key: Sequence[str] | None = None) -> None:
    """Launch `argv` in `cwd` now (stdin closed, output captured), to be collected under `key`
    (default: `argv`); failures are left to the later call, which tries again and says why."""
    started = _key(argv if key is None else key, cwd)
    if started in _STARTED:
        return
    with contextlib.suppress(OSError):
        _STARTED[started] = subprocess.Popen(
            list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )


def collect(
    key: Sequence[str], cwd: Path | str, timeout: float
) -> subprocess.CompletedProcess[bytes] | None:
    """The result of the command started under `key` in `cwd` (once), or None when none was;
    raises `subprocess.TimeoutExpired` after killing one that took too long."""
    process = _STARTED.pop(_key(key, cwd), None)
    if process is None:
        return None
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def run(argv: Sequence[str], cwd: Path | str, timeout: float) -> subprocess.CompletedProcess[bytes]:
    """The result of `argv` in `cwd`, started earlier or now; raises what `subprocess.run` raises."""
    done = collect(argv, cwd, timeout)
    if done is not None:
        return done
    return subprocess.run(
        list(argv), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
    )


def forget() -> None:
    """Reap whatever was started and never asked for (a run that ended early)."""
    while _STARTED:
        _, process = _STARTED.popitem()
        process.kill()
        process.wait()
