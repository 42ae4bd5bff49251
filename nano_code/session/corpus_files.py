"""Corpus tables of many session files, written as CSV (one table) or JSONL (all three nested)."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from nano_code.adapters.safe_text import json_text
from nano_code.adapters.session_file import SessionFileError
from nano_code.adapters.session_writer import make_private_dirs
from nano_code.session.corpus import TABLES, SessionTables, session_tables
from nano_code.session.divergence import ReplayReport
from nano_code.session.table_cells import csv_text


def corpus_tables(
    paths: Iterable[str | Path],
    reports: Mapping[str, ReplayReport] | None = None,
    on_error: Callable[[Path, SessionFileError], None] | None = None,
) -> Iterator[SessionTables]:
    """`session_tables` for each file, lazily; `reports` maps a path (as given) to its replay.
    An unreadable file goes to `on_error` and is left out (without it, the error is raised)."""
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
    """Which table a file name asks for: "jsonl" for .jsonl, else the table a .csv name ends
    with (`steps.csv`, `run1-steps.csv`); ValueError for any other name."""
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
    """Write `tables` to `target` as the table its name asks for (or `table`); the rows written.
    The file is private (0600) and appears whole or not at all; FileExistsError unless `overwrite`."""
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
