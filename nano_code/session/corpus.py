"""Corpus tables: one recorded session as rows, for pandas, DuckDB, a spreadsheet or jq.

Rows per session file (`sessions`), model call (`steps`; retries included, numbered as replay
does) and tool call the model asked for (`tool_calls`; refused ones included). Tokens and `cost`
(exact decimals) are the server's; `outcome` is a session's last turn end, a step's answer,
tool_calls or failure kind, a tool call's ok, nonzero_exit, error, denied, interrupted,
no_result, refused or not_run; `replay` and `divergence` need a ReplayReport.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters.journal import (
    CallWithoutResponse,
    EventEntry,
    JournalError,
    ModelChangeEntry,
    RetryEntry,
    TurnEndEntry,
)
from nano_code.adapters.session_file import Record, SessionFile, load_session
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
from nano_code.kernel.types import USAGE_COUNTS, Usage
from nano_code.session.divergence import ReplayReport
from nano_code.session.recording import response_event
from nano_code.session.table_cells import cut, first_line

Row = dict[str, Any]
_USAGE_COLUMNS = (*USAGE_COUNTS, "cost")
SESSION_COLUMNS = (
    *("path", "session_id", "parent", "parent_path", "fork_at", "created", "origin", "model"),
    *("settings_hash", "nano_code_version", "task", "n_turns", "n_steps", "n_tool_calls", *_USAGE_COLUMNS),
    *("duration_ms", "model_ms", "tool_ms", "outcome", "torn", "unreadable_records", "replay", "divergence"),
)
STEP_COLUMNS = (
    *("path", "session_id", "step", "turn", "turn_step", "attempt", "model", "status", "outcome"),
    *("finish_reason", "n_tool_calls", *_USAGE_COLUMNS, "duration_ms", "t_ms", "turn_end", "detail"),
    *("line", "divergence"),
)
TOOL_CALL_COLUMNS = (
    *("path", "session_id", "step", "turn", "call_id", "tool", "arguments", "inside_workspace", "approval"),
    *("outcome", "exit_status", "is_error", "output_chars", "duration_ms", "t_ms", "line", "divergence"),
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
        return {"sessions": (self.session,), "steps": self.steps}.get(table, self.tool_calls)

    def as_json(self) -> dict[str, Any]:
        """The nested form: the session's columns, then its steps and tool calls (costs as numbers)."""

        def own(row: dict[str, Any]) -> dict[str, Any]:
            return _json_values({k: v for k, v in row.items() if k not in ("path", "session_id")})

        steps, calls = [own(row) for row in self.steps], [own(row) for row in self.tool_calls]
        return {**_json_values(self.session), "steps": steps, "tool_calls": calls}


def settings_hash(settings: object) -> str:
    """First 12 hex digits of the SHA-256 of `settings` as JSON (sorted keys, no spaces); "" for none."""
    if not isinstance(settings, Mapping):
        return ""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _usage_columns(usage: Usage | None) -> dict[str, Any]:
    if usage is None:
        return dict.fromkeys(_USAGE_COLUMNS)
    # a float read from the server's JSON: its repr is the digits the server wrote
    cost = Decimal(repr(usage.cost)) if usage.cost is not None else None
    return {column: getattr(usage, column) for column in _USAGE_COLUMNS} | {"cost": cost}


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_CHARS else line[: _DETAIL_CHARS - 1] + "\u2026"


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@attrs.define
class _Clock:
    """Wall time from `t_ms` stamps; a stamp going back starts a new run (a resumed session)."""

    finished_runs: int = 0
    last: int = 0

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
    """One session's rows; `report` (its replay) fills `replay` and `divergence`."""
    session = source if isinstance(source, SessionFile) else load_session(source)
    reader = _Reader(session)
    for record in session.records:
        (reader.interaction if record.kind == "interaction" else reader.journal)(record)
    return reader.tables(report)


class _Reader:
    """Walks one session's records in order, building its rows."""

    def __init__(self, session: SessionFile) -> None:
        self.session = session
        self.ids = {"path": str(session.path), "session_id": str(session.metadata.get("session_id") or "")}
        self.model = str(session.metadata.get("model") or "")  # a fork's live part may change it
        self.clock = _Clock()
        self.steps: list[dict[str, Any]] = []
        self.calls: dict[tuple[int, str], dict[str, Any]] = {}  # (step, call id) -> row
        self.call_lines: dict[tuple[int, str], list[int]] = {}
        self.asked: dict[int, tuple[int, tuple[ReplyToolCall, ...]]] = {}  # step -> (line, calls asked)
        self.task = ""
        self.turn = 0
        self.turn_step = 0
        self.retry_attempt: int | None = None  # the next model call is this attempt of its step
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
        row.update(duration_ms=_int_or_none(nano.get("duration_ms")), t_ms=self.clock.stamp(nano.get("t_ms")))
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
            row.update(duration_ms=entry.duration_ms, t_ms=t_ms)
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
                arguments = json.dumps(entry.call.arguments, ensure_ascii=False, separators=(",", ":"))
                call_row = _call_row(self.ids, key[0], self.turn, entry.call.id, entry.call.name, arguments)
                self.calls[key] = call_row
                self.call_lines[key] = []
            self.call_lines[key].append(record.line)
            call_row["line"] = record.line
            _add_to_tool_row(call_row, entry, t_ms)

    def tables(self, report: ReplayReport | None) -> SessionTables:
        metadata = self.session.metadata
        tool_rows, tool_lines = self._all_tool_calls()
        texts = ("created", "origin", "model", "nano_code_version")
        session_row = dict.fromkeys(SESSION_COLUMNS) | {
            **self.ids,
            **_parent_columns(metadata.get("parent")),
            **{key: str(metadata.get(key) or "") for key in texts},
            "settings_hash": settings_hash(metadata.get("settings")),
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
        }
        if report is not None:
            _fill_divergence(report, session_row, self.steps, tool_rows, tool_lines)
        return SessionTables(
            _cells_cut(session_row),
            tuple(_cells_cut(row) for row in self.steps),
            tuple(_cells_cut(row) for row in tool_rows),
        )

    def _all_tool_calls(self) -> tuple[list[dict[str, Any]], list[list[int]]]:
        """Every tool call the model asked for, in order, with its records' file lines."""
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
                row = _call_row(self.ids, step, self.steps[step - 1]["turn"], raw.id, raw.name, raw.arguments)
                row.update(line=reply_line, outcome="not_run" if usable else "refused")
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
        row.update(finish_reason=event.finish_reason, n_tool_calls=len(event.tool_calls))
        row.update(_usage_columns(event.usage))
    elif isinstance(event, ModelFailure):
        row.update(outcome=event.kind.value, detail=_one_line(event.message))
    elif isinstance(event, Interrupt):
        row["outcome"] = "interrupted"


def _call_row(
    ids: Mapping[str, str], step: int, turn: int, call_id: str, tool: str, arguments: str | None
) -> Row:
    row: Row = dict.fromkeys(TOOL_CALL_COLUMNS)
    row.update(
        ids, step=step, turn=turn, call_id=call_id, tool=tool, arguments=arguments, outcome="no_result"
    )
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
        outcome = "error" if event.is_error else "ok" if event.exit_status in (None, 0) else "nonzero_exit"
        row.update(exit_status=event.exit_status, is_error=event.is_error, output_chars=len(event.output))
        row.update(duration_ms=entry.duration_ms, outcome=outcome)
    elif isinstance(event, Interrupt):
        row.update(outcome="interrupted", duration_ms=entry.duration_ms)


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
        for column in USAGE_COUNTS:
            totals[column] += row[column] or 0
        if row["cost"] is not None:
            totals["cost"] = (totals["cost"] or Decimal(0)) + row["cost"]
    return totals


def _fill_divergence(
    report: ReplayReport,
    session_row: Row,
    steps: list[Row],
    tool_rows: list[Row],
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


def _json_values(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: float(value) if isinstance(value, Decimal) else value for key, value in row.items()}
