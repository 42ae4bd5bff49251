"""A task suite: `[[task]]` tables in TOML (or the same keys as JSON Lines), checked whole before
anything runs, so that a broken suite costs no sample and its error names the task.

    [[task]]
    id = "fix-add"                 # letters, digits, . _ - (it names folders under DIR)
    prompt = "Make calc.add return the sum."
    workspace = "fix-add"          # a folder beside the suite, copied fresh for every sample
    check = "python3 -m pytest -q" # run in the finished workspace, in the sandbox; exit 0 passes
    max_steps = 20                 # optional: model calls allowed (else --max-steps)
    timeout = 120                  # optional: seconds the check may run (default 600)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

MAX_SUITE_BYTES = 4 * 1024 * 1024
MAX_TASKS = 10_000
MAX_PROMPT_CHARS = 200_000
MAX_CHECK_CHARS = 20_000
MAX_STEPS = 10_000
MAX_TIMEOUT = 24 * 3600.0
DEFAULT_TIMEOUT = 600.0
"""Seconds a check may run when its task does not say."""
MAX_WORKSPACE_BYTES = 200 * 1024 * 1024
MAX_WORKSPACE_FILES = 20_000
"""Bounds on one task's workspace folder: every sample copies it, and the suite's hash reads it."""

TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
KEYS = ("id", "prompt", "workspace", "check", "max_steps", "timeout")
REQUIRED = ("id", "prompt", "check")


class SuiteError(Exception):
    """The suite cannot be used; the message names the file and, where one is at fault, the task."""


@attrs.frozen
class Task:
    """One task of a suite, checked; `workspace` is absolute (resolved) or None (an empty folder)."""

    id: str
    prompt: str
    check: str
    workspace: str | None = None
    max_steps: int | None = None
    timeout: float = DEFAULT_TIMEOUT


@attrs.frozen
class Suite:
    path: str
    """The suite file, absolute."""
    tasks: tuple[Task, ...]
    digest: str
    """sha256 of the suite file and of every workspace folder it names: what makes samples comparable."""

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(task.id for task in self.tasks)


def load_suite(path: str | Path) -> Suite:
    """The suite at `path` (`.toml`, or `.jsonl` / `.json` as JSON Lines), every task checked."""
    path = Path(path).absolute()
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SUITE_BYTES + 1)
    except OSError as error:
        raise SuiteError(f"cannot read the suite {path}: {error.strerror or error}") from None
    if len(data) > MAX_SUITE_BYTES:
        raise SuiteError(f"the suite {path} is larger than {MAX_SUITE_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SuiteError(f"the suite {path} is not UTF-8 text (byte {error.start})") from None
    entries = _jsonl_entries(path, text) if path.suffix in (".jsonl", ".json") else _toml_entries(path, text)
    if not entries:
        raise SuiteError(f"the suite {path} has no tasks")
    if len(entries) > MAX_TASKS:
        raise SuiteError(f"the suite {path} has {len(entries)} tasks; at most {MAX_TASKS}")
    folder = Path(os.path.realpath(path.parent))
    tasks: list[Task] = []
    seen: set[str] = set()
    for where, entry in entries:
        try:
            task = _task(entry, where, folder)
        except SuiteError as error:
            raise SuiteError(f"{path}: {error}") from None
        if task.id in seen:
            raise SuiteError(f"{path}: task {task.id!r} ({where}) appears twice: ids must be unique")
        seen.add(task.id)
        tasks.append(task)
    digest = hashlib.sha256(data)
    for task in tasks:
        if task.workspace is not None:
            digest.update(f"\0workspace {task.id}\0".encode())
            _hash_folder(Path(task.workspace), digest, f"{path}: task {task.id!r}")
    return Suite(str(path), tuple(tasks), digest.hexdigest())


def _toml_entries(path: Path, text: str) -> list[tuple[str, Any]]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{path} is not valid TOML: {error}") from None
    unknown = sorted(set(document) - {"task"})
    if unknown:
        raise SuiteError(
            f"{path}: unknown top-level key(s) {', '.join(unknown)}; a suite holds [[task]] tables"
        )
    tasks = document.get("task", [])
    if not isinstance(tasks, list):
        raise SuiteError(f"{path}: `task` must be an array of tables ([[task]])")
    return [(f"task {number}", entry) for number, entry in enumerate(tasks, start=1)]


def _jsonl_entries(path: Path, text: str) -> list[tuple[str, Any]]:
    entries: list[tuple[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append((f"line {number}", json.loads(line)))
        except ValueError as error:
            raise SuiteError(f"{path}: line {number} is not JSON: {error}") from None
    return entries


def _task(entry: Any, where: str, folder: Path) -> Task:
    """One entry checked: its keys, their types and bounds, and its workspace inside `folder`."""
    if not isinstance(entry, Mapping):
        raise SuiteError(f"{where}: a task must be a table (an object), not {_kind(entry)}")
    ident = entry.get("id")
    name = f"task {ident!r} ({where})" if isinstance(ident, str) else where

    def bad(text: str) -> SuiteError:
        return SuiteError(f"{name}: {text}")

    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)}; the keys are {', '.join(KEYS)}")
    for key in REQUIRED:
        if key not in entry:
            raise bad(f"missing `{key}`")
    for key in ("id", "prompt", "check", "workspace"):
        if key in entry and not isinstance(entry[key], str):
            raise bad(f"`{key}` must be a string, not {_kind(entry[key])}")
    if TASK_ID.fullmatch(entry["id"]) is None:
        raise bad("`id` must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
    _bounded(entry["prompt"], "prompt", MAX_PROMPT_CHARS, bad)
    _bounded(entry["check"], "check", MAX_CHECK_CHARS, bad)
    max_steps = entry.get("max_steps")
    if max_steps is not None and (type(max_steps) is not int or not 1 <= max_steps <= MAX_STEPS):
        raise bad(f"`max_steps` must be a whole number from 1 to {MAX_STEPS}, not {max_steps!r}")
    timeout = entry.get("timeout", DEFAULT_TIMEOUT)
    if type(timeout) not in (int, float) or not 0 < timeout <= MAX_TIMEOUT:
        raise bad(
            f"`timeout` must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, not {timeout!r}"
        )
    workspace = _workspace(entry["workspace"], folder, bad) if "workspace" in entry else None
    return Task(entry["id"], entry["prompt"], entry["check"], workspace, max_steps, float(timeout))


def _kind(value: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__
    )


def _bounded(text: str, key: str, limit: int, bad: Any) -> None:
    if not text.strip():
        raise bad(f"`{key}` is empty")
    if len(text) > limit:
        raise bad(f"`{key}` is longer than {limit:,} characters")
    if "\0" in text:
        raise bad(f"`{key}` holds a NUL character")


def _workspace(relative: str, folder: Path, bad: Any) -> str:
    """The workspace folder, resolved; it must lie inside the suite's folder, links followed."""
    if not relative.strip() or "\0" in relative:
        raise bad("`workspace` is empty")
    if os.path.isabs(relative):
        raise bad(f"`workspace` must be relative to the suite's folder, not {relative!r}")
    resolved = Path(os.path.realpath(folder / relative))
    if not resolved.is_relative_to(folder):
        raise bad(f"workspace {relative!r} leads outside the suite's folder {folder} (to {resolved})")
    if not resolved.exists():
        raise bad(f"workspace {relative!r} does not exist ({resolved})")
    if not resolved.is_dir():
        raise bad(f"workspace {relative!r} is not a folder")
    return str(resolved)


def _hash_folder(root: Path, digest: Any, name: str) -> None:
    """Feed `root`'s tree (names, kinds, executable bits, contents, link targets) to `digest`,
    refusing a folder past the bounds; links are hashed as links, never followed."""
    size = 0
    for files, (relative, entry) in enumerate(_walk(root), start=1):
        if files > MAX_WORKSPACE_FILES:
            raise SuiteError(f"{name}: its workspace has more than {MAX_WORKSPACE_FILES:,} entries")
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode):
            digest.update(f"\0link {relative}\0{os.readlink(entry)}".encode())
        elif stat.S_ISDIR(info.st_mode):
            digest.update(f"\0dir {relative}".encode())
        elif stat.S_ISREG(info.st_mode):
            size += info.st_size
            if size > MAX_WORKSPACE_BYTES:
                raise SuiteError(f"{name}: its workspace holds more than {MAX_WORKSPACE_BYTES >> 20} MiB")
            digest.update(f"\0file {relative} {info.st_mode & 0o111:o} {info.st_size}\0".encode())
            with open(entry, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        else:
            raise SuiteError(f"{name}: its workspace holds {relative}, which is not a file, folder or link")


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """Every entry below `root` in a fixed order, as (relative path, path); links not followed."""
    try:
        names = sorted(os.listdir(root))
    except OSError as error:
        raise SuiteError(f"cannot read the workspace {root}: {error.strerror or error}") from None
    for entry_name in names:
        entry = root / entry_name
        yield entry_name, entry
        if entry.is_dir() and not entry.is_symlink():
            for relative, inner in _walk(entry):
                yield f"{entry_name}/{relative}", inner
