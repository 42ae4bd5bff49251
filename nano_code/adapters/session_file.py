"""The session file: a vcrpy cassette that is also an append-only journal.

Layout (every record is ONE line, so the file can be appended to and stays
loadable after a crash at any point):

    # nano-code session -- a vcrpy cassette (YAML); see the README
    version: 1
    metadata: {...provenance, one line of JSON...}
    interactions:
    #nc {"event": {...}}                      <- journal record (a YAML comment)
    - {"request": {...}, "response": {...}}   <- an HTTP interaction
    #nc {"turn_end": {...}}

Why this shape: plain vcrpy (`vcr.use_cassette`, or `yaml.safe_load`) reads it
as an ordinary cassette -- JSON is YAML, and the journal lines are comments --
while nano-code reads it line by line with `json.loads`, which is ~30x faster
than pure-Python YAML and needs no libyaml. Records are appended with a single
write each and never rewritten, so recording cost stays flat as a session
grows, and a `kill -9` loses at most the record being written (a torn last
line is ignored on load).

Strings are written as JSON with non-ASCII kept as UTF-8, except the few
characters YAML does not accept raw (C1 controls, U+2028/2029, BOM,
surrogates), which are escaped.

A session file is data from wherever it came from: it is opened only when it
is a regular file (a named pipe or `/dev/zero` is refused at once), read up
to `MAX_SESSION_BYTES`, one record of at most `MAX_RECORD_BYTES` (a longer one
is refused before it is read whole), and a record nested too deeply to parse
is a corrupt record, not a crash.

One process writes a session at a time (`session_lock`); a write that fails
(disk full, quota, file size limit) stops the recording cleanly: the record
being written is cut off again, what was written before stays, resumable. Recordings hold what the agent read, so they are
private: files are created 0600 and directories nano-code creates 0700,
whatever the umask.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from nano_code.adapters import regular_files, session_lock
from nano_code.adapters.journal import JournalEntry, JournalError, TurnEndEntry, read_entry

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Format 1 stored every request body whole; format 2 stores a body that shares its
start and end with the previous interaction's as what lies between (see `BodyDelta`)."""
JOURNAL_PREFIX = "#nc "
INTERACTION_PREFIX = "- "
HEADER_COMMENT = (
    "# nano-code session: a vcrpy cassette (YAML). Lines starting with '#nc ' are the\n"
    "# session journal (user input, tool runs, approvals); load it all with\n"
    "# nano_code.testing.load_session(path).\n"
)

_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xD800 <= code <= 0xDFFF:
        return "\\ufffd"
    return f"\\u{code:04x}"


def dump_line(value: Any) -> str:
    """One record as a single line that is valid JSON and valid YAML flow."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=False)
    if text.isascii() and "\x7f" not in text:
        return text  # the common case, checked in C: nothing to escape
    return _YAML_UNSAFE.sub(_escape, text)


class SessionFileError(Exception):
    """The file is not a readable nano-code session."""


class RecordingStopped(Exception):
    """Writing the session failed (disk full, quota, file size limit, I/O error).

    Not an internal error: the run stops with this one line, and the file keeps
    every record written before, so the session can be resumed once there is room.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"recording stopped: {reason} while writing {path}; what was written before is kept "
            f"and can be resumed: nano-code --resume {shlex.quote(str(path))}"
        )
        self.path = path


@attrs.frozen
class Record:
    """One line of the session, in order: an HTTP interaction or a journal record."""

    line: int
    kind: str
    """'interaction' or 'journal'."""
    data: Mapping[str, Any]

    @functools.cached_property
    def entry(self) -> JournalEntry:
        """A journal record as its typed entry (JournalError when it is none)."""
        if self.kind != "journal":
            raise JournalError(f"line {self.line} is an HTTP interaction, not a journal record")
        return read_entry(self.data)


DELTA_KEY = "body_delta"
"""In an interaction's `nano_code` part: [shared prefix length, shared suffix length, middle]."""


def shared_ends(before: str, after: str) -> tuple[int, int]:
    """(prefix, suffix) lengths `after` shares with `before`, not overlapping.

    Binary search over slice comparisons: each comparison is one memcmp in C,
    so this costs O(n log n) byte compares and no Python loop over characters.
    """
    limit = min(len(before), len(after))
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if before[:middle] == after[:middle]:
            low = middle
        else:
            high = middle - 1
    prefix = low
    low, high = 0, limit - prefix
    while low < high:
        middle = (low + high + 1) // 2
        if before[len(before) - middle :] == after[len(after) - middle :]:
            low = middle
        else:
            high = middle - 1
    return prefix, low


def apply_delta(previous: str, delta: Any) -> str:
    prefix, suffix, middle = delta
    if not (isinstance(prefix, int) and isinstance(suffix, int) and isinstance(middle, str)):
        raise SessionFileError("a body delta is not [prefix, suffix, text]")
    if prefix < 0 or suffix < 0 or prefix + suffix > len(previous):
        raise SessionFileError("a body delta does not fit the body before it")
    return previous[:prefix] + middle + previous[len(previous) - suffix :]


def with_full_body(data: Mapping[str, Any], body: str | None) -> dict[str, Any]:
    """An interaction record as vcrpy knows it: its request body whole, no delta."""
    request = dict(data["request"])
    request["body"] = body
    extra = {k: v for k, v in (data.get("nano_code") or {}).items() if k != DELTA_KEY}
    return {**data, "request": request, "nano_code": extra}


@attrs.frozen
class SessionFile:
    path: Path
    metadata: Mapping[str, Any]
    records: tuple[Record, ...]
    torn_tail: bool = False
    """The last line was cut off (a crash while writing it) and was ignored."""
    size: int | None = None
    """Bytes read from the file (None when parsed from text): a resume checks nobody appended since."""

    @property
    def interactions(self) -> list[Mapping[str, Any]]:
        """Every interaction with its request body whole (all held at once: for small
        sessions, tests and export; replay walks `request_bodies()` instead)."""
        bodies = self.request_bodies()
        return [with_full_body(r.data, next(bodies)) for r in self.records if r.kind == "interaction"]

    def request_bodies(self) -> Iterator[str | None]:
        """Each interaction's request body, whole, in order; only the previous one is held."""
        previous: str | None = None
        for record in self.records:
            if record.kind != "interaction":
                continue
            delta = (record.data.get("nano_code") or {}).get(DELTA_KEY)
            if delta is not None:
                if previous is None:
                    raise SessionFileError(f"{self.path}:{record.line}: a body delta with no body before it")
                try:
                    previous = apply_delta(previous, delta)
                except (TypeError, ValueError) as error:
                    raise SessionFileError(f"{self.path}:{record.line}: {error}") from error
                except SessionFileError as error:
                    raise SessionFileError(f"{self.path}:{record.line}: {error}") from error
            else:
                body = record.data.get("request", {}).get("body")
                previous = body if isinstance(body, str) else None
            yield previous

    @property
    def interaction_count(self) -> int:
        return sum(record.kind == "interaction" for record in self.records)

    @property
    def journal(self) -> list[Mapping[str, Any]]:
        return [r.data for r in self.records if r.kind == "journal"]

    def readable_entries(self, key: str) -> Iterator[JournalEntry]:
        """The journal entries written under `key` ("event", "turn_end", ...), in order.

        For summaries (listing, totals): a record that does not read as an
        entry counts for nothing here; replay, which must be exact, reads
        `Record.entry` and fails on it instead.
        """
        for record in self.records:
            if record.kind == "journal" and key in record.data:
                try:
                    yield record.entry
                except JournalError:
                    continue

    def totals(self) -> tuple[int, float | None]:
        """(tokens, cost) summed over the recorded turn ends; cost None when never reported."""
        tokens, cost = 0, None
        for entry in self.readable_entries("turn_end"):
            if isinstance(entry, TurnEndEntry):
                tokens += entry.end.usage.total_tokens
                if entry.end.usage.cost is not None:
                    cost = (cost or 0.0) + entry.end.usage.cost
        return tokens, cost


def header_text(metadata: Mapping[str, Any]) -> str:
    return f"{HEADER_COMMENT}version: 1\nmetadata: {dump_line(metadata)}\ninteractions:\n"


MAX_SESSION_BYTES = 1 << 30
"""Larger files are refused: far beyond any real session, and reading one must stay bounded."""
MAX_RECORD_BYTES = 64 << 20
"""The most one line (one record, its newline included) may hold. Twice the largest response
nano-code reads by default (NANO_CODE_MAX_RESPONSE_BYTES, 32 MiB) with its request: a longer
record is refused before it is read whole, so reading one costs a bounded amount of memory
(parsing takes a few times a line's size), and the writer never writes one."""


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
        raise SessionFileError(f"{path}: larger than {MAX_SESSION_BYTES:,} bytes; not read")
    return fd


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


def over_cap(path: Path, number: int) -> SessionFileError:
    return SessionFileError(
        f"{path}:{number}: a record longer than {MAX_RECORD_BYTES:,} bytes (the most one record may "
        "hold); not read"
    )


def _decoded(handle: BinaryIO, path: Path, read: list[int]) -> Iterator[str]:
    """The file's lines as text, read up to MAX_SESSION_BYTES (the file may grow while read),
    each up to MAX_RECORD_BYTES; `read[0]` counts the bytes read.

    A last line cut off inside a character (a crash mid-write) is passed on
    with the cut marked, for the parser to treat as the torn tail it is.
    """
    number = 0
    while raw := handle.readline(MAX_RECORD_BYTES + 1):
        number += 1
        read[0] += len(raw)
        if len(raw) > MAX_RECORD_BYTES:
            raise over_cap(path, number)
        if read[0] > MAX_SESSION_BYTES:
            raise SessionFileError(f"{path}: larger than {MAX_SESSION_BYTES:,} bytes; not read")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if raw.endswith(b"\n"):
                raise SessionFileError(f"{path}:{number}: not UTF-8 text ({error})") from None
            text = raw.decode("utf-8", "replace")  # an incomplete last line: torn
        del raw  # the text alone is held while the line is parsed
        yield text


def parse_session(text: str, path: Path) -> SessionFile:
    return parse_session_lines(io.StringIO(text, newline="\n"), path)


def parse_session_lines(lines: Iterable[str], path: Path) -> SessionFile:
    """Parse a session from its lines (each with its newline, as a file yields them).

    Streaming line by line keeps only the parsed records in memory, not the
    whole text beside them -- sessions of thousands of steps are big, because
    every request carries the whole conversation.
    """
    metadata: Mapping[str, Any] | None = None
    records: list[Record] = []
    in_interactions = False
    torn = False
    pending_error: tuple[int, ValueError] | None = None
    for number, raw in enumerate(lines, start=1):
        if pending_error is not None:
            # A record that did not parse is only forgivable as the torn last line.
            bad_line, bad = pending_error
            raise SessionFileError(f"{path}:{bad_line}: corrupt record: {bad}") from bad
        complete = raw.endswith("\n")
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        payload: str | None = None
        kind = ""
        if line.startswith(JOURNAL_PREFIX):
            payload, kind = line[len(JOURNAL_PREFIX) :], "journal"
        elif line.startswith("#"):
            continue
        elif line.startswith("metadata: "):
            payload, kind = line[len("metadata: ") :], "metadata"
        elif line.startswith(INTERACTION_PREFIX) and in_interactions:
            payload, kind = line[len(INTERACTION_PREFIX) :], "interaction"
        elif line.strip() == "interactions:":
            in_interactions = True
            continue
        elif line.startswith("version:"):
            if line.split(":", 1)[1].strip() != "1":
                raise SessionFileError(f"{path}:{number}: unsupported cassette version")
            continue
        elif not complete:
            torn = True  # the process died while writing the start of this line
            break
        else:
            raise SessionFileError(f"{path}:{number}: not a nano-code session line: {line[:60]!r}")
        try:
            value = json.loads(payload)
        except RecursionError:
            raise SessionFileError(f"{path}:{number}: corrupt record: nested too deeply") from None
        except ValueError as error:
            if not complete:
                torn = True  # the process died while writing this line
                break
            pending_error = (number, error)
            continue
        if not isinstance(value, dict):
            raise SessionFileError(f"{path}:{number}: a record must be a JSON object")
        if kind == "metadata":
            metadata = value
        else:
            records.append(Record(line=number, kind=kind, data=value))
    if pending_error is not None:
        bad_line, bad = pending_error
        raise SessionFileError(f"{path}:{bad_line}: corrupt record: {bad}") from bad
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


def _drop_torn_tail(fd: int) -> bool:
    """Before appending to `fd`: cut off a torn last line (load ignores it anyway).

    Appending after it would leave a corrupt line in the middle of the file,
    which neither `load_session` nor a YAML reader accepts. Returns True when
    the file ends with a complete record that only lacks its newline. Only the
    last line is read, backwards from the end.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return False
    start, end = 0, size
    while end > 0:
        begin = max(0, end - (1 << 16))
        cut = os.pread(fd, end - begin, begin).rfind(b"\n")
        if cut >= 0:
            start = begin + cut + 1
            break
        end = begin
    if size - start <= MAX_RECORD_BYTES:
        last = os.pread(fd, size - start, start).decode("utf-8", "replace")
        if last.strip() in ("interactions:", "version: 1"):
            return True
        for prefix in (JOURNAL_PREFIX, INTERACTION_PREFIX):
            if last.startswith(prefix):
                try:
                    json.loads(last[len(prefix) :])
                except ValueError:
                    break
                return True
    os.ftruncate(fd, start)
    return False


class SessionWriter:
    """Appends records; each record is one write() of one line, made at once.

    The writer holds the file for its life (`session_lock`): a second writer is
    refused. A write that fails cuts its partial record off again and raises
    `RecordingStopped` once; after that the writer writes nothing more.
    """

    def __init__(
        self,
        path: Path,
        metadata: Mapping[str, Any] | None,
        check: Any = None,
        resume_from: SessionFile | None = None,
    ) -> None:
        """Open `path`; write the header when `metadata` is given (a new session).

        A new file is created 0600 (FileExistsError if it exists); an existing
        one (resume) must be a regular file and is made 0600 too. Bodies are
        stored as deltas in format 2 files: a resumed one continues from its last
        body (`resume_from`, which must still be the whole file: SessionFileError
        when someone appended since it was read); a format 1 file keeps storing
        them whole. SessionLocked when another process writes the file.
        """
        self.path = path
        self.stopped: RecordingStopped | None = None
        self._check = check
        self._previous_body: str | None = None
        self._deltas = metadata is not None and metadata.get("format_version", FORMAT_VERSION) >= 2
        if resume_from is not None:
            self._deltas = resume_from.metadata.get("format_version") == 2
            for body in resume_from.request_bodies():
                self._previous_body = body
        make_private_dirs(path.parent)
        if metadata is not None:
            header = header_text(metadata)
            self._verify(header)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            try:
                os.fchmod(self._fd, 0o600)
                session_lock.lock(self._fd, path)
                self._size = 0
                try:
                    self._write_all(header.encode("utf-8"))
                except OSError:
                    path.unlink(missing_ok=True)  # a header cut short is no session to keep
                    raise
            except BaseException:
                os.close(self._fd)
                raise
        else:
            self._fd = open_regular(path, os.O_RDWR | os.O_APPEND)
            try:
                session_lock.lock(self._fd, path)
                if resume_from is not None and resume_from.size not in (None, os.fstat(self._fd).st_size):
                    raise SessionFileError(
                        f"{path} changed since it was read (another process wrote to it); try again"
                    )
                os.fchmod(self._fd, 0o600)
                complete_tail = _drop_torn_tail(self._fd)
                self._size = os.fstat(self._fd).st_size
                if complete_tail:
                    self._write_all(b"\n")  # the last record lacked only its newline
            except BaseException:
                os.close(self._fd)
                raise

    def _verify(self, text: str) -> None:
        if self._check is not None:
            self._check(text)

    def interaction(self, value: Mapping[str, Any]) -> None:
        body = value["request"].get("body")
        previous = self._previous_body
        if self._deltas and isinstance(body, str) and previous is not None:
            prefix, suffix = shared_ends(previous, body)
            if prefix + suffix > 64:  # worth it: the body shares more than a few bytes
                delta = [prefix, suffix, body[prefix : len(body) - suffix]]
                value = {
                    **value,
                    "request": {**value["request"], "body": None},
                    "nano_code": {**(value.get("nano_code") or {}), DELTA_KEY: delta},
                }
        self._append(INTERACTION_PREFIX + dump_line(value))
        # Only a written record moves the chain on: the next delta is against what is on disk.
        self._previous_body = body if isinstance(body, str) else None

    def journal(self, value: Mapping[str, Any]) -> None:
        self._append(JOURNAL_PREFIX + dump_line(value))

    def _append(self, line: str) -> None:
        if self.stopped is not None:
            return
        self._verify(line)
        data = (line + "\n").encode("utf-8")
        if len(data) > MAX_RECORD_BYTES:
            self._stop(
                f"a record of {len(data):,} bytes is longer than a session file may hold in one "
                f"({MAX_RECORD_BYTES:,})"
            )
        if self._size + len(data) > MAX_SESSION_BYTES:
            self._stop(f"the file would grow past the {MAX_SESSION_BYTES:,} bytes a session file may hold")
        try:
            self._write_all(data)
        except OSError as error:
            self._stop(error.strerror or str(error))

    def _write_all(self, data: bytes) -> None:
        """Write `data` whole, or cut off what of it was written and raise the OSError."""
        start = self._size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):  # else the part written is a torn tail, ignored on load
                os.ftruncate(self._fd, start)  # frees what it cut, so it works on a full disk
            raise
        self._size = start + len(data)

    def _stop(self, reason: str) -> None:
        self.stopped = RecordingStopped(self.path, reason)
        raise self.stopped

    def sync(self) -> None:
        if self.stopped is not None:
            return
        try:
            os.fsync(self._fd)
        except OSError as error:
            self._stop(error.strerror or str(error))

    def close(self) -> None:
        """Close the file, which lets the next writer have it."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def export_full(session: SessionFile, target: Path) -> None:
    """Write `session` to `target` (a new file, 0600) with every request body whole.

    The result is an ordinary vcrpy cassette whose bodies need no nano-code to
    read; record for record and line for line it matches the original. Written
    a record at a time (one whole body held, not all of them); a failed export
    leaves no file.
    """
    bodies = session.request_bodies()
    make_private_dirs(target.parent)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with open(fd, "w", encoding="utf-8", closefd=False) as stream:
            stream.write(header_text(session.metadata))
            for record in session.records:
                if record.kind == "interaction":
                    full = with_full_body(record.data, next(bodies))
                    stream.write(INTERACTION_PREFIX + dump_line(full) + "\n")
                else:
                    stream.write(JOURNAL_PREFIX + dump_line(record.data) + "\n")
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def make_private_dirs(directory: Path) -> None:
    """Create `directory` and missing parents as 0700, whatever the umask.

    Directories that already exist are left alone (a `--record` path may be
    anywhere); the sessions directory is tightened by its owner's code.
    """
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for created in reversed(missing):
        try:
            os.mkdir(created, 0o700)
        except FileExistsError:
            continue
        os.chmod(created, 0o700)


def as_cassette_dict(session: SessionFile) -> dict[str, Any]:
    """What vcrpy's yaml serializer would have produced for this file, bodies whole."""
    return {"version": 1, "metadata": dict(session.metadata), "interactions": session.interactions}


class VcrSerializer:
    """A vcrpy serializer that reads session files line by line (no YAML parser)."""

    @staticmethod
    def deserialize(cassette_string: str) -> dict[str, Any]:
        return as_cassette_dict(parse_session(cassette_string, Path("<cassette>")))

    @staticmethod
    def serialize(cassette_dict: Mapping[str, Any]) -> str:
        raise SessionFileError("session files are written by nano-code's recorder, not by vcrpy")
