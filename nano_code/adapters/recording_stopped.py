"""`RecordingStopped`, in a module of its own: a run that records nothing still catches it,
without importing the writer, the session format and the journal (about 7 ms of start-up)."""

from __future__ import annotations

from pathlib import Path


class RecordingStopped(Exception):
    """Writing the session failed: the run stops with this line; earlier records stay."""

    def __init__(self, path: Path, reason: str) -> None:
        import shlex  # only when a recording stops

        super().__init__(
            f"recording stopped: {reason} while writing {path}; what was written before is kept "
            f"and can be resumed: nano-code --resume {shlex.quote(str(path))}"
        )
        self.path = path
