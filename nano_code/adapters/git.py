"""Running git on a workspace: read-only, with the repository's own programs turned off.

A workspace is data: its git config can name programs git would run (an
fsmonitor, hooks), so every git call nano-code makes turns those off. The
provenance calls can be started early (`start_provenance`, see `early.py`), so
they run while nano-code is still importing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from nano_code.adapters import early

SAFETY = (
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "safe.bareRepository=explicit",
)
TIMEOUT = 5.0
STATUS = ("status", "--porcelain=v2", "--branch")
"""What the provenance asks of the workspace: HEAD and the dirty state in one call."""
HEAD = ("rev-parse", "HEAD")


def argv(*args: str) -> list[str]:
    return ["git", *SAFETY, *args]


def source_checkout() -> Path | None:
    """nano-code's own checkout, when it runs from one."""
    source = Path(__file__).resolve().parents[2]
    return source if (source / ".git").exists() else None


def output(args: tuple[str, ...] | list[str], cwd: Path, timeout: float = TIMEOUT) -> str | None:
    """git's stdout, stripped, or None when git is missing, fails or takes too long."""
    try:
        done = early.run(argv(*args), cwd, timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8", "replace").strip() if done.returncode == 0 else None


def start_provenance(workspace: Path) -> None:
    """Start the git calls a recorded session's provenance makes (see `early`)."""
    early.start(argv(*STATUS), workspace)
    source = source_checkout()
    if source is not None:
        early.start(argv(*HEAD), source)
