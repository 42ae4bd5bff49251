"""An eval's samples turned into its tables and its stdout report.

`SampleRow` is one line of DIR/samples.csv; `summary_rows` gives DIR/summary.csv (a row per task x
model), `compare_rows` DIR/compare.csv (a row per pair of models), `report` the text printed at the
end of a run. The samples are read once and tallied per task x model, so memory grows with the
number of tasks and models, not samples.

An "error" sample (the agent or its server failed before the check could say) counts as a sample
that did not pass: it is in n and not in passed, like a fail. Leaving errors out would raise the
pass rate of a model whose errors come from its own replies; a run whose errors are the harness's
fault is better re-run than read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

import attrs

from nano_code.evals.stats import (
    MONTE_CARLO_FLIPS,
    PairedComparison,
    mean_interval,
    paired_comparison,
    pass_at_k,
    wilson_interval,
)

OUTCOMES = ("pass", "fail", "error")
"""What a sample can end in: its check passed, its check failed, or no check could run."""


@attrs.frozen
class SampleRow:
    """One finished sample: a task run once by one model (one line of DIR/samples.csv)."""

    task: str
    model: str
    epoch: int
    """1-based: the how-manieth run of this task by this model."""
    outcome: str = attrs.field(validator=attrs.validators.in_(OUTCOMES))
    steps: int
    total_tokens: int
    cached_tokens: int
    """Prompt tokens read from the prompt cache, summed over the sample's requests."""
    cache_write_tokens: int
    """Prompt tokens written to the prompt cache, summed over the sample's requests."""
    cost: float | None
    """The server's reported cost, summed; None when it reported none."""
    duration_s: float
    session: str
    """The sample's session file, relative to DIR."""
    error: str
    """One line saying what went wrong; "" when nothing did."""


SAMPLE_COLUMNS: tuple[str, ...] = tuple(field.name for field in attrs.fields(SampleRow))
"""The columns of DIR/samples.csv, in order."""


@attrs.define
class Tally:
    """The running totals of one task x model's samples."""

    n: int = 0
    passed: int = 0
    errors: int = 0
    steps: int = 0
    tokens: int = 0
    cost: float = 0.0
    costed: int = 0
    """Samples whose server reported a cost."""
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    def add(self, sample: SampleRow) -> None:
        """Count one more sample."""
        self.n += 1
        self.passed += sample.outcome == "pass"
        self.errors += sample.outcome == "error"
        self.steps += sample.steps
        self.tokens += sample.total_tokens
        if sample.cost is not None:
            self.cost += sample.cost
            self.costed += 1
        self.cached_tokens += sample.cached_tokens
        self.cache_write_tokens += sample.cache_write_tokens

    @property
    def rate(self) -> Fraction:
        """The pass rate, exact."""
        return Fraction(self.passed, self.n)


Tallies = dict[tuple[str, str], Tally]
"""(task, model) -> its tally."""


def tally(samples: Iterable[SampleRow]) -> Tallies:
    """Every sample counted into its task x model, in one pass."""
    tallies: Tallies = {}
    for sample in samples:
        tallies.setdefault((sample.task, sample.model), Tally()).add(sample)
    return tallies


def summary_rows(samples: Iterable[SampleRow], max_k: int) -> list[dict[str, Any]]:
    """A row per task x model, sorted by task then model (see the module docstring for the columns).

    pass_at_k is None (an empty cell) where the row has fewer than k samples; mean_cost is the mean
    over the samples whose server reported a cost, None when none did; the token columns are totals.
    """
    return rows_from_tallies(tally(samples), max_k)


def rows_from_tallies(tallies: Tallies, max_k: int) -> list[dict[str, Any]]:
    """`summary_rows` from tallies already made."""
    rows = []
    for (task, model), counts in sorted(tallies.items()):
        low, high = wilson_interval(counts.passed, counts.n)
        row: dict[str, Any] = {
            "task": task,
            "model": model,
            "n": counts.n,
            "passed": counts.passed,
            "pass_rate": counts.passed / counts.n,
            "wilson_low": low,
            "wilson_high": high,
        }
        for k in range(1, max_k + 1):
            row[f"pass_at_{k}"] = pass_at_k(counts.n, counts.passed, k) if k <= counts.n else None
        row["mean_steps"] = counts.steps / counts.n
        row["mean_tokens"] = counts.tokens / counts.n
        row["mean_cost"] = counts.cost / counts.costed if counts.costed else None
        row["cached_tokens"] = counts.cached_tokens
        row["cache_write_tokens"] = counts.cache_write_tokens
        rows.append(row)
    return rows


def compare_rows(samples: Iterable[SampleRow], models: Sequence[str]) -> list[dict[str, Any]]:
    """A row per pair (a, b) of `models`, a before b in the given order, over the tasks both ran.

    difference is the mean over those tasks of a's pass rate minus b's; ci_low and ci_high its 95 %
    interval (Student's t, paired over tasks); p_value the exact sign-flip test. The interval and p
    are None (empty cells) with fewer than 2 tasks in common, the difference too with none.
    """
    return comparisons_from_tallies(tally(samples), models)


def comparisons_from_tallies(tallies: Tallies, models: Sequence[str]) -> list[dict[str, Any]]:
    """`compare_rows` from tallies already made."""
    rows = []
    for index, model_a in enumerate(models):
        for model_b in models[index + 1 :]:
            result = paired_comparison(task_differences(tallies, model_a, model_b))
            rows.append(
                {
                    "model_a": model_a,
                    "model_b": model_b,
                    "tasks": result.tasks,
                    "difference": result.difference,
                    "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "p_value": result.p_value,
                }
            )
    return rows


def task_differences(tallies: Tallies, model_a: str, model_b: str) -> list[Fraction]:
    """a's pass rate minus b's on each task both ran, in task order."""
    tasks = sorted({task for task, _ in tallies})
    return [
        tallies[task, model_a].rate - tallies[task, model_b].rate
        for task in tasks
        if (task, model_a) in tallies and (task, model_b) in tallies
    ]


def report(samples: Iterable[SampleRow], models: Sequence[str], max_k: int) -> str:
    """The text printed at the end of a run: a table per model, then each comparison in words."""
    tallies = tally(samples)
    rows = rows_from_tallies(tallies, max_k)
    parts = [model_table(model, [row for row in rows if row["model"] == model], tallies) for model in models]
    for index, model_a in enumerate(models):
        for model_b in models[index + 1 :]:
            result = paired_comparison(task_differences(tallies, model_a, model_b))
            either = {task for task, model in tallies if model in (model_a, model_b)}
            parts.append(comparison_text(model_a, model_b, result, len(either)))
    return "\n\n".join(parts) + "\n"


def model_table(model: str, rows: Sequence[dict[str, Any]], tallies: Tallies) -> str:
    """One model's table: a line per task, then the mean over its tasks, its cost and cache use."""
    if not rows:
        return f"{model}: no samples"
    counts = [tallies[row["task"], model] for row in rows]
    samples = sum(count.n for count in counts)
    errors = sum(count.errors for count in counts)
    heading = f"{model}: {_plural(len(rows), 'task')}, {_plural(samples, 'sample')}"
    if errors:
        heading += f" ({_plural(errors, 'error')}, counted as not passed)"
    pass_at = [key for key in rows[0] if key.startswith("pass_at_")]
    header = ["task", "n", "passed", "pass rate (95% CI)"]
    header += [key.replace("pass_at_", "pass@") for key in pass_at]
    header += ["cost", "cache read", "cache written"]
    lines = [header]
    for row, count in zip(rows, counts, strict=True):
        line = [row["task"], str(row["n"]), str(row["passed"])]
        line.append(f"{row['pass_rate']:.2f} ({row['wilson_low']:.2f}-{row['wilson_high']:.2f})")
        line += ["-" if row[key] is None else f"{row[key]:.2f}" for key in pass_at]
        line += [_money(count), str(count.cached_tokens), str(count.cache_write_tokens)]
        lines.append(line)
    return "\n".join([heading, _aligned(lines), _model_footer(counts)])


def _model_footer(counts: Sequence[Tally]) -> str:
    """The model's mean pass rate over its tasks, its cost and its cache use, in one line."""
    rates = [float(count.rate) for count in counts]
    mean = sum(rates) / len(rates)
    if len(rates) >= 2:
        low, high = mean_interval(rates, (0.0, 1.0))
        spread = f"(95% CI {low:.2f} to {high:.2f}, Student's t over tasks)"
    else:
        spread = "(one task: its interval is the row's)"
    total = _combined(counts)
    return (
        f"mean pass rate over tasks {mean:.2f} {spread}; cost {_money(total)}; "
        f"prompt cache {total.cached_tokens} tokens read, {total.cache_write_tokens} written"
    )


def _combined(counts: Iterable[Tally]) -> Tally:
    """One tally holding the totals of several."""
    total = Tally()
    for count in counts:
        for field in attrs.fields(Tally):
            setattr(total, field.name, getattr(total, field.name) + getattr(count, field.name))
    return total


def comparison_text(model_a: str, model_b: str, result: PairedComparison, either: int) -> str:
    """A comparison in plain words: over what, who passes more and by how much, how sure."""
    if result.difference is None:
        return f"{model_a} vs {model_b}: no task was run by both, so there is nothing to compare."
    scope = f"{model_a} vs {model_b}, over the {_plural(result.tasks, 'task')} both ran"
    if either > result.tasks:
        scope += f" (of {either})"
    ahead, difference = model_a, result.difference
    low, high = result.ci_low, result.ci_high
    if difference < 0:
        ahead, difference = model_b, -difference
        low, high = (None, None) if low is None or high is None else (-high, -low)
    if difference == 0:
        said = "  both pass at the same mean rate per task: difference 0.000"
    else:
        said = f"  {ahead} passes more often, by {difference:.3f} per task on average"
    if result.p_value is None or low is None or high is None:
        return f"{scope}:\n{said}.\n  One task gives no interval and no p-value: they need at least 2."
    said += f" (95% CI {low:.3f} to {high:.3f}, Student's t paired over tasks)."
    test = "exact sign-flip test" if result.p_exact else f"sign-flip test, {MONTE_CARLO_FLIPS} random flips"
    verdict = "significant" if result.p_value < 0.05 else "not significant"
    sure = f"  p = {result.p_value:.3g} ({test}): {verdict} at the 5% level"
    smallest = result.smallest_p
    if smallest is not None and smallest >= 0.05:
        sure += f"; with {result.tasks} tasks no p-value can fall below {smallest:.3g}"
    return f"{scope}:\n{said}\n{sure}."


def _money(counts: Tally) -> str:
    """The reported cost, saying how many samples reported none."""
    if not counts.costed:
        return "not reported"
    shown = f"${counts.cost:.4f}"
    missing = counts.n - counts.costed
    return shown if not missing else f"{shown} ({missing} unreported)"


def _aligned(lines: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell: the first left-aligned, the others right-aligned."""
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def _plural(count: int, noun: str) -> str:
    """'1 task', '2 tasks'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
