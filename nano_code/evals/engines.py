"""Where samples run: an engine takes specs lazily and yields each result as it finishes.

An engine is a function `(specs, jobs, stop) -> results`. It pulls the next spec only when it
can start it, after yielding the results it has (so the driver decides, spec by spec, whether to
go on: `--max-cost`), runs at most `jobs` at once, and once `stop` is set starts nothing more; the samples in flight then end at
their next step (`live_task.Stoppable`) with no row. The driver alone writes DIR, so an engine
only moves specs out and results (rows and session bytes) back. `local` runs samples in
threads of this process: the work is HTTP and subprocesses, which release the GIL.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from nano_code.adapters.threads import background_thread
from nano_code.evals.sample import Engine, SampleResult, SampleSpec, error_result, run_sample

STOP_GRACE = 5.0
"""Seconds a stopped run waits for its samples in flight to end before it leaves them."""


def local_engine(specs: Iterator[SampleSpec], jobs: int, stop: threading.Event) -> Iterator[SampleResult]:
    """Run `specs` in threads, `jobs` at a time; results in the order they finish. The next spec is
    taken after the consumer has seen the last result, so its cost counts before another starts."""
    results: queue.Queue[SampleResult] = queue.Queue()

    def start(spec: SampleSpec) -> None:
        name = f"nano-code-eval {spec.task.id} {spec.epoch}"
        background_thread(lambda: results.put(_guarded(spec, stop)), name).start()

    running = 0
    try:
        for spec in itertools.islice(specs, jobs):
            start(spec)
            running += 1
        while running:
            result = results.get()
            running -= 1
            yield result
            following = None if stop.is_set() else next(specs, None)
            if following is not None:
                start(following)
                running += 1
    finally:
        stop.set()
        deadline = time.monotonic() + STOP_GRACE
        while running and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(queue.Empty):
                results.get(timeout=left)
                running -= 1


def _guarded(spec: SampleSpec, stop: threading.Event) -> SampleResult:
    """`run_sample`, with a bug in it turned into an error row rather than a dead worker."""
    try:
        return run_sample(spec, stop)
    except Exception as error:
        return error_result(spec, f"internal error: {type(error).__name__}: {error}")


def _ray(options: Mapping[str, Any]) -> Engine:
    """`--engine ray` (evals/ray_engine.py), imported only when asked for: it imports Ray."""
    from nano_code.evals.ray_engine import ray_engine

    return ray_engine(options)


ENGINES: dict[str, Callable[[Mapping[str, Any]], Engine]] = {
    "local": lambda options: local_engine,
    "ray": _ray,
}
"""Engines by the name `--engine` gives, each made from its options (`ray` takes an address)."""


def engine_named(name: str, options: Mapping[str, Any] | None = None) -> Engine:
    try:
        make = ENGINES[name]
    except KeyError:
        raise ValueError(f"no engine named {name!r}; the engines are {', '.join(ENGINES)}") from None
    return make(options or {})
