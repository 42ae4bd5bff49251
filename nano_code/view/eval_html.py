"""An eval's output folder as HTML: its manifest, a table per model, the per-task rows with
pass@k and intervals (summary.csv), the comparison (compare.csv, when there are two models or
more) and every sample, each linked to its session's section.

The folder's files are read as data, never trusted: regular files only, bounded, any cell shown
as text. The tables are the ones `nano-code eval` wrote (this package does not import the eval
code); the per-model rows are sums and means of them.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters.regular_files import open_regular
from nano_code.view.text import money, text

MANIFEST = "eval.json"
SAMPLES_CSV = "samples.csv"
SAMPLES_JSONL = "samples.jsonl"
MAX_TABLE_BYTES = 256 << 20
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20", "'")
"""What a formula-safe CSV cell (session/table_cells.py) got a leading ' for."""
_RATES = ("pass_rate", "wilson_", "pass_at_", "difference", "ci_", "p_value")
_MEANS = ("mean_steps", "mean_tokens", "duration_s")

Row = dict[str, str]


@attrs.frozen
class EvalDir:
    """What an eval folder holds, read as text tables."""

    path: Path
    manifest: Mapping[str, Any]
    samples: tuple[Row, ...]
    summary: tuple[Row, ...]
    summary_columns: tuple[str, ...]
    compare: tuple[Row, ...] | None  # None: no compare.csv (one model, or a run not finished)
    compare_columns: tuple[str, ...]
    notes: tuple[str, ...]  # what could not be read
    unfinished: bool = False  # no samples.csv yet: the samples come from samples.jsonl


def is_eval_dir(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


def _read_text(path: Path) -> str:
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_TABLE_BYTES + 1)
    if len(data) > MAX_TABLE_BYTES:
        raise OSError(f"{path}: larger than {MAX_TABLE_BYTES:,} bytes; not read")
    return data.decode("utf-8", "replace")


def _unprotected(cell: str) -> str:
    """A CSV cell as it was before it was made formula-safe (the leading ' taken off again)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def _csv_rows(path: Path, notes: list[str]) -> tuple[tuple[Row, ...], tuple[str, ...]] | None:
    try:
        content = _read_text(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        notes.append(f"{path.name}: not read ({error})")
        return (), ()
    try:
        reader = csv.reader(io.StringIO(content, newline=""))
        columns = tuple(next(reader, []))
        rows = tuple(
            {key: _unprotected(value) for key, value in zip(columns, cells, strict=False)} for cells in reader
        )
    except csv.Error as error:
        notes.append(f"{path.name}: not a readable CSV table ({error})")
        return (), ()
    return rows, columns


def _jsonl_rows(path: Path, notes: list[str]) -> tuple[Row, ...]:
    """samples.jsonl's rows as text cells (a run still going has no samples.csv yet)."""
    try:
        content = _read_text(path)
    except OSError as error:
        notes.append(f"{path.name}: not read ({error})")
        return ()
    rows = []
    for line in content.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue  # a torn last line: the run rewrites it
        if isinstance(data, dict):
            rows.append({str(key): "" if value is None else str(value) for key, value in data.items()})
    return tuple(rows)


def read_eval_dir(path: Path) -> EvalDir:
    notes: list[str] = []
    try:
        manifest = json.loads(_read_text(path / MANIFEST))
    except (OSError, ValueError) as error:
        notes.append(f"{MANIFEST}: not read ({error})")
        manifest = {}
    if not isinstance(manifest, dict):
        notes.append(f"{MANIFEST}: not a JSON object")
        manifest = {}
    samples_table = _csv_rows(path / SAMPLES_CSV, notes)
    if samples_table is None:
        jsonl = path / SAMPLES_JSONL
        samples: tuple[Row, ...] = _jsonl_rows(jsonl, notes) if jsonl.exists() else ()
    else:
        samples = samples_table[0]
    summary = _csv_rows(path / "summary.csv", notes) or ((), ())
    compare = _csv_rows(path / "compare.csv", notes)
    return EvalDir(
        path=path,
        manifest=manifest,
        samples=samples,
        summary=summary[0],
        summary_columns=summary[1],
        compare=compare[0] if compare is not None else None,
        compare_columns=compare[1] if compare is not None else (),
        notes=tuple(notes),
        unfinished=samples_table is None,
    )


def _float(cell: object) -> float | None:
    try:
        value = float(str(cell))
    except ValueError:
        return None
    return value if value == value else None  # NaN is no number here


def outcome_class(outcome: str) -> str:
    """The CSS class of a sample's outcome: one of the page's own, never a file's text."""
    return outcome if outcome in ("pass", "fail", "error") else "muted"


def cell_text(column: str, cell: str) -> str:
    """A table cell as shown: rates to 3 decimals, means to 1, costs in dollars, the rest as written."""
    value = _float(cell)
    if value is None or cell.strip() == "":
        return cell
    if "cost" in column:
        return money(value)
    if column.startswith(_RATES):
        return f"{value:.3f}"
    if column.startswith(_MEANS):
        return f"{value:,.1f}"
    return cell


def _table(
    table_id: str, columns: Sequence[str], rows: Sequence[Mapping[str, str]], links: Sequence[str | None] = ()
) -> str:
    head = "".join(f"<th>{text(column)}</th>" for column in columns)
    out = [
        f'<div class="wide"><table class="sortable" id="{text(table_id)}"><thead><tr>{head}</tr></thead><tbody>'
    ]
    for index, row in enumerate(rows):
        cells = []
        for column in columns:
            cell = row.get(column, "")
            shown = text(cell_text(column, cell))
            css = ' class="num"' if _float(cell) is not None else ""
            if column == "outcome":
                css = f' class="{outcome_class(cell)}"'
            if column == "session" and index < len(links) and links[index]:
                shown = f'<a href="#{text(links[index])}">{shown}</a>'
            cells.append(f"<td{css}>{shown}</td>")
        out.append(f"<tr>{''.join(cells)}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def model_rows(eval_dir: EvalDir) -> tuple[list[str], list[Row]]:
    """A row per model: sums and means over its samples, and its mean pass@k over tasks."""
    listed = eval_dir.manifest.get("models")
    models = [str(model) for model in listed] if isinstance(listed, list) else []
    for sample in eval_dir.samples:
        if sample.get("model", "") not in models:
            models.append(sample.get("model", ""))
    ks = [column for column in eval_dir.summary_columns if column.startswith("pass_at_")]
    columns = ["model", "tasks", "samples", "passed", "pass_rate", "errors", *ks]
    columns += ["total_tokens", "cached_tokens", "cache_write_tokens", "cost", "mean duration_s"]
    rows = []
    for model in models:
        own = [sample for sample in eval_dir.samples if sample.get("model") == model]
        passed = sum(sample.get("outcome") == "pass" for sample in own)
        row: Row = {
            "model": model,
            "tasks": str(len({sample.get("task") for sample in own})),
            "samples": str(len(own)),
            "passed": str(passed),
            "pass_rate": f"{passed / len(own):.3f}" if own else "",
            "errors": str(sum(sample.get("outcome") == "error" for sample in own)),
        }
        for k in ks:
            values = [
                _float(task_row.get(k)) for task_row in eval_dir.summary if task_row.get("model") == model
            ]
            known = [value for value in values if value is not None]
            row[k] = f"{sum(known) / len(known):.3f}" if known else ""
        for column in ("total_tokens", "cached_tokens", "cache_write_tokens"):
            row[column] = f"{int(sum(_float(sample.get(column)) or 0 for sample in own)):,}"
        costs = [_float(sample.get("cost")) for sample in own]
        known_costs = [cost for cost in costs if cost is not None]
        row["cost"] = str(sum(known_costs)) if known_costs else ""
        durations = [_float(sample.get("duration_s")) or 0.0 for sample in own]
        row["mean duration_s"] = f"{sum(durations) / len(durations):.1f}" if durations else ""
        rows.append(row)
    return columns, rows


def _comparison_words(row: Mapping[str, str]) -> str:
    difference, low, high, p = (
        _float(row.get(key)) for key in ("difference", "ci_low", "ci_high", "p_value")
    )
    if difference is None:
        return ""
    a, b = row.get("model_a", "a"), row.get("model_b", "b")
    words = f"{a} minus {b}: {difference:+.3f} in pass rate, averaged over {row.get('tasks', '?')} task(s)"
    if low is not None and high is not None:
        words += f"; 95 % interval {low:+.3f} to {high:+.3f}"
    if p is not None:
        words += f"; p = {p:.3f}"
    return words


def eval_html(eval_dir: EvalDir, sample_links: Sequence[str | None]) -> str:
    """The eval's tables; sample i links to the anchor `sample_links[i]` when it has one."""
    manifest = eval_dir.manifest
    suite = manifest.get("suite") or manifest.get("suite_path") or ""
    out = [f"<h1>eval: {text(suite or eval_dir.path)}</h1>"]
    out.append(_manifest_facts(eval_dir))
    for note in eval_dir.notes:
        out.append(f'<p class="fail">{text(note)}</p>')
    if eval_dir.unfinished:
        unfinished = f"No {SAMPLES_CSV} yet (a run not finished): the samples are read from {SAMPLES_JSONL}."
        out.append(f'<p class="muted">{text(unfinished)}</p>')
    columns, rows = model_rows(eval_dir)
    out.append('<h3 id="models">Models</h3>')
    out.append(_table("model-table", columns, rows))
    out.append(
        '<h3 id="tasks">Tasks</h3><p class="muted">A row per task and model: pass rate with its 95 % '
        "Wilson interval, pass@k by the unbiased estimator, means per sample.</p>"
    )
    out.append(_table("task-table", eval_dir.summary_columns, eval_dir.summary))
    out.append('<h3 id="comparison">Comparison</h3>')
    if eval_dir.compare is None:
        out.append(
            '<p class="muted">No compare.csv: it is written for two models or more, at the end of a run.</p>'
        )
    else:
        out.append(_table("compare-table", eval_dir.compare_columns, eval_dir.compare))
        words = [_comparison_words(row) for row in eval_dir.compare]
        out.append("<ul>" + "".join(f"<li>{text(line)}</li>" for line in words if line) + "</ul>")
    out.append('<h3 id="samples">Samples</h3>')
    out.append(
        '<p><input type="search" data-filter="sample-table" placeholder="filter: task, model, outcome"></p>'
    )
    sample_columns = list(eval_dir.samples[0]) if eval_dir.samples else []
    out.append(_table("sample-table", sample_columns, eval_dir.samples, sample_links))
    return "".join(out)


def _manifest_facts(eval_dir: EvalDir) -> str:
    manifest = eval_dir.manifest
    tasks, models, epochs = manifest.get("tasks"), manifest.get("models"), manifest.get("epochs")
    expected = (
        len(tasks) * len(models) * epochs
        if isinstance(tasks, list) and isinstance(models, list) and isinstance(epochs, int)
        else None
    )
    count = f"{len(eval_dir.samples):,}" + (f" of {expected:,}" if expected is not None else "")
    pairs = [
        ("folder", str(eval_dir.path)),
        ("models", ", ".join(map(str, models)) if isinstance(models, list) else ""),
        ("tasks", f"{len(tasks)}" if isinstance(tasks, list) else ""),
        ("epochs", str(epochs or "")),
        ("samples", count),
        ("suite sha256", str(manifest.get("suite_sha256") or "")),
        (
            "settings",
            json.dumps(manifest.get("settings"), ensure_ascii=False) if manifest.get("settings") else "",
        ),
        ("nano-code", str(manifest.get("nano_code_version") or "")),
    ]
    rows = "".join(f"<dt>{text(label)}</dt><dd>{text(value)}</dd>" for label, value in pairs if value)
    return f'<dl class="facts">{rows}</dl>'
