"""How a command ends: its exit status, and the one line that says why."""

from __future__ import annotations

import signal
import sys
import time

EXIT_OK = 0
EXIT_FAILED = 1
"""The turn failed (model error after retries, step budget), or a replay diverged."""
EXIT_USAGE = 2
"""Usage or configuration error."""
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

show_tracebacks = False
"""Set from NANO_CODE_DEBUG once a run has read its settings (.env included)."""


def say(text: str = "", *, err: bool = False) -> None:
    """Print one line of text that may hold untrusted parts (paths, recorded values), made safe."""
    from nano_code.adapters.safe_text import for_terminal

    stream = sys.stderr if err else sys.stdout
    stream.write(for_terminal(text) + "\n")
    stream.flush()


def usage_error(text: str) -> int:
    """Say `text` on stderr; the exit status of a usage or configuration error."""
    say(text, err=True)
    return EXIT_USAGE


QUICK_REPEAT = 1.0
"""Seconds within which a second Ctrl-C means "quit", not just "stop this step"."""


class Interrupts:
    """Ctrl-C and SIGTERM both arrive as KeyboardInterrupt, for the same cleanup; this remembers
    which and when, so two quick Ctrl-C can quit and `kill` exits 143."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.terminated = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGTERM:
            self.terminated = True
        else:
            self.times.append(time.monotonic())
        raise KeyboardInterrupt

    def twice_quickly(self) -> bool:
        return len(self.times) >= 2 and self.times[-1] - self.times[-2] <= QUICK_REPEAT

    def exit_status(self, status: int) -> int:
        return EXIT_TERMINATED if self.terminated else status
