"""What a replay says: one status line a session, its notes, and a batch's summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nano_code.cli.exits import say
from nano_code.session.table_cells import first_line

TORN_NOTE = (
    "the file's last line was cut off while being written (the session was killed mid-write); "
    "the replay stops where the file does"
)


def status(report: Any) -> str:
    if report.status == "identical":
        masked = f", masked {', '.join(report.masked)}" if report.masked else ""
        return f"{report.path}: identical ({report.steps} steps, {report.tool_calls} tool calls{masked})"
    if report.status == "diverged":
        return f"{report.path}: {report.divergence.render()}"
    if report.status == "error":
        return f"{report.path}: error: {first_line(report.error or '')}"
    if report.status == "tool outputs differ":
        count = len(report.tool_output_differences)
        return f"{report.path}: replayed identically, but {count} tool output(s) differ here"
    return f"{report.path}: {report.status} -> {report.output_path}"


def notes(report: Any) -> list[str]:
    """What a user should know beside the status: a torn file, masks that hid nothing."""
    found = [f"  note: {TORN_NOTE}"] if report.torn else []
    for pattern in report.unused_masks:
        found.append(f"  note: --ignore {pattern} hid nothing (a typo, or a field that did not change?)")
    if report.not_rerun:
        found.append(
            f"  note: {report.not_rerun} recorded call(s) were not re-run here: they need approval, "
            "and the file's own calls get it only from --rerun-recorded (or your yes at a terminal)"
        )
    return found


def status_line(report: Any) -> str:
    return "\n".join([status(report), *notes(report)])


def print_report(report: Any) -> None:
    """The status of one replay shown in full: its notes, accepted changes, tool outputs, cost."""
    if report.sandbox_notice:
        say(f"nano-code replay: {report.sandbox_notice} (live tools ran unsandboxed)", err=True)
    say(status_line(report), err=report.status == "error")
    for change in report.changed_requests:
        say(f"  {change.render('accepted a change')}")
    if report.workspace is not None:
        say(f"  tools ran in {report.workspace}")
    for difference in report.tool_output_differences:
        say(f"  step {difference.step}: {difference.tool} output differs from the recording")
    if report.ok:
        usage = report.usage
        cost = f", ${usage.cost:.4f}" if usage.cost is not None else ""
        say(f"  {usage.total_tokens:,} tokens{cost}, replayed in {report.seconds * 1000:.0f} ms")


def summary(reports: Sequence[Any], elapsed: float) -> str:
    """A batch's counts and speed, and the sessions that failed."""
    counts = {s: sum(r.status == s for r in reports) for s in ("identical", "diverged", "error")}
    rate = len(reports) / elapsed if elapsed > 0 else 0.0
    steps = sum(r.steps for r in reports)
    lines = [
        f"\nsessions {len(reports)} | identical {counts['identical']} | diverged {counts['diverged']} | "
        f"errors {counts['error']} | {rate:.1f} sessions/s | {steps / elapsed if elapsed else 0:.0f} steps/s"
    ]
    if failed := [report for report in reports if not report.ok]:
        lines += ["failed:", *(f"  {report.path}: {report.status}" for report in failed)]
    return "\n".join(lines)
