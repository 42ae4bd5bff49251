"""Commands started as nano-code starts, so they run on another core while Python imports the rest.

bwrap's trial run and git for the provenance. `start` launches a command; `run` gives its result,
of the one started earlier or of a fresh run. Standard library only.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence
from pathlib import Path

_STARTED: dict[tuple[str, ...], subprocess.Popen[bytes]] = {}


def _key(argv: Sequence[str], cwd: Path | str) -> tuple[str, ...]:
    return (str(cwd), *argv)


def start(argv: Sequence[str], cwd: Path | str) -> None:
    """Launch `argv` in `cwd` now (stdin closed, output captured); failures are left to `run`."""
    key = _key(argv, cwd)
    if key in _STARTED:
        return
    with contextlib.suppress(OSError):  # `run` tries again, and says what went wrong
        _STARTED[key] = subprocess.Popen(
            list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )


def run(argv: Sequence[str], cwd: Path | str, timeout: float) -> subprocess.CompletedProcess[bytes]:
    """The result of `argv` in `cwd`; raises what `subprocess.run` raises (a timed-out process is killed)."""
    process = _STARTED.pop(_key(argv, cwd), None)
    if process is None:
        return subprocess.run(
            list(argv), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def forget() -> None:
    """Reap whatever was started and never asked for (a run that ended early)."""
    while _STARTED:
        _, process = _STARTED.popitem()
        process.kill()
        process.wait()
