"""Run jobs one by one or in a process pool, so that Ctrl-C or SIGTERM stops them cleanly.

After an interrupt no job starts, running ones are interrupted once (never again while they
clean up), and the finished jobs' results come back in order.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")

_stopping = False
"""In a worker process: a signal came; start no further job."""
_busy = False
"""In a worker process: a job is running (a signal interrupts it)."""


def run_interruptibly(
    work: Callable[[Job], Result],
    jobs: Sequence[Job],
    processes: int,
    stops: Callable[[Result], bool] = lambda result: False,
) -> tuple[list[Result], bool]:
    """`work` on each job in `processes` processes (both must pickle): the finished jobs'
    results, in order, and whether the run was interrupted. A result `stops` is true of
    (a job that saw the interrupt but finished) is kept and ends the run."""
    if processes <= 1 or len(jobs) <= 1:
        return _one_by_one(work, jobs, stops)
    pool = ProcessPoolExecutor(max_workers=min(processes, len(jobs)), initializer=_worker_start)
    futures: list[Future[tuple[Result] | None]] = []
    interrupted = False
    try:
        futures = [pool.submit(_in_worker, work, job) for job in jobs]
        boxes = (future.result() for future in futures)  # in order, each as it finishes
        interrupted = any(box is None or stops(box[0]) for box in boxes)  # a worker signalled alone stops all
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if interrupted:
            # Ctrl-C at a terminal reaches the workers too; SIGTERM (or a signal to this
            # process alone) does not: pass it on (a worker heeds only the first).
            for child in multiprocessing.active_children():
                if child.pid is not None:
                    os.kill(child.pid, signal.SIGINT)
        pool.shutdown(wait=True, cancel_futures=True)
    finished = [f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None]
    return [box[0] for box in finished if box is not None], interrupted


def _one_by_one(
    work: Callable[[Job], Result], jobs: Sequence[Job], stops: Callable[[Result], bool]
) -> tuple[list[Result], bool]:
    done: list[Result] = []
    try:
        for job in jobs:
            done.append(work(job))
            if stops(done[-1]):
                return done, True
    except KeyboardInterrupt:
        return done, True
    return done, False


def _worker_start() -> None:
    """The first SIGINT or SIGTERM interrupts the running job and starts no other; later ones are
    ignored, not to cut its cleanup short. An idle worker is not interrupted (the pool would break)."""

    def on_signal(signum: int, frame: object) -> None:
        global _stopping
        first = not _stopping
        _stopping = True
        if first and _busy:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def _in_worker(work: Callable[[Job], Result], job: Job) -> tuple[Result] | None:
    """`work(job)` in a pool worker, boxed; None when interrupted before or during it."""
    global _busy
    if _stopping:
        return None
    try:
        _busy = True
        return (work(job),)
    except KeyboardInterrupt:
        return None
    finally:
        _busy = False
