"""Regression: a helper thread took Ctrl-C, so a model call waited for the server's answer
(7 of 48 interrupted runs ended only when the server answered, 10 s later). Helper threads now
block SIGINT and SIGTERM, so the kernel delivers them to the main thread."""

from __future__ import annotations

import signal

from nano_code.adapters.threads import background_thread


def test_a_background_thread_blocks_the_signals_the_main_thread_must_get() -> None:
    seen: list[set[signal.Signals]] = []
    thread = background_thread(lambda: seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])), "probe")
    assert thread.daemon
    thread.start()
    thread.join(5)
    assert seen and {signal.SIGINT, signal.SIGTERM} <= seen[0]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the caller's mask is untouched
