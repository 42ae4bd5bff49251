"""One sample (task x model x epoch) from a picklable spec: a fresh workspace copy, the live agent,
the check, and the result with the session's files as bytes, so any engine (threads here, a Ray
task elsewhere) can run it and leave the writing of DIR to the driver alone."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from nano_code.adapters.config import Settings
from nano_code.adapters.recording_stopped import RecordingStopped
from nano_code.adapters.safe_text import for_terminal
from nano_code.adapters.sandbox import SandboxUnavailable
from nano_code.adapters.secrets import Redactor, SecretLeakError
from nano_code.adapters.snapshot import archive_path
from nano_code.evals.live_task import LiveRun, run_task_live
from nano_code.evals.suite import Task
from nano_code.evals.summary import SampleRow
from nano_code.kernel.actions import TurnEnd
from nano_code.session.check import run_check
from nano_code.session.factory import choose_sandbox
from nano_code.session.table_cells import first_line

ERROR_CHARS = 300
"""The longest error line a row keeps."""


@attrs.frozen
class SampleSpec:
    """All one sample needs, picklable. `settings` carries the API key: it travels to the engine's
    workers and is never written (the recorder redacts it from the session)."""

    task: Task
    model: str
    epoch: int
    settings: Settings = attrs.field(repr=False)
    session: str
    """Where the session goes, relative to DIR (its file name is kept: the snapshot is named after it)."""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.task.id, self.model, self.epoch)


@attrs.frozen
class SampleResult:
    row: SampleRow | None
    """None when the sample was stopped before it finished (it is not a sample then)."""
    files: tuple[tuple[str, bytes], ...] = ()
    """(path relative to DIR, content): the session and its workspace snapshot."""


Engine = Callable[[Iterator[SampleSpec], int, threading.Event], Iterator[SampleResult]]
"""Where samples run (`engines.py`): specs in, at most `jobs` at once, results as they finish."""


def one_line(text: str) -> str:
    """An error as one safe line of at most ERROR_CHARS characters."""
    return for_terminal(first_line(text))[:ERROR_CHARS]


def run_sample(spec: SampleSpec, stop: threading.Event | None = None) -> SampleResult:
    """Run `spec`'s task once against `spec.model`: the outcome is "pass"/"fail" by the check, or
    "error" when the agent could not finish (the server failed, the recording could not be made)."""
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="nano-code-eval-"))
    try:
        workspace = scratch / "workspace"
        if spec.task.workspace is not None:
            shutil.copytree(spec.task.workspace, workspace, symlinks=True)
        else:
            workspace.mkdir()
        (scratch / "session").mkdir(mode=0o700)
        record_to = scratch / "session" / Path(spec.session).name
        run, error = _run_agent(spec, workspace, record_to, stop)
        if run is not None and run.end.reason is TurnEnd.INTERRUPTED:
            return SampleResult(None)
        outcome, reason = "error", error
        if run is not None and run.end.reason is TurnEnd.FAILED:
            reason = f"the agent failed: {run.end.detail or 'no detail'}"
        elif run is not None:
            outcome, reason = _checked(spec, workspace, run)
        files = _session_files(spec.session, record_to)
        row = _row(spec, outcome, reason, run, time.monotonic() - started, bool(files))
        return SampleResult(row, files)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_agent(
    spec: SampleSpec, workspace: Path, record_to: Path, stop: threading.Event | None
) -> tuple[LiveRun | None, str]:
    settings = spec.settings
    max_steps = spec.task.max_steps or settings.max_steps
    settings = attrs.evolve(settings, model=spec.model, max_steps=max_steps)
    scrub = Redactor(settings.api_key).scrub
    try:
        sandbox, notice = choose_sandbox(settings.sandbox, settings.sandbox_network, workspace)
        labels = {"eval": {"task": spec.task.id, "epoch": spec.epoch}}
        run = run_task_live(
            spec.task.prompt,
            settings,
            workspace,
            sandbox=sandbox,
            sandbox_notice=notice,
            record_to=record_to,
            origin="eval",
            metadata=labels,
            stop=stop,
        )
    except (OSError, SandboxUnavailable, SecretLeakError, RecordingStopped) as error:
        return None, one_line(scrub(f"the sample could not run: {error}"))
    return run, ""


def _checked(spec: SampleSpec, workspace: Path, run: LiveRun) -> tuple[str, str]:
    """("pass" or "fail", why not) by the task's check, in the sandbox the tools had."""
    sandbox, _ = choose_sandbox(spec.settings.sandbox, spec.settings.sandbox_network, workspace)
    try:
        result = run_check(spec.task.check, workspace, spec.task.timeout, sandbox)
    except OSError as error:
        return "error", one_line(f"the check could not run: {error}")
    reason = result.reason
    if run.end.reason is TurnEnd.STEP_BUDGET:
        budget = f"the agent stopped at its step budget ({run.state.steps_this_turn} model calls)"
        reason = f"{budget}; {reason}" if reason else budget
    return ("pass" if result.passed else "fail"), one_line(reason)


def _session_files(session: str, record_to: Path) -> tuple[tuple[str, bytes], ...]:
    """The recorded session and its snapshot, read back (nothing when there is no session)."""
    folder = os.path.dirname(session)
    files = []
    for path in (record_to, archive_path(record_to)):
        if path.is_file():
            files.append((f"{folder}/{path.name}", path.read_bytes()))
    return tuple(files) if files and files[0][0] == session else ()


def error_result(spec: SampleSpec, error: str) -> SampleResult:
    """A sample that could not run (an engine's failure, not the agent's): an error row, no session."""
    return SampleResult(_row(spec, "error", one_line(error), None, 0.0, False))


def _row(
    spec: SampleSpec, outcome: str, error: str, run: LiveRun | None, duration: float, recorded: bool
) -> SampleRow:
    usage = run.end.usage if run is not None else None
    return SampleRow(
        task=spec.task.id,
        model=spec.model,
        epoch=spec.epoch,
        outcome=outcome,
        steps=run.state.steps_this_turn if run is not None else 0,
        total_tokens=usage.total_tokens if usage is not None else 0,
        cached_tokens=usage.cached_tokens if usage is not None else 0,
        cache_write_tokens=usage.cache_write_tokens if usage is not None else 0,
        cost=round(usage.cost, 10) if usage is not None and usage.cost is not None else None,
        duration_s=round(duration, 3),
        session=spec.session if recorded else "",
        error=error,
    )
