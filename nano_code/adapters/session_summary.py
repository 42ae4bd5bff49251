"""A session's row for `nano-code sessions`, cheap whatever the file holds: interactions
counted, not parsed; journal lines parsed only up to `LIST_PARSE_BYTES`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from nano_code.adapters.journal import JournalEntry, JournalError, entry_key, read_entry, usage_totals
from nano_code.adapters.session_file import (
    MAX_RECORD_BYTES,
    MAX_SESSION_BYTES,
    METADATA_PREFIX,
    TORN,
    LineReader,
    SessionFileError,
    checked_metadata,
    open_regular,
    over_cap,
    too_large,
)
from nano_code.kernel.events import UserInput

LIST_PARSE_BYTES = 1 << 20  # a longer journal line (a big tool output) is not parsed for a row
HEAD_BYTES = 1 << 16  # how much of a longer line is kept: enough for its kind and a user input's first line
_CHUNK = 1 << 20


@attrs.frozen
class SessionSummary:
    path: Path
    metadata: Mapping[str, Any]
    task: str  # the first line of the first user input ('' when there is none)
    steps: int  # HTTP interactions recorded
    tokens: int
    cost: float | None  # summed over the turn ends; None when no turn end reported a cost


def summarize(path: Path) -> SessionSummary:
    """The row of `path` (SessionFileError when it is no readable session)."""
    fd = open_regular(path)
    try:
        with open(fd, "rb") as handle:
            return _summarize(handle, path)
    except OSError as error:
        raise SessionFileError(f"{path}: cannot read: {error}") from error


def _lines(handle: BinaryIO, path: Path) -> Iterator[tuple[int, bytes, bool, bool]]:
    """(number, bytes, complete, whole) for each line; of a line longer than LIST_PARSE_BYTES
    (but the metadata) only the first HEAD_BYTES are kept, `whole` False."""
    number = read = 0
    while first := handle.readline(LIST_PARSE_BYTES + 1):
        number += 1
        length = len(first)
        complete = first.endswith(b"\n")
        whole = complete or length <= LIST_PARSE_BYTES
        keep = first.startswith(METADATA_PREFIX.encode())
        parts = [first]
        if not whole:
            if not keep:
                parts = [first[:HEAD_BYTES]]
            del first
            while more := handle.readline(_CHUNK):
                length += len(more)
                if length > MAX_RECORD_BYTES:
                    raise over_cap(path, number)
                if keep:
                    parts.append(more)
                if more.endswith(b"\n"):
                    complete = True
                    break
            whole = keep
        read += length
        if read > MAX_SESSION_BYTES:
            raise too_large(path)
        yield number, b"".join(parts) if len(parts) > 1 else parts[0], complete, whole


def _summarize(handle: BinaryIO, path: Path) -> SessionSummary:
    metadata: Mapping[str, Any] | None = None
    reader = LineReader(path)
    task: str | None = None
    steps = 0
    turn_ends: list[JournalEntry] = []
    for number, raw, complete, whole in _lines(handle, path):
        try:  # a line cut mid-character, or torn, is decoded as it can be
            line = raw.decode("utf-8", "strict" if whole and complete else "replace").rstrip("\n")
        except UnicodeDecodeError as error:
            raise SessionFileError(f"{path}:{number}: not UTF-8 text ({error})") from None
        split = reader.split(number, line, complete)
        if split is None:
            continue
        kind, payload = split
        if kind == "interaction":  # counted, not parsed; a torn last one is none (as load_session counts)
            steps += complete or (whole and reader.record(number, payload, False) is not None)
            continue
        if kind == "journal" and not whole:
            task = task if task is not None else _task_from_start(payload)
            continue
        data = None if kind == TORN else reader.record(number, payload, complete)
        if data is None:
            break  # the torn last line
        if kind == "metadata":
            metadata = data
            continue
        key = entry_key(data)
        if key == "turn_end":
            turn_ends.append(_entry(data))
        elif key == "event" and task is None:
            event = getattr(_entry(data), "event", None)
            if isinstance(event, UserInput):
                task = _first_line(event.text)
    tokens, cost = usage_totals(turn_ends)
    return SessionSummary(path, checked_metadata(metadata, path), task or "", steps, tokens, cost)


def _entry(data: Mapping[str, Any]) -> Any:
    """The journal entry, or None: for a summary an odd record counts for nothing."""
    try:
        return read_entry(data)
    except JournalError:
        return None


_USER_INPUT_START = re.compile(r'\{"event": \{"type": "UserInput", "text": "((?:[^"\\]|\\.)*)')


def _task_from_start(payload: str) -> str | None:
    """The first line of a user input too long to parse, from the start of its record."""
    match = _USER_INPUT_START.match(payload)
    if match is None:
        return None
    escaped = re.sub(r"\\u[0-9a-fA-F]{0,3}$", "", match.group(1))  # an escape cut in two
    try:
        text = json.loads(f'"{escaped}"')
    except ValueError:
        return None
    return _first_line(text)


def _first_line(text: str) -> str | None:
    return text.strip().splitlines()[0] if text.strip() else None
