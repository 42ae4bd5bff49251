"""Background threads that leave Ctrl-C and SIGTERM to the main thread.

The kernel delivers a process's signal to any thread that does not block it; one taken by a
helper thread leaves the main thread's blocking read (a model call) uninterrupted until the
server answers. Threads made here block both, so the signal reaches the main thread.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def background_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """A daemon thread running `target` with SIGINT and SIGTERM blocked (not started)."""

    def run() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        target()

    return threading.Thread(target=run, name=name, daemon=True)
