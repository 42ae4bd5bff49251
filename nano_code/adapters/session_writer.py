"""Writing session files: one record per write, export, private (0600/0700) files and folders.

A write that fails cuts its partial record off and stops the recording; what was
written before stays, resumable. One process writes a file at a time (`session_lock`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import mmap
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nano_code.adapters import session_file, session_lock
from nano_code.adapters.recording_stopped import RecordingStopped
from nano_code.adapters.session_file import (
    DELTA_KEY,
    FORMAT_VERSION,
    INTERACTION_PREFIX,
    JOURNAL_PREFIX,
    SessionFile,
    SessionFileError,
    dump_line,
    header_text,
    open_regular,
    shared_ends,
    with_full_body,
)


def _drop_torn_tail(fd: int) -> bool:
    """Before appending to `fd`: cut off a torn last line, which appending would leave
    corrupt mid-file. True when the last record is complete but lacks its newline."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return False
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
        start = mapped.rfind(b"\n") + 1  # the last line's
    if size - start <= session_file.MAX_RECORD_BYTES:
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
    """Appends records, one write() a line, holding the file's lock; after a failed write
    (`RecordingStopped`, raised once) nothing more is written."""

    def __init__(
        self,
        path: Path,
        metadata: Mapping[str, Any] | None,
        check: Callable[[str], None] | None = None,
        resume_from: SessionFile | None = None,
    ) -> None:
        """Create `path` (0600, FileExistsError if it exists) with a header when `metadata` is
        given; else append to it (a resume), continuing the body deltas of `resume_from`, which
        must still be the whole file. `check` sees every line before it is written.
        SessionLocked when another process writes the file."""
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
        else:
            self._fd = open_regular(path, os.O_RDWR | os.O_APPEND)
        try:
            session_lock.lock(self._fd, path)
            if resume_from is not None and resume_from.size not in (None, os.fstat(self._fd).st_size):
                raise SessionFileError(
                    f"{path} changed since it was read (another process wrote to it); try again"
                )
            os.fchmod(self._fd, 0o600)
            complete_tail = metadata is None and _drop_torn_tail(self._fd)
            self._size = os.fstat(self._fd).st_size
            if metadata is not None:
                try:
                    self._write_all(header.encode("utf-8"))
                except OSError:
                    path.unlink(missing_ok=True)  # a header cut short is no session to keep
                    raise
            elif complete_tail:
                self._write_all(b"\n")
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
        most, total = session_file.MAX_RECORD_BYTES, session_file.MAX_SESSION_BYTES
        if len(data) > most:
            self._stop(
                f"a record of {len(data):,} bytes is longer than a session file may hold in one ({most:,})"
            )
        if self._size + len(data) > total:
            self._stop(f"the file would grow past the {total:,} bytes a session file may hold")
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
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def export_full(session: SessionFile, target: Path) -> None:
    """Write `session` to the new file `target` (0600) with every request body whole:
    an ordinary vcrpy cassette, line for line the original. A failed export leaves no file."""
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
    """Create `directory` and missing parents as 0700, whatever the umask; folders that
    exist are left alone (a `--record` path may be anywhere)."""
    missing = itertools.takewhile(lambda folder: not folder.exists(), (directory, *directory.parents))
    for created in reversed(list(missing)):
        try:
            os.mkdir(created, 0o700)
        except FileExistsError:
            continue
        os.chmod(created, 0o700)
