"""Running git on a workspace with the repository's own programs turned off.

A repository's config can name programs git runs by itself (hooks, filters, drivers, pager), and
a cloned repository or a sandboxed command can plant any. Every git call nano-code makes goes
through `argv`: the fixed settings by name (`SAFETY`), the drivers the config sets emptied.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from nano_code.adapters import early

_SETTINGS = "core.fsmonitor=false core.hooksPath=/dev/null safe.bareRepository=explicit core.pager=cat"
_SETTINGS += " credential.helper= protocol.allow=never diff.external="
SAFETY = tuple(arg for setting in _SETTINGS.split() for arg in ("-c", setting))
"""Settings that name a program, overridden by name on every call."""

DRIVER_KEYS = r"^(filter|diff|merge)\..+\.(clean|smudge|process|textconv|command|driver)$"
"""Config keys whose middle part is a driver name the repository chooses, so they are listed first."""
_FILTER_KEY = re.compile(r"^filter\.(.+)\.(clean|smudge|process)$")

TIMEOUT = 5.0
STATUS = ("status", "--porcelain=v2", "--branch")
"""What the provenance asks of the workspace: HEAD and the dirty state in one call."""
HEAD = ("rev-parse", "HEAD")
_DRIVER_CONFIG = ("git", "config", "--null", "--name-only", "--get-regexp", DRIVER_KEYS)


def driver_overrides(cwd: Path) -> list[str]:
    """`-c KEY=` for every driver key the repository at `cwd` sets; filters made optional, not failing."""
    try:
        done = early.run(_DRIVER_CONFIG, cwd, TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return []
    overrides: list[str] = []
    for key in dict.fromkeys(done.stdout.decode("utf-8", "surrogateescape").split("\0")):
        if not key:
            continue
        overrides += ["-c", f"{key}="]
        match = _FILTER_KEY.match(key)
        if match:
            overrides += ["-c", f"filter.{match.group(1)}.required=false"]
    return overrides


def argv(cwd: Path, *args: str) -> list[str]:
    """The command line of `git ARGS` in `cwd`, running none of the repository's programs."""
    return ["git", *SAFETY, *driver_overrides(cwd), *args]


def run(
    cwd: Path, *args: str, data: bytes | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[bytes]:
    """`git ARGS` in `cwd` through `argv`: stdin from `data` (closed without it), output captured."""
    stdin = None if data is not None else subprocess.DEVNULL
    return subprocess.run(
        argv(cwd, *args), cwd=cwd, input=data, capture_output=True, timeout=timeout, stdin=stdin
    )


def source_checkout() -> Path | None:
    """nano-code's own checkout, when it runs from one."""
    source = Path(__file__).resolve().parents[2]
    return source if (source / ".git").exists() else None


def output(args: tuple[str, ...] | list[str], cwd: Path, timeout: float = TIMEOUT) -> str | None:
    """git's stdout, stripped, or None when git is missing, fails or takes too long."""
    try:
        done = early.collect(("git", *args), cwd, timeout) or early.run(argv(cwd, *args), cwd, timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8", "replace").strip() if done.returncode == 0 else None


def _provenance_calls(workspace: Path) -> list[tuple[Path, tuple[str, ...]]]:
    source = source_checkout()
    return [(workspace, STATUS), *([(source, HEAD)] if source is not None else [])]


def start_provenance_config(workspace: Path) -> None:
    """Start reading the driver keys the provenance's git calls need (see `early`), so that
    `start_provenance`, called a little later, does not wait for git."""
    for cwd, _ in _provenance_calls(workspace):
        early.start(_DRIVER_CONFIG, cwd)


def start_provenance(workspace: Path) -> None:
    """Start the git calls a recorded session's provenance makes (see `early`); `output` collects
    them by their arguments."""
    for cwd, args in _provenance_calls(workspace):
        early.start(argv(cwd, *args), cwd, key=("git", *args))
