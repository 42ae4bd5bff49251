"""Corpus tables: recorded sessions as rows, for pandas, DuckDB, a spreadsheet or jq.

Three tables, one row per

    sessions     session file
    steps        model call (a retry is a call of its own)
    tool_calls   tool call the model asked for (one the kernel refused by itself, for
                 an unknown tool or invalid arguments, included)

and one nested form, `.jsonl`: one JSON object per session, its columns plus
`steps` and `tool_calls`, two lists of the rows above (without the repeated
`path` and `session_id`; each tool call names its `step`).

Columns are listed in `SESSION_COLUMNS`, `STEP_COLUMNS`, `TOOL_CALL_COLUMNS`.
The ones worth a word:

- `step` counts a session's model calls from 1, retries included, as replay
  does (`ReplayReport.steps`, "diverged at step N"); `turn_step` and `attempt`
  are the kernel's own numbering within a turn.
- `settings_hash`: the first 12 hex digits of the SHA-256 of the recorded
  settings, as JSON with sorted keys and no spaces. Sessions made with the
  same settings (model, server, budget, workspace, ...) share it.
- tokens and `cost` are what the server reported for each call; a session's
  are their sums. Costs are exact decimals (`decimal.Decimal` in Python, the
  digits as written in CSV): no 0.027200000000000002.
- `duration_ms`: a step's from sending the request to the end of the reply
  (a retry's includes its wait), a tool call's its run time; a session's is
  its wall time while recording (a resumed session: the sum of its runs),
  with `model_ms` and `tool_ms` the parts spent in model calls and tools.
- `outcome`: a session's last turn end (completed, step_budget, failed,
  interrupted; "unfinished" when the last turn has none); a step's "answer",
  "tool_calls", or the failure ("rate_limit", "timeout", ...,
  "interrupted"); a tool call's "ok", "nonzero_exit", "error", "denied",
  "interrupted", "no_result" (the file ends first), "refused" (the kernel
  answered it itself: an unknown tool or unusable arguments, as the model
  sent them) or "not_run" (the turn ended before it ran). `exit_status`
  and `is_error` are there as recorded.
- Text cells are cut to `table_cells.CELL_CHARS` characters, saying so. In
  CSV, control characters are escaped and a text cell a spreadsheet would
  read as a formula (`=`, `+`, `-`, `@`, ...) begins with `'`: see
  `nano_code/session/table_cells.py`. Numbers stay numbers.
- `replay` and `divergence` stay empty unless a `ReplayReport` is given for
  the session (`nano-code export --replay` replays each one first): then the
  session row has the replay status and the first line of the divergence or
  error, and the step or tool call row holding the recorded side of the
  divergence (by its file `line`) repeats it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import attrs

from nano_code.adapters.journal import (
    CallWithoutResponse,
    EventEntry,
    JournalError,
    ModelChangeEntry,
    RetryEntry,
    TurnEndEntry,
)
from nano_code.adapters.safe_text import json_text
from nano_code.adapters.session_file import Record, SessionFile, SessionFileError, load_session
from nano_code.adapters.session_writer import make_private_dirs
from nano_code.adapters.tools import tool_specs
from nano_code.kernel.events import (
    ApprovalDecision,
    Interrupt,
    ModelFailure,
    ModelReply,
    ReplyToolCall,
    ToolCallFacts,
    ToolResult,
    UserInput,
    Verdict,
)
from nano_code.kernel.policy import parse_arguments
from nano_code.kernel.types import Usage
from nano_code.session.divergence import ReplayReport
from nano_code.session.recording import response_event
from nano_code.session.table_cells import csv_text, cut, first_line

__all__ = [
    "SESSION_COLUMNS",
    "STEP_COLUMNS",
    "TABLES",
    "TOOL_CALL_COLUMNS",
    "SessionTables",
    "corpus_tables",
    "session_tables",
    "settings_hash",
    "table_for",
    "write_table",
]

_USAGE_COLUMNS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost",
)
SESSION_COLUMNS = (
    "path",
    "session_id",
    "parent",
    "parent_path",
    "fork_at",
    "created",
    "origin",
    "model",
    "settings_hash",
    "nano_code_version",
    "task",
    "n_turns",
    "n_steps",
    "n_tool_calls",
    *_USAGE_COLUMNS,
    "duration_ms",
    "model_ms",
    "tool_ms",
    "outcome",
    "torn",
    "unreadable_records",
    "replay",
    "divergence",
)
STEP_COLUMNS = (
    "path",
    "session_id",
    "step",
    "turn",
    "turn_step",
    "attempt",
    "model",
    "status",
    "outcome",
    "finish_reason",
    "n_tool_calls",
    *_USAGE_COLUMNS,
    "duration_ms",
    "t_ms",
    "turn_end",
    "detail",
    "line",
    "divergence",
)
TOOL_CALL_COLUMNS = (
    "path",
    "session_id",
    "step",
    "turn",
    "call_id",
    "tool",
    "arguments",
    "inside_workspace",
    "approval",
    "outcome",
    "exit_status",
    "is_error",
    "output_chars",
    "duration_ms",
    "t_ms",
    "line",
    "divergence",
)
TABLES = {"sessions": SESSION_COLUMNS, "steps": STEP_COLUMNS, "tool_calls": TOOL_CALL_COLUMNS}
"""Table name -> its columns; `.jsonl` is the nested form of all three."""

_DETAIL_CHARS = 300


@attrs.frozen
class SessionTables:
    """One session's rows: its `session` row, and its `steps` and `tool_calls` rows."""

    session: dict[str, Any]
    steps: tuple[dict[str, Any], ...]
    tool_calls: tuple[dict[str, Any], ...]

    def rows(self, table: str) -> tuple[dict[str, Any], ...]:
        if table == "sessions":
            return (self.session,)
        return self.steps if table == "steps" else self.tool_calls

    def as_json(self) -> dict[str, Any]:
        """The nested form: the session's columns, then its steps and tool calls (costs as numbers)."""
        shared = ("path", "session_id")
        return {
            **_json_values(self.session),
            "steps": [_json_values({k: v for k, v in r.items() if k not in shared}) for r in self.steps],
            "tool_calls": [
                _json_values({k: v for k, v in r.items() if k not in shared}) for r in self.tool_calls
            ],
        }


def settings_hash(settings: object) -> str:
    """First 12 hex digits of the SHA-256 of `settings` as JSON (sorted keys, no spaces); "" for none."""
    if not isinstance(settings, Mapping):
        return ""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _cost(value: float | None) -> Decimal | None:
    # A float read from the server's JSON prints as the digits the server wrote.
    return None if value is None else Decimal(repr(value))


def _usage_columns(usage: Usage | None) -> dict[str, Any]:
    if usage is None:
        return dict.fromkeys(_USAGE_COLUMNS)
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cost": _cost(usage.cost),
    }


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_CHARS else line[: _DETAIL_CHARS - 1] + "\u2026"


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Clock:
    """Wall time of a recording from its `t_ms` stamps; a stamp going back starts a new run
    (a resumed session counts from 0 again)."""

    def __init__(self) -> None:
        self.finished_runs = 0
        self.last = 0

    def stamp(self, t_ms: object) -> int | None:
        value = _int_or_none(t_ms)
        if value is not None:
            if value < self.last:
                self.finished_runs += self.last
            self.last = value
        return value

    @property
    def total(self) -> int:
        return self.finished_runs + self.last


def session_tables(source: SessionFile | str | Path, report: ReplayReport | None = None) -> SessionTables:
    """One session's rows; `report` (a replay of it) fills the `replay` and `divergence` columns.

    Raises `SessionFileError` when `source` is a path that is not a readable session.
    """
    session = source if isinstance(source, SessionFile) else load_session(source)
    reader = _Reader(session)
    for record in session.records:
        if record.kind == "interaction":
            reader.interaction(record)
        else:
            reader.journal(record)
    return reader.tables(report)


class _Reader:
    """Walks one session's records in order, building its rows."""

    def __init__(self, session: SessionFile) -> None:
        self.session = session
        self.ids = {"path": str(session.path), "session_id": str(session.metadata.get("session_id") or "")}
        self.model = str(session.metadata.get("model") or "")
        """The model requests name from here on (a fork's live part may change it)."""
        self.clock = _Clock()
        self.steps: list[dict[str, Any]] = []
        self.calls: dict[tuple[int, str], dict[str, Any]] = {}
        """(step, call id) -> the tool call's row (ids may repeat across turns)."""
        self.call_lines: dict[tuple[int, str], list[int]] = {}
        self.asked: dict[int, tuple[int, tuple[ReplyToolCall, ...]]] = {}
        """step -> (its file line, the tool calls its reply asked for, as sent)."""
        self.task = ""
        self.turn = 0
        self.turn_step = 0
        self.retry_attempt: int | None = None
        """Set by a retry record: the next model call is that attempt of the same step."""
        self.outcome = "unfinished"
        self.unreadable = 0

    def _new_step(self, nano: Mapping[str, Any], model: str, line: int) -> dict[str, Any]:
        self.turn_step, attempt = _numbering(nano, self.turn_step, self.retry_attempt)
        self.retry_attempt = None
        row: dict[str, Any] = dict.fromkeys(STEP_COLUMNS)
        row.update(self.ids, step=len(self.steps) + 1, turn=self.turn, turn_step=self.turn_step)
        row.update(attempt=attempt, model=model, line=line, n_tool_calls=0)
        self.steps.append(row)
        return row

    def interaction(self, record: Record) -> None:
        nano = record.data.get("nano_code")
        nano = nano if isinstance(nano, Mapping) else {}
        row = self._new_step(nano, self.model, record.line)
        row["duration_ms"] = _int_or_none(nano.get("duration_ms"))
        row["t_ms"] = self.clock.stamp(nano.get("t_ms"))
        response = record.data.get("response")
        status = response.get("status") if isinstance(response, Mapping) else None
        row["status"] = _int_or_none(status.get("code")) if isinstance(status, Mapping) else None
        try:
            event = response_event(record.data)
            _describe_outcome(row, event)
        except (KeyError, TypeError, ValueError, AttributeError):
            row["outcome"], row["detail"] = "unreadable", "the response record has an odd shape"
            return
        if isinstance(event, ModelReply) and event.tool_calls:
            self.asked[row["step"]] = (record.line, event.tool_calls)

    def journal(self, record: Record) -> None:
        t_ms = self.clock.stamp(record.data.get("t_ms"))
        try:
            entry = record.entry
        except JournalError:
            self.unreadable += 1
            return
        if isinstance(entry, CallWithoutResponse):
            asked = entry.request.get("model")
            row = self._new_step({}, asked if isinstance(asked, str) else self.model, record.line)
            row["duration_ms"] = entry.duration_ms
            row["t_ms"] = t_ms
            _describe_outcome(row, entry.event)
        elif isinstance(entry, RetryEntry):
            self.retry_attempt = entry.attempt
        elif isinstance(entry, TurnEndEntry):
            self.outcome = entry.end.reason.value
            if self.steps and self.steps[-1]["turn"] == self.turn:
                self.steps[-1]["turn_end"] = self.outcome
        elif isinstance(entry, ModelChangeEntry):
            self.model = entry.model
        elif isinstance(entry, EventEntry) and isinstance(entry.event, UserInput):
            self.turn += 1
            self.turn_step = 0
            self.outcome = "unfinished"
            if not self.task:
                self.task = cut(first_line(entry.event.text))
        elif isinstance(entry, EventEntry) and entry.call is not None:
            key = (len(self.steps), entry.call.id)
            call_row = self.calls.get(key)
            if call_row is None:
                call_row = self.calls[key] = _tool_row(self.ids, len(self.steps), self.turn, entry)
                self.call_lines[key] = []
            self.call_lines[key].append(record.line)
            call_row["line"] = record.line
            _add_to_tool_row(call_row, entry, t_ms)

    def tables(self, report: ReplayReport | None) -> SessionTables:
        metadata = self.session.metadata
        tool_rows, tool_lines = self._all_tool_calls()
        session_row = {
            **self.ids,
            **_parent_columns(metadata.get("parent")),
            "created": str(metadata.get("created") or ""),
            "origin": str(metadata.get("origin") or ""),
            "model": str(metadata.get("model") or ""),
            "settings_hash": settings_hash(metadata.get("settings")),
            "nano_code_version": str(metadata.get("nano_code_version") or ""),
            "task": self.task,
            "n_turns": self.turn,
            "n_steps": len(self.steps),
            "n_tool_calls": len(tool_rows),
            **_sums(self.steps),
            "duration_ms": self.clock.total,
            "model_ms": sum(row["duration_ms"] or 0 for row in self.steps),
            "tool_ms": sum(row["duration_ms"] or 0 for row in tool_rows),
            "outcome": self.outcome if self.turn else "",
            "torn": self.session.torn_tail,
            "unreadable_records": self.unreadable,
            "replay": None,
            "divergence": None,
        }
        if report is not None:
            _fill_divergence(report, session_row, self.steps, tool_rows, tool_lines)
        return SessionTables(
            _cells_cut(session_row),
            tuple(_cells_cut(row) for row in self.steps),
            tuple(_cells_cut(row) for row in tool_rows),
        )

    def _all_tool_calls(self) -> tuple[list[dict[str, Any]], list[list[int]]]:
        """Every tool call the model asked for, in order, with the file lines of each one's
        records: the driver's rows, and a row for each call that never reached the driver."""
        handled: dict[int, list[tuple[int, str]]] = {}
        for key in self.calls:
            handled.setdefault(key[0], []).append(key)
        rows: list[dict[str, Any]] = []
        lines: list[list[int]] = []
        specs = {spec.name: spec for spec in tool_specs()}
        for step in sorted(handled.keys() | self.asked.keys()):
            keys = handled.get(step, [])
            reply_line, asked = self.asked.get(step, (0, ()))
            for raw in asked:
                usable = not isinstance(parse_arguments(specs.get(raw.name), raw.name, raw.arguments), str)
                if usable and keys and self.calls[keys[0]]["tool"] == raw.name:
                    key = keys.pop(0)  # the kernel hands usable calls to the driver in the reply's order
                    rows.append(self.calls[key])
                    lines.append(self.call_lines[key])
                    continue
                row: dict[str, Any] = dict.fromkeys(TOOL_CALL_COLUMNS)
                row.update(self.ids, step=step, turn=self.steps[step - 1]["turn"], call_id=raw.id)
                row.update(tool=raw.name, arguments=raw.arguments, line=reply_line)
                row["outcome"] = "not_run" if usable else "refused"
                rows.append(row)
                lines.append([])
            for key in keys:  # handled, but not found in the reply (a file from another version)
                rows.append(self.calls[key])
                lines.append(self.call_lines[key])
        return rows, lines


def _cells_cut(row: dict[str, Any]) -> dict[str, Any]:
    return {key: cut(value) if isinstance(value, str) else value for key, value in row.items()}


def _numbering(nano: Mapping[str, Any], turn_step: int, retry_attempt: int | None) -> tuple[int, int]:
    """(turn_step, attempt) of the next model call: as recorded, else counted (a retry repeats its step)."""
    step, attempt = _int_or_none(nano.get("step")), _int_or_none(nano.get("attempt"))
    if step is not None and attempt is not None:
        return step, attempt
    if retry_attempt is not None:
        return max(turn_step, 1), retry_attempt
    return turn_step + 1, 1


def _describe_outcome(row: dict[str, Any], event: object) -> None:
    if isinstance(event, ModelReply):
        row["outcome"] = "tool_calls" if event.tool_calls else "answer"
        row["finish_reason"] = event.finish_reason
        row["n_tool_calls"] = len(event.tool_calls)
        row.update(_usage_columns(event.usage))
    elif isinstance(event, ModelFailure):
        row["outcome"] = event.kind.value
        row["detail"] = _one_line(event.message)
    elif isinstance(event, Interrupt):
        row["outcome"] = "interrupted"


def _tool_row(ids: Mapping[str, str], step: int, turn: int, entry: EventEntry) -> dict[str, Any]:
    assert entry.call is not None
    row: dict[str, Any] = dict.fromkeys(TOOL_CALL_COLUMNS)
    row.update(ids, step=step, turn=turn, call_id=entry.call.id, tool=entry.call.name, outcome="no_result")
    row["arguments"] = json.dumps(entry.call.arguments, ensure_ascii=False, separators=(",", ":"))
    return row


def _add_to_tool_row(row: dict[str, Any], entry: EventEntry, t_ms: int | None) -> None:
    event = entry.event
    row["t_ms"] = t_ms
    if isinstance(event, ToolCallFacts):
        row["inside_workspace"] = event.inside_workspace
    elif isinstance(event, ApprovalDecision):
        row["approval"] = event.verdict.value
        if event.verdict is Verdict.DENY:
            row["outcome"] = "denied"
    elif isinstance(event, ToolResult):
        row["exit_status"] = event.exit_status
        row["is_error"] = event.is_error
        row["output_chars"] = len(event.output)
        row["duration_ms"] = entry.duration_ms
        if event.is_error:
            row["outcome"] = "error"
        else:
            row["outcome"] = "ok" if event.exit_status in (None, 0) else "nonzero_exit"
    elif isinstance(event, Interrupt):
        row["outcome"] = "interrupted"
        row["duration_ms"] = entry.duration_ms


def _parent_columns(parent: object) -> dict[str, Any]:
    if not isinstance(parent, Mapping):
        return {"parent": None, "parent_path": None, "fork_at": None}
    return {
        "parent": str(parent.get("session_id") or "") or None,
        "parent_path": str(parent.get("path") or "") or None,
        "fork_at": _int_or_none(parent.get("fork_at")),
    }


def _sums(steps: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = dict.fromkeys(_USAGE_COLUMNS, 0)
    totals["cost"] = None
    for row in steps:
        for column in _USAGE_COLUMNS[:-1]:
            totals[column] += row[column] or 0
        if row["cost"] is not None:
            totals["cost"] = (totals["cost"] or Decimal(0)) + row["cost"]
    return totals


def _fill_divergence(
    report: ReplayReport,
    session_row: dict[str, Any],
    steps: list[dict[str, Any]],
    tool_rows: list[dict[str, Any]],
    tool_lines: list[list[int]],
) -> None:
    session_row["replay"] = report.status
    if report.divergence is not None:
        text = report.divergence.render().splitlines()[0]
        session_row["divergence"] = text
        line = report.divergence.line
        if line is not None:
            for row in steps:
                if row["line"] == line:
                    row["divergence"] = text
            for row, lines in zip(tool_rows, tool_lines, strict=True):
                if line in lines:
                    row["divergence"] = text
    elif report.error:
        session_row["divergence"] = "error: " + _one_line(report.error)


def corpus_tables(
    paths: Iterable[str | Path],
    reports: Mapping[str, ReplayReport] | None = None,
    on_error: Callable[[Path, SessionFileError], None] | None = None,
) -> Iterator[SessionTables]:
    """`session_tables` for each session file, in order, one at a time (a corpus need not fit in memory).

    `reports` maps a path (as given) to its replay. A file that is not a
    readable session is passed to `on_error` and left out; without `on_error`
    its `SessionFileError` is raised.
    """
    for raw in paths:
        path = Path(raw)
        try:
            tables = session_tables(path, (reports or {}).get(str(raw)))
        except SessionFileError as error:
            if on_error is None:
                raise
            on_error(path, error)
            continue
        yield tables


def table_for(target: str | Path) -> str:
    """Which table a file name asks for: "jsonl" by the suffix .jsonl; "sessions", "steps" or
    "tool_calls" by a .csv name that is the table's or ends with it after "-", "_" or "."
    (`steps.csv`, `run1-steps.csv`). ValueError for any other name."""
    path = Path(target)
    if path.suffix == ".jsonl":
        return "jsonl"
    if path.suffix == ".csv":
        for table in TABLES:
            if path.stem == table or path.stem.endswith((f"-{table}", f"_{table}", f".{table}")):
                return table
    raise ValueError(
        f"{path.name}: name the file sessions.csv, steps.csv or tool_calls.csv "
        "(a prefix like run1- is fine), or give it the suffix .jsonl"
    )


def write_table(
    tables: Iterable[SessionTables], target: str | Path, table: str | None = None, overwrite: bool = False
) -> int:
    """Write `tables` to `target` as the table its name asks for (or `table`); return the rows written.

    The file is private (0600: a corpus holds what the sessions read) and
    appears whole or not at all. An existing `target` is replaced only when
    `overwrite`; otherwise FileExistsError.
    """
    target = Path(target)
    kind = table or table_for(target)
    if kind != "jsonl" and kind not in TABLES:
        raise ValueError(f"unknown table {kind!r}")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists")
    make_private_dirs(target.parent)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with open(fd, "w", encoding="utf-8", newline="") as stream:
            count = _write_jsonl(tables, stream) if kind == "jsonl" else _write_csv(tables, stream, kind)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def _write_jsonl(tables: Iterable[SessionTables], stream: TextIO) -> int:
    count = 0
    for one in tables:
        stream.write(json_text(one.as_json()) + "\n")
        count += 1
    return count


def _write_csv(tables: Iterable[SessionTables], stream: TextIO, kind: str) -> int:
    columns = TABLES[kind]
    writer = csv.writer(stream)
    writer.writerow(columns)
    count = 0
    for one in tables:
        for row in one.rows(kind):
            writer.writerow([_csv_value(row.get(column)) for column in columns])
            count += 1
    return count


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return csv_text(value)
    return value


def _json_values(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: float(value) if isinstance(value, Decimal) else value for key, value in row.items()}
