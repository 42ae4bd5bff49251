"""What `nano-code sessions` shows of a session file, read without holding its records.

Listing must stay cheap whatever the files hold: `load_session` materialises
every record (a 900 MiB line took 4.7 GB to list one row). Here lines are read
a piece at a time; interactions are counted, not parsed; journal lines are
parsed only up to `LIST_PARSE_BYTES` (the rows need the first user input and
the turn ends, which are small), except that the first line of a longer user
input is read from its start. A line longer than `MAX_RECORD_BYTES` makes the
file unreadable (replay refuses it too) and is reported as soon as it is seen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from nano_code.adapters.journal import EventEntry, JournalError, TurnEndEntry, read_entry
from nano_code.adapters.session_file import (
    INTERACTION_PREFIX,
    JOURNAL_PREFIX,
    MAX_RECORD_BYTES,
    MAX_SESSION_BYTES,
    SessionFileError,
    checked_metadata,
    open_regular,
    over_cap,
)
from nano_code.kernel.events import UserInput

LIST_PARSE_BYTES = 1 << 20
"""Journal lines up to this size are parsed for a row; a longer one (a big tool output) is skipped."""
HEAD_BYTES = 1 << 16
"""How much of a longer line is kept: enough for its kind and a user input's first line."""
_CHUNK = 1 << 20
_METADATA = b"metadata: "


@attrs.frozen
class SessionSummary:
    path: Path
    metadata: Mapping[str, Any]
    task: str
    """The first line of the first user input ('' when there is none)."""
    steps: int
    """HTTP interactions recorded."""
    tokens: int
    cost: float | None
    """Summed over the turn ends; None when no turn end reported a cost."""


def summarize(path: Path) -> SessionSummary:
    """The row of `path` (SessionFileError when it is no readable session)."""
    fd = open_regular(path)
    try:
        with open(fd, "rb") as handle:
            return _summarize(handle, path)
    except OSError as error:
        raise SessionFileError(f"{path}: cannot read: {error}") from error


def _lines(handle: BinaryIO, path: Path) -> Iterator[tuple[int, bytes, bool, bool]]:
    """(number, bytes, complete, whole) for each line; a line longer than LIST_PARSE_BYTES
    (except the metadata line, which a row needs) is read on without being kept: its
    first HEAD_BYTES only, `whole` False."""
    number = read = 0
    while first := handle.readline(LIST_PARSE_BYTES + 1):
        number += 1
        length = len(first)
        complete = first.endswith(b"\n")
        whole = complete or length <= LIST_PARSE_BYTES
        keep = first.startswith(_METADATA)
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
            raise SessionFileError(f"{path}: larger than {MAX_SESSION_BYTES:,} bytes; not read")
        yield number, b"".join(parts) if len(parts) > 1 else parts[0], complete, whole


def _summarize(handle: BinaryIO, path: Path) -> SessionSummary:
    metadata: Mapping[str, Any] | None = None
    in_interactions = False
    task: str | None = None
    steps = tokens = 0
    cost: float | None = None
    for number, raw, complete, whole in _lines(handle, path):
        try:
            line = raw.decode("utf-8").rstrip("\n")
        except UnicodeDecodeError as error:
            if whole and complete:
                raise SessionFileError(f"{path}:{number}: not UTF-8 text ({error})") from None
            line = raw.decode("utf-8", "replace").rstrip("\n")  # cut mid-character, or torn
        if not line.strip():
            continue
        if line.startswith(JOURNAL_PREFIX):
            payload = line[len(JOURNAL_PREFIX) :]
            if not whole:
                if task is None:
                    task = _task_from_start(payload)
                continue
            data = _parse(payload, path, number, complete)
            if data is None:
                break  # the torn last line
            entry = _entry(data) if "turn_end" in data or ("event" in data and task is None) else None
            if isinstance(entry, TurnEndEntry):
                tokens += entry.end.usage.total_tokens
                if entry.end.usage.cost is not None:
                    cost = (cost or 0.0) + entry.end.usage.cost
            elif (
                isinstance(entry, EventEntry)
                and isinstance(entry.event, UserInput)
                and entry.event.text.strip()
            ):
                task = entry.event.text.strip().splitlines()[0]
        elif line.startswith("#"):
            continue
        elif line.startswith("metadata: "):
            metadata = _parse(line[len("metadata: ") :], path, number, complete)
        elif line.startswith(INTERACTION_PREFIX) and in_interactions:
            if complete or (whole and _parse(line[len(INTERACTION_PREFIX) :], path, number, False)):
                steps += 1  # a torn last one is not an interaction (as load_session counts)
        elif line.strip() == "interactions:":
            in_interactions = True
        elif line.startswith("version:"):
            if line.split(":", 1)[1].strip() != "1":
                raise SessionFileError(f"{path}:{number}: unsupported cassette version")
        elif not complete:
            break
        else:
            raise SessionFileError(f"{path}:{number}: not a nano-code session line: {line[:60]!r}")
    metadata = checked_metadata(metadata, path)
    return SessionSummary(
        path=path, metadata=metadata, task=task or "", steps=steps, tokens=tokens, cost=cost
    )


def _parse(payload: str, path: Path, number: int, complete: bool) -> dict[str, Any] | None:
    """A record's JSON object; None for a last line cut off while written."""
    try:
        data = json.loads(payload)
    except RecursionError:
        raise SessionFileError(f"{path}:{number}: corrupt record: nested too deeply") from None
    except ValueError as error:
        if not complete:
            return None
        raise SessionFileError(f"{path}:{number}: corrupt record: {error}") from error
    if not isinstance(data, dict):
        raise SessionFileError(f"{path}:{number}: a record must be a JSON object")
    return data


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
    return text.strip().splitlines()[0] if text.strip() else None
