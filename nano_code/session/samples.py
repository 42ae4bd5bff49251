"""K forks of one session from the same step, each in its own restored workspace, with an outcome.

A `check` command run in each fork's final workspace, and in the parent's re-run one, gives the
outcomes (exit status 0: pass). Interrupted, it starts no more forks and reports those that finished.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
from collections.abc import Sequence
from functools import partial
from itertools import zip_longest
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters.config import Settings
from nano_code.adapters.session_file import SessionFileError, load_session
from nano_code.session.divergence import ReplayReport
from nano_code.session.interruptible import run_interruptibly
from nano_code.session.intervals import wilson_interval
from nano_code.session.recording import response_event
from nano_code.session.replay import replay_session

CHECK_TIMEOUT = 600.0
"""Seconds a --check command may run in one workspace."""

MAX_SAMPLES = 1000
"""Forks one run may ask for: at 1000 a Wilson 95% interval is already within about +-3 points."""


def max_jobs() -> int:
    """Forks run at once: 4 per CPU (a fork mostly waits on its server), at most 64 (each holds a
    workspace, a connection and tool processes)."""
    return min(64, 4 * (os.cpu_count() or 1))


@attrs.frozen
class Outcome:
    passed: bool | None
    """None when there was no check, or the fork failed before it could run."""
    detail: str = ""


@attrs.frozen
class Sample:
    index: int
    report: ReplayReport
    outcome: Outcome
    interrupted: bool = False
    """The fork finished, but its check was interrupted."""


@attrs.frozen
class SampleReport:
    parent: str
    fork_at: int
    samples: tuple[Sample, ...]
    parent_outcome: Outcome
    parting_step: int | None
    """The first step at which the forks' actions differ (None: they never part)."""
    requested: int = 0
    """Forks asked for (more than `samples` holds when the run was interrupted)."""
    interrupted: bool = False

    @property
    def passed(self) -> int:
        return sum(sample.outcome.passed is True for sample in self.samples)

    @property
    def checked(self) -> int:
        return sum(sample.outcome.passed is not None for sample in self.samples)

    def table(self) -> str:
        lines = [f"{len(self.samples)} forks of {self.parent} at step {self.fork_at}"]
        if self.interrupted:
            lines[0] += f" (interrupted: {len(self.samples)} of {self.requested} finished)"
        row = "{:>4}  {:10} {:8} {:>5} {:>8} {:>9}  {}".format  # the heading's columns and each fork's
        lines += ["", row("fork", "status", "outcome", "steps", "tokens", "cost", "session")]
        for sample in self.samples:
            report, usage = sample.report, sample.report.usage
            cost = f"${usage.cost:.4f}" if usage.cost is not None else "-"
            outcome = {True: "pass", False: "fail", None: "-"}[sample.outcome.passed]
            child = report.output_path or report.error or ""
            lines.append(
                row(sample.index, report.status, outcome, report.steps, usage.total_tokens, cost, child)
            )
        lines.append("")
        if self.checked:
            low, high = wilson_interval(self.passed, self.checked)
            lines.append(
                f"outcome: {self.passed}/{self.checked} passed ({self.passed / self.checked:.0%}; "
                f"95% interval {low:.0%}-{high:.0%}, Wilson)"
            )
        ok = [sample.report for sample in self.samples if sample.report.ok]
        lines += [
            f"steps:   {spread([r.steps for r in ok])}",
            f"tokens:  {spread([r.usage.total_tokens for r in ok])}",
        ]
        if costs := [r.usage.cost for r in ok if r.usage.cost is not None]:
            lines.append(f"cost:    {spread(costs, money=True)}")
        parting = (
            f"step {self.parting_step}" if self.parting_step is not None else "never (all forks acted alike)"
        )
        lines.append(f"the forks' actions first differ at: {parting}")
        parent = {True: "passes", False: "fails", None: "not checked"}[self.parent_outcome.passed]
        detail = f" ({self.parent_outcome.detail})" if self.parent_outcome.detail else ""
        lines.append(f"the parent session's own outcome: {parent}{detail}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        low, high = wilson_interval(self.passed, self.checked) if self.checked else (None, None)
        return {
            "parent": self.parent,
            "fork_at": self.fork_at,
            "requested": self.requested,
            "interrupted": self.interrupted,
            "passed": self.passed,
            "checked": self.checked,
            "wilson_95": [low, high],
            "parting_step": self.parting_step,
            "parent_outcome": self.parent_outcome.passed,
            "samples": [
                {
                    "index": s.index,
                    "status": s.report.status,
                    "outcome": s.outcome.passed,
                    "steps": s.report.steps,
                    "tokens": s.report.usage.total_tokens,
                    "cost": round(s.report.usage.cost, 10) if s.report.usage.cost is not None else None,
                    "child": s.report.output_path,
                    "workspace": s.report.workspace,
                    "error": s.report.error,
                }
                for s in self.samples
            ],
        }


def spread(values: Sequence[float], money: bool = False) -> str:
    """Mean, standard deviation, and range, or '-' for no values."""
    if not values:
        return "-"
    shown = "${:.4f}".format if money else "{:,.1f}".format
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"mean {shown(statistics.fmean(values))}, sd {shown(deviation)}, {shown(min(values))}-{shown(max(values))}"


def check_outcome(
    command: str, workspace: str | None, sandbox: str | None = None, sandbox_network: bool = False
) -> Outcome:
    """`command` run as a check (`session/check.py`) in `workspace`. It runs on the model's code,
    so as the fork's tools did: in the sandbox, without the API key."""
    from nano_code.adapters.sandbox import SandboxUnavailable
    from nano_code.session.check import run_check
    from nano_code.session.factory import choose_sandbox

    if workspace is None:
        return Outcome(None, "no workspace to check")
    try:
        box, _ = choose_sandbox(sandbox, sandbox_network, Path(workspace))
        result = run_check(command, Path(workspace), CHECK_TIMEOUT, box)
    except (OSError, SandboxUnavailable) as error:
        return Outcome(None, f"the check could not run: {error}")
    return Outcome(result.passed, result.reason)


def actions_by_step(path: str | Path) -> list[str]:
    """What the model did at each step of a session (its tool calls, or its answer), as text."""
    steps: list[str] = []
    for record in load_session(Path(path)).records:
        if record.kind == "interaction":
            event = response_event(record.data)
            calls = getattr(event, "tool_calls", None)
            if calls:
                steps.append(json.dumps([[c.name, c.arguments] for c in calls], sort_keys=True))
            else:
                steps.append(json.dumps(["answer", getattr(event, "content", None)]))
    return steps


def parting_step(children: Sequence[str]) -> int | None:
    """The first step (1-based) at which the sessions' actions are not all the same."""
    try:
        runs = [actions_by_step(child) for child in children]
    except SessionFileError:
        return None
    if len(runs) < 2:
        return None
    return next((step for step, seen in enumerate(zip_longest(*runs), 1) if len(set(seen)) > 1), None)


def _one_fork(fork: tuple[int, Path, int | None], check: str | None, shared: dict[str, Any]) -> Sample:
    """One fork (its number, file and seed) and its check; its workspace is gone when this returns
    or raises. Interrupted during the check, the finished fork is kept and marked."""
    from nano_code.adapters.secrets import Redactor

    index, fork_to, seed = fork
    report = replay_session(
        **shared,
        redactor=Redactor(shared["live_settings"].api_key),  # the live part's key stays out of the fork
        fork_to=fork_to,
        live_seed=seed,
        keep_workspace=check is not None,  # the check runs there; removed after it
    )
    outcome, interrupted = _check_in(report, check if report.ok else None, shared)
    return Sample(index, report, outcome, interrupted)


def _check_in(
    report: ReplayReport, check: str | None, shared: dict[str, Any], unusable: str = ""
) -> tuple[Outcome, bool]:
    """`check` run in `report`'s workspace unless that is `unusable` (why), and whether it was
    interrupted; the workspace is removed after it."""
    try:
        if check is None or unusable:
            return Outcome(None, unusable), False
        return check_outcome(check, report.workspace, shared["sandbox"], shared["sandbox_network"]), False
    except KeyboardInterrupt:
        return Outcome(None, "the check was interrupted"), True
    finally:
        if report.workspace is not None:
            shutil.rmtree(report.workspace, ignore_errors=True)


def sample_forks(
    path: str | Path,
    fork_at: int,
    samples: int,
    live_settings: Settings,
    *,
    check: str | None = None,
    jobs: int = 1,
    seed: int | None = None,
    out_dir: Path | None = None,
    **replay: Any,
) -> SampleReport:
    """`samples` forks of the session at `path` from step `fork_at`, `jobs` (at most `max_jobs()`)
    at once, each a `replay_session` with the keywords in `replay` (`live_model`, `sandbox`...).
    Nothing is asked: calls needing approval run under `approval` AUTO (the live model's) or
    `rerun_recorded` (the file's own), and are refused otherwise."""
    if not 1 <= samples <= MAX_SAMPLES:
        raise ValueError(f"--samples is at least 1 and at most {MAX_SAMPLES}")
    jobs = min(jobs, max_jobs())
    path = Path(path)
    directory = out_dir or path.parent
    targets = [directory / f"{path.stem}.fork{fork_at}.s{index}.yaml" for index in range(1, samples + 1)]
    if existing := [str(target) for target in targets if target.exists()]:
        raise FileExistsError(f"{existing[0]} exists; choose another --output directory, or remove it")
    shared = {"rerun_recorded": False, "sandbox": None, "sandbox_network": False, **replay}
    shared |= {"path": str(path), "fork_at": fork_at, "live_settings": live_settings}
    # with a seed, fork i asks for seed + i - 1: the forks sample apart, and each is repeatable
    todo = [(i, target, None if seed is None else seed + i - 1) for i, target in enumerate(targets, start=1)]
    work = partial(_one_fork, check=check, shared=shared)
    done, interrupted = run_interruptibly(work, todo, jobs, lambda sample: sample.interrupted)
    parent_outcome = Outcome(None)
    if check is not None and not interrupted:
        parent_outcome, interrupted = _parent_outcome(path, check, shared)
    children = [sample.report.output_path for sample in done if sample.report.output_path is not None]
    return SampleReport(
        str(path), fork_at, tuple(done), parent_outcome, parting_step(children), samples, interrupted
    )


def _parent_outcome(path: Path, check: str, shared: dict[str, Any]) -> tuple[Outcome, bool]:
    """The check run where the parent's recorded tools, re-run, leave a restored workspace, and
    whether that was interrupted."""
    try:
        rerun = {name: shared[name] for name in ("rerun_recorded", "sandbox", "sandbox_network")}
        parent = replay_session(path, live_tools=True, keep_workspace=True, **rerun)  # kept for the check
    except KeyboardInterrupt:
        return Outcome(None, "interrupted"), True
    usable = parent.status in ("identical", "tool outputs differ")
    unusable = "" if usable else f"its tools could not be re-run: {parent.error or parent.status}"
    return _check_in(parent, check, shared, unusable)
