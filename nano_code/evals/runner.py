"""`run_eval`: a suite across models and epochs into DIR, resumably, and its tables.

The plan is every (task, model, epoch) DIR lacks, epoch by epoch (an interrupted or budgeted
run leaves whole epochs, balanced over tasks and models). Settings come as `nano-code -p` gets
them (`.env`, the environment, then the arguments); the API key is never written.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from nano_code import __version__
from nano_code.adapters.config import Settings, load_settings
from nano_code.adapters.endpoint import is_loopback_url
from nano_code.adapters.process_groups import kill_left_running
from nano_code.adapters.sandbox import Sandbox
from nano_code.evals.engines import engine_named
from nano_code.evals.rundir import FORMAT, FORMAT_VERSION, BackgroundWriter, RunDir
from nano_code.evals.sample import SampleResult, SampleSpec
from nano_code.evals.suite import Suite, load_suite
from nano_code.evals.summary import SampleRow, compare_rows, report, summary_rows
from nano_code.session.factory import choose_sandbox

MAX_MODELS = 20
MAX_EPOCHS = 1000
MAX_JOBS = 64
MAX_SAMPLES = 1_000_000


class EvalError(Exception):
    """The run cannot start: one line says why."""


class EvalStopped(EvalError):
    """The run could not go on (DIR could not be written); every finished sample is kept."""


@attrs.frozen
class Progress:
    """Where a run stands, after each finished sample."""

    done: int
    """Samples in DIR (from earlier runs too)."""
    total: int
    passed: int
    cost: float
    seconds_left: float | None
    """Estimated from this run's pace; None before its first sample."""


@attrs.frozen
class EvalResult:
    """What a run leaves: DIR's samples and tables, and whether every planned sample is in DIR."""

    output: Path
    samples: tuple[SampleRow, ...]
    summary: tuple[dict[str, Any], ...]
    compare: tuple[dict[str, Any], ...]
    report: str
    models: tuple[str, ...]
    planned: int
    """task x model x epoch: the samples this run asked for."""
    ran: int
    """Samples this run added."""
    stopped: str | None = None
    """Why planned samples are missing: --max-cost was reached, or "interrupted"."""
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        return len(self.samples) >= self.planned

    @property
    def tables(self) -> tuple[str, ...]:
        """The table files in `output`."""
        return ("samples.csv", "summary.csv", *(("compare.csv",) if len(self.models) >= 2 else ()))


def run_eval(
    suite: str | Path,
    models: Sequence[str],
    epochs: int,
    output: str | Path,
    *,
    base_url: str | None = None,
    jobs: int = 1,
    max_steps: int | None = None,
    yes: bool = False,
    max_cost: float | None = None,
    engine: str = "local",
    engine_options: Mapping[str, Any] | None = None,
    sandbox: str | None = None,
    sandbox_network: bool = False,
    retry_errors: bool = False,
    environ: Mapping[str, str] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> EvalResult:
    """Run every sample of `suite` x `models` x `epochs` that `output` lacks, `jobs` at a time, and
    rebuild the tables. Settings: `.env` in the current folder, then `environ` (default
    os.environ), then these arguments. Ctrl-C stops the run and returns what finished, with
    `interrupted` set. Raises SuiteError, RunDirError, ConfigError or EvalError before any sample
    runs when the run cannot start, and EvalError when DIR cannot be written any more."""
    notice = on_notice or (lambda text: None)
    _check_counts(epochs, jobs, max_cost)
    loaded = load_suite(suite)
    settings = _settings(base_url, max_steps, yes, sandbox, sandbox_network, environ, notice)
    models = list(models) or [settings.model]
    _check_models(models)
    in_force = _sandbox_in_force(settings, Path(loaded.path).parent, notice)
    planned = len(loaded.tasks) * len(models) * epochs
    if planned > MAX_SAMPLES:
        raise EvalError(f"{planned:,} samples asked for; at most {MAX_SAMPLES:,} in one DIR")
    try:
        run = engine_named(engine, engine_options)
    except ValueError as error:
        raise EvalError(str(error)) from None
    with RunDir(Path(output)) as run_dir:
        run_dir.accept(_manifest(loaded, models, epochs, settings, in_force))
        rows = run_dir.rows()
        if retry_errors:
            errors = [(row.task, row.model, row.epoch) for row in rows if row.outcome == "error"]
            run_dir.drop(errors)
            rows = [row for row in rows if row.outcome != "error"]
        budget = _Budget(max_cost, sum(row.cost or 0.0 for row in rows))
        done = {(row.task, row.model, row.epoch) for row in rows}
        specs = _specs(loaded, models, epochs, settings, done, budget)
        counter = _Counter(len(rows), planned, sum(row.outcome == "pass" for row in rows), budget)
        stop = threading.Event()
        interrupted, failure = _record(run_dir, run(specs, jobs, stop), stop, counter, on_progress)
        before = len(rows)
        rows = run_dir.rows()  # the record, whatever an interrupt cut short in memory
        ran = len(rows) - before
        order = {task: index for index, task in enumerate(loaded.ids)}
        rows.sort(key=lambda row: (order[row.task], models.index(row.model), row.epoch))
        tables = _tables(run_dir, rows, models, epochs, notice)
    if failure is not None:
        kept = f"{len(rows)} finished sample(s) are kept; run the same command again to finish"
        raise EvalStopped(f"{failure}; {kept}")
    stopped = "interrupted" if interrupted else budget.stopped
    return EvalResult(Path(output), tuple(rows), *tables, tuple(models), planned, ran, stopped, interrupted)


def _check_models(models: Sequence[str]) -> None:
    if len(models) > MAX_MODELS:
        raise EvalError(f"at most {MAX_MODELS} models in one eval")
    if len(set(models)) != len(models):
        raise EvalError("a model is given twice")
    for model in models:
        if not model.strip() or len(model) > 200 or not model.isprintable():
            raise EvalError(f"{model!r} is not a model name")


def _check_counts(epochs: int, jobs: int, max_cost: float | None) -> None:
    if not 1 <= epochs <= MAX_EPOCHS:
        raise EvalError(f"--epochs must be from 1 to {MAX_EPOCHS}")
    if not 1 <= jobs <= MAX_JOBS:
        raise EvalError(f"--jobs must be from 1 to {MAX_JOBS}")
    if max_cost is not None and not max_cost >= 0:
        raise EvalError("--max-cost must be a number of dollars, 0 or more")


def _settings(
    base_url: str | None,
    max_steps: int | None,
    yes: bool,
    sandbox: str | None,
    network: bool,
    environ: Mapping[str, str] | None,
    notice: Callable[[str], None],
) -> Settings:
    overrides = {
        "INFERENCE_BASE_URL": base_url,
        "NANO_CODE_MAX_STEPS": str(max_steps) if max_steps is not None else None,
        "NANO_CODE_YES": "1" if yes else None,
        "NANO_CODE_SANDBOX": sandbox,
        "NANO_CODE_SANDBOX_NETWORK": "1" if network else None,
    }
    settings = load_settings(Path.cwd(), os.environ if environ is None else environ, overrides)
    for warning in settings.warnings:
        notice(warning)
    if (
        settings.api_key
        and settings.base_url.lower().startswith("http:")
        and not is_loopback_url(settings.base_url)
    ):
        notice(f"warning: the API key goes unencrypted (http://) to {settings.base_url}; use https://")
    return settings


def _sandbox_in_force(settings: Settings, folder: Path, notice: Callable[[str], None]) -> Sandbox | None:
    """The sandbox samples will have (chosen once here: it probes bubblewrap), said when it is off."""
    box, sandbox_notice = choose_sandbox(settings.sandbox, settings.sandbox_network, folder)
    if sandbox_notice is not None:
        notice(sandbox_notice)
    return box


def _manifest(
    suite: Suite, models: Sequence[str], epochs: int, settings: Settings, box: Sandbox | None
) -> dict[str, Any]:
    shaping = {
        "base_url": settings.base_url,
        "max_steps": settings.max_steps,
        "yes": settings.auto_approve,
        "sandbox": box.mode.value if box is not None else "off",
        "sandbox_network": box.network if box is not None else False,
        "stream": settings.stream,
        "prompt_cache": settings.prompt_cache,
        "shell_timeout": settings.shell_timeout,
        "context_tokens": settings.context_tokens,
    }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "suite": suite.path,
        "suite_sha256": suite.digest,
        "tasks": list(suite.ids),
        "models": list(models),
        "epochs": epochs,
        "settings": shaping,
        "nano_code_version": __version__,
    }


def session_name(task: str, model: str, epoch: int) -> str:
    """A sample's session file, relative to DIR; the model's name made a safe folder name."""
    return f"sessions/{task}/{safe_model(model)}/epoch-{epoch}.yaml"


def safe_model(model: str) -> str:
    """`model` as one folder name: characters outside [A-Za-z0-9._-] become '_', and a short hash
    of the name is added when that changed it, so two models never share a folder."""
    import hashlib

    safe = "".join(char if char.isascii() and (char.isalnum() or char in "._-") else "_" for char in model)
    if safe == model and not model.startswith("."):
        return model
    return f"{safe.lstrip('.')[:80]}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


@attrs.define
class _Budget:
    """--max-cost: the dollars DIR's samples cost so far, and whether to start another."""

    limit: float | None
    spent: float
    stopped: str | None = None

    def allows_another(self) -> bool:
        if self.limit is None or self.spent < self.limit:
            return True
        self.stopped = f"the summed cost ${self.spent:.4f} reached --max-cost ${self.limit:g}"
        return False


def _specs(
    suite: Suite,
    models: Sequence[str],
    epochs: int,
    settings: Settings,
    done: set[tuple[str, str, int]],
    budget: _Budget,
) -> Iterator[SampleSpec]:
    """The samples DIR lacks, epoch by epoch, lazily: each only while the budget allows."""
    for epoch in range(1, epochs + 1):
        for task in suite.tasks:
            for model in models:
                if (task.id, model, epoch) in done:
                    continue
                if not budget.allows_another():
                    return
                yield SampleSpec(task, model, epoch, settings, session_name(task.id, model, epoch))


@attrs.define
class _Counter:
    done: int
    total: int
    passed: int
    budget: _Budget
    ran: int = 0
    started: float = attrs.field(factory=time.monotonic)

    def add(self, row: SampleRow) -> Progress:
        self.done, self.ran = self.done + 1, self.ran + 1
        self.passed += row.outcome == "pass"
        self.budget.spent += row.cost or 0.0
        return self.now()

    def now(self) -> Progress:
        left = None
        if self.ran:
            left = (time.monotonic() - self.started) / self.ran * max(0, self.total - self.done)
        return Progress(self.done, self.total, self.passed, self.budget.spent, left)


def _record(
    run_dir: RunDir,
    results: Iterator[SampleResult],
    stop: threading.Event,
    counter: _Counter,
    on_progress: Callable[[Progress], None] | None,
) -> tuple[bool, str | None]:
    """Add each finished sample to DIR as it comes; (interrupted, why DIR could not be written)."""
    interrupted, writer = False, BackgroundWriter(run_dir)
    try:
        if on_progress is not None:
            on_progress(counter.now())
        for result in results:
            if writer.failure is not None:
                break
            if result.row is not None:
                writer.put(result.row, result.files)
                progress = counter.add(result.row)
                if on_progress is not None:
                    on_progress(progress)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        failure = writer.close()
        stop.set()
        close = getattr(results, "close", None)
        if close is not None:
            close()  # a generator's own cleanup: it waits a moment for the samples in flight
        kill_left_running()  # what the samples' commands left running
    return interrupted, failure


def _tables(
    run_dir: RunDir, rows: list[SampleRow], models: Sequence[str], epochs: int, notice: Callable[[str], None]
) -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, Any], ...], str]:
    """Write the CSV tables of `rows` (in suite order; a failure is said, not raised: samples.jsonl
    holds the samples), and return the summary, the comparison and the report."""
    summary = tuple(summary_rows(rows, epochs))
    compare = tuple(compare_rows(rows, models)) if len(models) >= 2 else ()
    try:
        run_dir.write_tables(rows, summary, compare if len(models) >= 2 else None)
    except OSError as error:
        where = f"{run_dir.path}: {error.strerror or error}"
        notice(f"cannot write the tables in {where} (samples.jsonl holds every sample)")
    return summary, compare, report(rows, models, epochs)
