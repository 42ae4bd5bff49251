"""The session file's format and its reader: a vcrpy cassette that is also a journal.

    # nano-code session: a vcrpy cassette (YAML) ...
    version: 1
    metadata: {...provenance, one line of JSON...}
    interactions:
    #nc {"event": {...}}                      <- journal record (a YAML comment)
    - {"request": {...}, "response": {...}}   <- an HTTP interaction

Every record is one line of JSON: vcrpy reads the file as a cassette, nano-code
line by line with `json.loads`, and a torn last line (a crash mid-write) is ignored.
A file is data: opened only when regular, every read bounded.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from nano_code.adapters import regular_files
from nano_code.adapters.journal import JournalEntry, JournalError, entry_key, read_entry, usage_totals

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Format 1 stored every request body whole; format 2 stores a body that shares its
start and end with the previous interaction's as what lies between (`DELTA_KEY`)."""
JOURNAL_PREFIX = "#nc "
INTERACTION_PREFIX = "- "
METADATA_PREFIX = "metadata: "
HEADER_COMMENT = (
    "# nano-code session: a vcrpy cassette (YAML). Lines starting with '#nc ' are the\n"
    "# session journal (user input, tool runs, approvals); load it all with\n"
    "# nano_code.testing.load_session(path).\n"
)
DELTA_KEY = "body_delta"
"""In an interaction's `nano_code` part: [shared prefix length, shared suffix length, middle]."""
MAX_SESSION_BYTES = 1 << 30
MAX_RECORD_BYTES = 64 << 20
"""The most one line may hold, newline included: twice the default reply cap, with its request."""

_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return "\\ufffd" if 0xD800 <= code <= 0xDFFF else f"\\u{code:04x}"


def dump_line(value: Any) -> str:
    """One record as a single line that is valid JSON and valid YAML flow (UTF-8 kept,
    except the few characters YAML refuses raw, which are escaped)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=False)
    if text.isascii() and "\x7f" not in text:
        return text  # the common case, checked in C: nothing to escape
    return _YAML_UNSAFE.sub(_escape, text)


def header_text(metadata: Mapping[str, Any]) -> str:
    return f"{HEADER_COMMENT}version: 1\n{METADATA_PREFIX}{dump_line(metadata)}\ninteractions:\n"


class SessionFileError(Exception):
    """The file is not a readable nano-code session."""


def _longest(limit: int, shared: Callable[[int], bool]) -> int:
    """The largest n <= limit with shared(n), by binary search (shared holds up to some n)."""
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if shared(middle) else (low, middle - 1)
    return low


def shared_ends(before: str, after: str) -> tuple[int, int]:
    """(prefix, suffix) lengths `after` shares with `before`, not overlapping (slice compares: memcmp)."""
    prefix = _longest(min(len(before), len(after)), lambda n: before[:n] == after[:n])
    limit = min(len(before), len(after)) - prefix
    return prefix, _longest(limit, lambda n: before[len(before) - n :] == after[len(after) - n :])


def apply_delta(previous: str, delta: Any) -> str:
    prefix, suffix, middle = delta
    if not (isinstance(prefix, int) and isinstance(suffix, int) and isinstance(middle, str)):
        raise SessionFileError("a body delta is not [prefix, suffix, text]")
    if prefix < 0 or suffix < 0 or prefix + suffix > len(previous):
        raise SessionFileError("a body delta does not fit the body before it")
    return previous[:prefix] + middle + previous[len(previous) - suffix :]


def with_full_body(data: Mapping[str, Any], body: str | None) -> dict[str, Any]:
    """An interaction record as vcrpy knows it: its request body whole, no delta."""
    extra = {k: v for k, v in (data.get("nano_code") or {}).items() if k != DELTA_KEY}
    return {**data, "request": {**data["request"], "body": body}, "nano_code": extra}


@attrs.frozen
class Record:
    """One line of the session, in order: an HTTP interaction or a journal record."""

    line: int
    kind: str  # 'interaction' or 'journal'
    data: Mapping[str, Any]

    @functools.cached_property
    def entry(self) -> JournalEntry:
        """A journal record as its typed entry (JournalError when it is none)."""
        if self.kind != "journal":
            raise JournalError(f"line {self.line} is an HTTP interaction, not a journal record")
        return read_entry(self.data)


@attrs.frozen
class SessionFile:
    path: Path
    metadata: Mapping[str, Any]
    records: tuple[Record, ...]
    torn_tail: bool = False  # the last line was cut off (a crash while writing it) and was ignored
    size: int | None = None  # bytes read (None when parsed from text): a resume checks nobody appended

    @property
    def interactions(self) -> list[Mapping[str, Any]]:
        """Every interaction with its request body whole, all held at once."""
        bodies = self.request_bodies()
        return [with_full_body(r.data, next(bodies)) for r in self.records if r.kind == "interaction"]

    def request_bodies(self) -> Iterator[str | None]:
        """Each interaction's request body, whole, in order; only the previous one is held."""
        previous: str | None = None
        for record in self.records:
            if record.kind != "interaction":
                continue
            delta = (record.data.get("nano_code") or {}).get(DELTA_KEY)
            if delta is None:
                body = record.data.get("request", {}).get("body")
                previous = body if isinstance(body, str) else None
            elif previous is None:
                raise SessionFileError(f"{self.path}:{record.line}: a body delta with no body before it")
            else:
                try:
                    previous = apply_delta(previous, delta)
                except (TypeError, ValueError, SessionFileError) as error:
                    raise SessionFileError(f"{self.path}:{record.line}: {error}") from error
            yield previous

    @property
    def interaction_count(self) -> int:
        return sum(record.kind == "interaction" for record in self.records)

    @property
    def journal(self) -> list[Mapping[str, Any]]:
        return [r.data for r in self.records if r.kind == "journal"]

    def readable_entries(self, key: str) -> Iterator[JournalEntry]:
        """The entries written under `key` ("event", ...) that read as entries (for summaries;
        replay reads `Record.entry` and fails instead)."""
        for record in self.records:
            if record.kind == "journal" and entry_key(record.data) == key:
                try:
                    yield record.entry
                except JournalError:
                    continue

    def totals(self) -> tuple[int, float | None]:
        """(tokens, cost) summed over the recorded turn ends; cost None when never reported."""
        return usage_totals(self.readable_entries("turn_end"))


TORN = "torn"


class LineReader:
    """The one grammar of a session file's lines, for `load_session` and the listing alike."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.in_interactions = False

    def split(self, number: int, line: str, complete: bool) -> tuple[str, str] | None:
        """(kind, JSON text) of a record line, kind 'metadata', 'journal' or 'interaction';
        (TORN, '') for an unknown last line cut off while written; None for a line of no record."""
        if line.startswith(JOURNAL_PREFIX):
            return "journal", line[len(JOURNAL_PREFIX) :]
        if not line.strip() or line.startswith("#"):
            return None
        if line.startswith(METADATA_PREFIX):
            return "metadata", line[len(METADATA_PREFIX) :]
        if line.startswith(INTERACTION_PREFIX) and self.in_interactions:
            return "interaction", line[len(INTERACTION_PREFIX) :]
        if line.strip() == "interactions:":
            self.in_interactions = True
            return None
        if line.startswith("version:"):
            if line.split(":", 1)[1].strip() != "1":
                raise SessionFileError(f"{self.path}:{number}: unsupported cassette version")
            return None
        if not complete:
            return TORN, ""  # the process died while writing the start of this line
        raise SessionFileError(f"{self.path}:{number}: not a nano-code session line: {line[:60]!r}")

    def record(self, number: int, payload: str, complete: bool) -> dict[str, Any] | None:
        try:
            data = json.loads(payload)
        except RecursionError:
            raise SessionFileError(f"{self.path}:{number}: corrupt record: nested too deeply") from None
        except ValueError as error:
            if not complete:
                return None
            raise SessionFileError(f"{self.path}:{number}: corrupt record: {error}") from error
        if not isinstance(data, dict):
            raise SessionFileError(f"{self.path}:{number}: a record must be a JSON object")
        return data


def open_regular(path: Path, flags: int = os.O_RDONLY) -> int:
    """A descriptor for the session file `path`, a regular file of at most MAX_SESSION_BYTES."""
    try:
        fd = regular_files.open_regular(path, flags)
    except regular_files.NotARegularFile:
        raise SessionFileError(
            f"{path}: not a regular file (a pipe, device or directory); not read"
        ) from None
    except OSError as error:
        raise SessionFileError(f"{path}: cannot read: {error.strerror or error}") from error
    if os.fstat(fd).st_size > MAX_SESSION_BYTES:
        os.close(fd)
        raise too_large(path)
    return fd


def too_large(path: Path) -> SessionFileError:
    return SessionFileError(f"{path}: larger than {MAX_SESSION_BYTES:,} bytes; not read")


def over_cap(path: Path, number: int) -> SessionFileError:
    return SessionFileError(
        f"{path}:{number}: a record longer than {MAX_RECORD_BYTES:,} bytes (the most one record may "
        "hold); not read"
    )


def load_session(path: str | Path) -> SessionFile:
    path = Path(path)
    fd = open_regular(path)
    try:
        with open(fd, "rb") as handle:
            read = [0]
            session = parse_session_lines(_decoded(handle, path, read), path)
            return attrs.evolve(session, size=read[0])
    except OSError as error:
        raise SessionFileError(f"{path}: cannot read: {error}") from error


def _decoded(handle: BinaryIO, path: Path, read: list[int]) -> Iterator[str]:
    """The file's lines as text, within the bounds; `read[0]` counts the bytes read.
    A last line cut inside a character (a crash mid-write) is passed on as torn."""
    number = 0
    while raw := handle.readline(MAX_RECORD_BYTES + 1):
        number += 1
        read[0] += len(raw)
        if len(raw) > MAX_RECORD_BYTES:
            raise over_cap(path, number)
        if read[0] > MAX_SESSION_BYTES:
            raise too_large(path)
        try:
            text = raw.decode("utf-8", "strict" if raw.endswith(b"\n") else "replace")
        except UnicodeDecodeError as error:
            raise SessionFileError(f"{path}:{number}: not UTF-8 text ({error})") from None
        del raw  # the text alone is held while the line is parsed
        yield text


def parse_session(text: str, path: Path) -> SessionFile:
    return parse_session_lines(io.StringIO(text, newline="\n"), path)


def parse_session_lines(lines: Iterable[str], path: Path) -> SessionFile:
    """Parse a session from its lines (each with its newline), holding only the records."""
    metadata: Mapping[str, Any] | None = None
    records: list[Record] = []
    reader = LineReader(path)
    torn = False
    for number, raw in enumerate(lines, start=1):
        complete = raw.endswith("\n")
        split = reader.split(number, raw.rstrip("\n"), complete)
        if split is None:
            continue
        kind, payload = split
        value = None if kind == TORN else reader.record(number, payload, complete)
        if value is None:
            torn = True
            break
        if kind == "metadata":
            metadata = value
        else:
            records.append(Record(line=number, kind=kind, data=value))
    return SessionFile(
        path=path, metadata=checked_metadata(metadata, path), records=tuple(records), torn_tail=torn
    )


def checked_metadata(metadata: Mapping[str, Any] | None, path: Path) -> Mapping[str, Any]:
    """The metadata of a session this nano-code reads (SessionFileError otherwise)."""
    if metadata is None:
        raise SessionFileError(f"{path}: no metadata line: not a nano-code session")
    if metadata.get("format") != "nano-code-session":
        raise SessionFileError(f"{path}: metadata does not say format: nano-code-session")
    if metadata.get("format_version") not in READABLE_VERSIONS:
        raise SessionFileError(
            f"{path}: session format {metadata.get('format_version')!r} is not supported "
            f"(this nano-code reads {', '.join(map(str, READABLE_VERSIONS))})"
        )
    return metadata


class VcrSerializer:
    """A vcrpy serializer that reads session files line by line (no YAML parser)."""

    @staticmethod
    def deserialize(cassette_string: str) -> dict[str, Any]:
        session = parse_session(cassette_string, Path("<cassette>"))
        return {"version": 1, "metadata": dict(session.metadata), "interactions": session.interactions}

    @staticmethod
    def serialize(cassette_dict: Mapping[str, Any]) -> str:
        raise SessionFileError("session files are written by nano-code's recorder, not by vcrpy")
