"""An eval's output folder DIR, written by one process at a time (a flock on DIR/.lock):

- `eval.json`, the manifest: what the samples were made from; a run that differs is refused;
- `samples.jsonl`, append-only, one finished sample per line, each written with one write and
  an fsync, so a kill -9 loses only samples in flight; a torn last line is dropped on open;
- `sessions/<task>/<model>/epoch-<n>.yaml`, each written whole (temporary file, fsync, rename)
  before its row, so every row's session exists;
- `samples.csv`, `summary.csv`, `compare.csv`: rebuilt from `samples.jsonl` at the end of a run.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import queue
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters.session_lock import SessionLocked, lock
from nano_code.adapters.session_writer import make_private_dirs
from nano_code.evals.summary import OUTCOMES, SAMPLE_COLUMNS, SampleRow
from nano_code.session.table_cells import csv_text

MANIFEST = "eval.json"
SAMPLES = "samples.jsonl"
LOCK = ".lock"
FORMAT = "nano-code-eval"
FORMAT_VERSION = 1
MAX_ROW_BYTES = 64 * 1024


class RunDirError(Exception):
    """DIR cannot be used for this run; one line says why and what to do."""


class RunDir:
    """DIR, locked for this process while it is open (`with RunDir(path) as run_dir:`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None
        self._samples_fd: int | None = None

    def __enter__(self) -> RunDir:
        try:
            make_private_dirs(self.path)
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise RunDirError(f"cannot use {self.path}: {error.strerror or error}") from None
        try:
            lock(fd, self.path / LOCK)
        except SessionLocked as locked:
            os.close(fd)
            holder = f"process {locked.pid}" if locked.pid is not None else "another process"
            raise RunDirError(f"{self.path} is being written by {holder} (another nano-code eval)") from None
        self._lock_fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in (self._samples_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._samples_fd = self._lock_fd = None

    # ------------------------------------------------------------------ the manifest

    def accept(self, manifest: Mapping[str, Any]) -> None:
        """Take `manifest` for this run: write it in a new DIR, or check it against the one DIR has
        (only `epochs` may grow) and record the larger epochs."""
        old = self.manifest()
        if old is None:
            if _entries_besides_lock(self.path):
                raise RunDirError(f"{self.path} is not empty and holds no {MANIFEST}: choose a new --output")
        else:
            refusal = manifest_refusal(old, manifest)
            if refusal is not None:
                raise RunDirError(f"{self.path} {refusal}")
        _write_whole(self.path / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())

    def manifest(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise RunDirError(f"cannot read {self.path / MANIFEST}: {error}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise RunDirError(f"{self.path / MANIFEST} is not a nano-code eval manifest")
        return data

    # ------------------------------------------------------------------ samples.jsonl

    def rows(self) -> list[SampleRow]:
        """The finished samples, in the order they finished; a torn last line (a kill -9 mid-write)
        is cut off the file. A row that cannot be read, or a sample twice, is refused."""
        path = self.path / SAMPLES
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise RunDirError(f"cannot read {path}: {error.strerror or error}") from None
        whole = data.rfind(b"\n") + 1
        if whole < len(data):
            with open(path, "r+b") as handle:
                handle.truncate(whole)
                os.fsync(handle.fileno())
        rows: list[SampleRow] = []
        seen: set[tuple[str, str, int]] = set()
        for number, line in enumerate(data[:whole].splitlines(), start=1):
            row = _parse_row(line, f"{path} line {number}")
            key = (row.task, row.model, row.epoch)
            if key in seen:
                raise RunDirError(f"{path} line {number} repeats the sample {key}; remove one of them")
            seen.add(key)
            rows.append(row)
        return rows

    def drop(self, keys: Iterable[tuple[str, str, int]]) -> None:
        """Remove the rows of `keys` from samples.jsonl (rewritten whole), to run those samples again."""
        unwanted = set(keys)
        kept = [row for row in self.rows() if (row.task, row.model, row.epoch) not in unwanted]
        _write_whole(self.path / SAMPLES, b"".join(row_line(row) for row in kept))

    def add(self, row: SampleRow, files: Sequence[tuple[str, bytes]]) -> None:
        """Record one finished sample: its session files (the session fsynced), then its row (one
        write, then fsync). OSError (a full disk) leaves samples.jsonl as it was."""
        for relative, content in files:
            target = self.path / relative
            make_private_dirs(target.parent)
            _write_whole(target, content, durable=relative == row.session)
        if self._samples_fd is None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._samples_fd = os.open(self.path / SAMPLES, flags, 0o600)
        fd = self._samples_fd
        line, size = row_line(row), os.fstat(fd).st_size
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"only {written} of {len(line)} bytes could be written")
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise

    # ------------------------------------------------------------------ the tables

    def write_tables(
        self,
        rows: Sequence[SampleRow],
        summary: Sequence[Mapping[str, Any]],
        compare: Sequence[Mapping[str, Any]] | None,
    ) -> None:
        """samples.csv, summary.csv and (`compare` given: two models or more) compare.csv."""
        self._csv("samples.csv", SAMPLE_COLUMNS, (attrs.asdict(row) for row in rows))
        self._csv("summary.csv", _columns(summary, SUMMARY_COLUMNS), summary)
        if compare is not None:
            self._csv("compare.csv", _columns(compare, COMPARE_COLUMNS), compare)

    def _csv(self, name: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
        temporary = self.path / f".{name}.tmp"
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(row.get(column)) for column in columns])
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path / name)


class BackgroundWriter:
    """Adds finished samples to a RunDir from a thread of its own, in the order given, so that new
    samples start while a session and its row are fsynced, and Ctrl-C (which reaches only the main
    thread) never cuts a write short. The first failure stops it; `close` returns it."""

    def __init__(self, run_dir: RunDir) -> None:
        self.run_dir = run_dir
        self.failure: str | None = None
        self._queue: queue.SimpleQueue[tuple[SampleRow, Sequence[tuple[str, bytes]]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._write, name="nano-code-eval-writer")
        self._thread.start()

    def put(self, row: SampleRow, files: Sequence[tuple[str, bytes]]) -> None:
        self._queue.put((row, files))

    def close(self) -> str | None:
        """Write what was put, then stop; why DIR could not be written (None: it could)."""
        self._queue.put(None)
        self._thread.join()
        return self.failure

    def _write(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.failure is None:
                try:
                    self.run_dir.add(*item)
                except Exception as error:  # a full disk, mostly; never a silently dead writer
                    reason = error.strerror if isinstance(error, OSError) and error.strerror else error
                    self.failure = f"cannot write {self.run_dir.path}: {reason}"


def _entries_besides_lock(path: Path) -> list[Path]:
    """What DIR holds besides the lock and temporary files a killed first run may have left."""
    return [entry for entry in path.iterdir() if entry.name != LOCK and not entry.name.endswith(".tmp")]


FIXED = ("suite_sha256", "tasks", "settings", "nano_code_version")
"""What must match for samples to be comparable (the suite's path may change, its content not)."""


def manifest_refusal(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """Why a run with manifest `new` may not add to a DIR made with `old` (None: it may)."""
    if old.get("format_version") != FORMAT_VERSION:
        return (
            f"was written by another nano-code eval format ({old.get('format_version')}); use a new --output"
        )
    if old.get("models") != new.get("models"):
        shown = ", ".join(map(str, old.get("models") or []))
        return f"holds the models {shown}; models may not change (give these, or a new --output)"
    changed = [name for name in FIXED if old.get(name) != new.get(name)]
    if "settings" in changed:
        old_settings, new_settings = old.get("settings") or {}, new.get("settings") or {}
        names = sorted(
            k for k in {*old_settings, *new_settings} if old_settings.get(k) != new_settings.get(k)
        )
        details = ", ".join(f"{k} {old_settings.get(k)!r} -> {new_settings.get(k)!r}" for k in names)
        return f"was made with other settings ({details}); use a new --output to change them"
    if changed:
        what = {
            "suite_sha256": "another suite (its file or a workspace folder changed)",
            "tasks": "other tasks",
            "nano_code_version": f"nano-code {old.get('nano_code_version')}",
        }
        return f"was made from {what[changed[0]]}; use a new --output"
    if int(new.get("epochs", 0)) < int(old.get("epochs", 0)):
        return f"holds {old.get('epochs')} epochs; --epochs may grow, not shrink (give --epochs {old.get('epochs')})"
    return None


def row_line(row: SampleRow) -> bytes:
    return (json.dumps(attrs.asdict(row), ensure_ascii=False) + "\n").encode()


def _parse_row(line: bytes, where: str) -> SampleRow:
    try:
        data = json.loads(line)
    except ValueError:
        raise RunDirError(f"{where} is not JSON; remove it to run that sample again") from None
    if not isinstance(data, dict) or list(data) != list(SAMPLE_COLUMNS) or len(line) > MAX_ROW_BYTES:
        raise RunDirError(f"{where} is not a sample row; remove it to run that sample again")
    wrong = [name for name, value in data.items() if not _typed(name, value)]
    if wrong or data["outcome"] not in OUTCOMES or data["epoch"] < 1:
        raise RunDirError(f"{where} is not a sample row (see {', '.join(wrong) or 'outcome, epoch'})")
    numbers = {name: float(data[name]) for name in ("cost", "duration_s") if data[name] is not None}
    return SampleRow(**{**data, **numbers})


_TEXT = ("task", "model", "outcome", "session", "error")


def _typed(name: str, value: Any) -> bool:
    """Whether `value` has the type of the row's column `name` (a JSON whole number may be a float)."""
    if name in _TEXT:
        return isinstance(value, str)
    if name in ("cost", "duration_s"):
        return (value is None and name == "cost") or type(value) in (int, float)
    return type(value) is int and value >= 0


SUMMARY_COLUMNS = ("task", "model", "n", "passed", "pass_rate", "wilson_low", "wilson_high")
COMPARE_COLUMNS = ("model_a", "model_b", "tasks", "difference", "ci_low", "ci_high", "p_value")
"""The header of a table with no rows (its rows bring their own columns)."""


def _columns(rows: Sequence[Mapping[str, Any]], empty: Sequence[str]) -> Sequence[str]:
    return list(rows[0]) if rows else empty


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return csv_text(value)
    return value


def _write_whole(target: Path, content: bytes, durable: bool = True) -> None:
    """`target` holds `content` whole or keeps what it had: a private temporary file, fsync (when
    `durable`), rename. A session is durable before its row is written; its workspace snapshot
    (for forks) is left to the OS, which is enough for a killed process."""
    temporary = target.with_name(f".{target.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(temporary, target)
