"""Taking the workspace as a session found it, so that forks and live-tool replays start there.

`take` writes a gzip'd tar beside the session file; `snapshot_restore` rebuilds it. In a git
repository it holds the files git knows of as they are on disk, plus HEAD's version of each
changed one, so a fork's `git diff` says what it said; elsewhere the files under the workspace.
Files go in path order until `max_bytes` are in, at most `MAX_ENTRIES` paths are looked at, and
what is left out is recorded. Secrets (`.env`) are never taken.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters import git
from nano_code.adapters.workspace_scan import NOT_ENTERED
from nano_code.adapters.workspace_scan import is_secret as is_secret_name

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
"""What a snapshot holds at most (NANO_CODE_SNAPSHOT_MAX_BYTES); 0 turns snapshots off."""
LEFT_OUT_NAMES = 20
MAX_ENTRIES = 100_000
"""How many paths `take` looks at, at most (directories and files walked, or git's list)."""
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
"""The largest archive (and `max_bytes`) a session may record."""
SECRETS = " (secrets: not snapshotted)"
GIT_TIMEOUT = 30.0


class SnapshotError(Exception):
    """A snapshot that cannot be taken or restored; the message says why, in one line."""


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def valid_name(name: object) -> bool:
    """A workspace-relative path a snapshot may hold: no absolute, `.`, `..`, empty or `.git` part, no NUL."""
    if not isinstance(name, str) or not name or "\0" in name or name.startswith("/"):
        return False
    for part in name.split("/"):
        if part in ("", ".", "..") or part.casefold().rstrip(". ") == ".git":
            return False
    return True


def is_secret(relative: str) -> bool:
    """Whether the file at the workspace path `relative` holds secrets."""
    return is_secret_name(relative.rsplit("/", 1)[-1])


def _count(_instance: object, field: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{field.name} must be a count, not {value!r}")


_str = attrs.validators.instance_of(str)
_names = attrs.validators.deep_iterable(_str, attrs.validators.instance_of(tuple))
_paths = attrs.validators.instance_of(tuple)  # each checked by valid_name, here and on restore


@attrs.frozen
class SnapshotInfo:
    """What a session records about its workspace snapshot."""

    file: str = attrs.field(validator=_str)
    """The archive's name, in the session file's directory."""
    sha256: str = attrs.field(validator=_str)
    bytes: int = attrs.field(validator=_count)
    kind: str = attrs.field(validator=attrs.validators.in_(("git", "files")))
    head: str | None = attrs.field(default=None, validator=attrs.validators.optional(_str))
    """The commit HEAD named (git)."""
    files: int = attrs.field(default=0, validator=_count)
    deleted: tuple[str, ...] = attrs.field(default=(), validator=_paths)
    """Tracked files missing from the working tree (git)."""
    untracked: tuple[str, ...] = attrs.field(default=(), validator=_paths)
    left_out: int = attrs.field(default=0, validator=_count)
    left_out_bytes: int = attrs.field(default=0, validator=_count)
    left_out_names: tuple[str, ...] = attrs.field(default=(), validator=_names)
    max_bytes: int = attrs.field(default=DEFAULT_MAX_BYTES, validator=_count)
    walk_stopped: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """The walk ended early: `left_out` is a lower bound."""

    def to_json(self) -> dict[str, Any]:
        return {
            spec.name: list(value) if isinstance(value, tuple) else value
            for spec in attrs.fields(type(self))
            for value in [getattr(self, spec.name)]
        }

    @classmethod
    def from_json(cls, data: object) -> SnapshotInfo:
        if not isinstance(data, Mapping):
            raise SnapshotError("the session's workspace snapshot entry is not an object")
        known = {spec.name for spec in attrs.fields(cls)}
        values: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known
        }
        try:
            info = cls(**values)
        except (TypeError, ValueError) as error:
            raise SnapshotError(
                f"the session's workspace snapshot entry is not usable: {one_line(error)}"
            ) from None
        if "/" in info.file or info.file in ("", ".", ".."):
            raise SnapshotError("the workspace snapshot must be a file name beside the session")
        if info.bytes > MAX_ARCHIVE_BYTES or info.max_bytes > MAX_ARCHIVE_BYTES:
            raise SnapshotError(
                f"the session's workspace snapshot is recorded as larger than {MAX_ARCHIVE_BYTES} bytes"
            )
        if info.files > MAX_ENTRIES or len(info.deleted) + len(info.untracked) > 2 * MAX_ENTRIES:
            raise SnapshotError("the session's workspace snapshot records more paths than a snapshot holds")
        check_paths(info)
        return info


def check_paths(info: SnapshotInfo) -> None:
    for name in (*info.deleted, *info.untracked):
        if not valid_name(name):
            raise SnapshotError(f"the workspace snapshot names a path it may not hold: {name!r}")


def archive_path(session_path: Path) -> Path:
    return session_path.with_name(session_path.stem + ".workspace.tar.gz")


# ---------------------------------------------------------------- taking


def _git(args: Iterable[str], cwd: Path, data: bytes | None = None) -> bytes | None:
    try:
        done = git.run(cwd, *args, data=data, timeout=GIT_TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _split(output: bytes) -> list[str]:
    return [os.fsdecode(p) for p in output.split(b"\0") if p]


class _Walk:
    """The files (and links) under a workspace in path order, at most `MAX_ENTRIES` paths looked at."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.stopped = False  # paths were left unvisited
        self.visited = 0
        self._halt = False

    def stop(self) -> None:
        self._halt = True

    def __iter__(self) -> Iterator[str]:
        for root, dirs, files in os.walk(self.workspace):
            relative_root = os.path.relpath(root, self.workspace)
            prefix = "" if relative_root == "." else relative_root + "/"
            kept = sorted(d for d in dirs if d not in NOT_ENTERED and d.casefold() != ".git")
            # A link to a directory is an entry of its own (os.walk does not go into it).
            linked = {d for d in kept if os.path.islink(os.path.join(root, d))}
            dirs[:] = [d for d in kept if d not in linked]
            for name in sorted([*files, *linked]):
                if self._halt or self.visited >= MAX_ENTRIES:
                    self.stopped = True
                    return
                self.visited += 1
                yield prefix + name
            self.visited += len(dirs)
            if dirs and (self._halt or self.visited >= MAX_ENTRIES):
                self.stopped = True
                return


def _beyond_link(workspace: Path, relative: str, seen: dict[str, bool]) -> bool:
    """Whether a parent of `relative` is a symlink (git does not look beyond one)."""
    parts = relative.split("/")[:-1]
    for end in range(1, len(parts) + 1):
        parent = "/".join(parts[:end])
        if parent not in seen:
            try:
                seen[parent] = stat.S_ISLNK(os.lstat(workspace / parent).st_mode)
            except OSError:
                seen[parent] = False
        if seen[parent]:
            return True
    return False


def _head_versions(
    workspace: Path, paths: list[str], budget: int
) -> tuple[dict[str, bytes], list[tuple[str, int]]]:
    """HEAD's content of each path that fits in `budget` bytes (sizes asked first), and those left out
    (also a path with a newline: git's batch protocol is line-based)."""
    asked = [p for p in paths if "\n" not in p and "\r" not in p]
    left_out = [(f"{p} (HEAD's version: a newline in its name)", 0) for p in paths if "\n" in p or "\r" in p]
    if not asked:
        return {}, left_out
    request = b"".join(b"HEAD:./" + os.fsencode(p) + b"\n" for p in asked)
    output = _git(["cat-file", "--batch-check"], workspace, request)
    if output is None:
        raise SnapshotError("git could not read HEAD's version of the changed files")
    lines = output.split(b"\n")
    chosen: list[tuple[str, bytes, int]] = []
    for path, line in zip(asked, lines, strict=False):
        header = line.split()
        if len(header) != 3 or header[1] != b"blob" or not header[2].isdigit():
            continue
        size = int(header[2])
        if size > budget:
            left_out.append((f"{path} (HEAD's version)", size))
            continue
        budget -= size
        chosen.append((path, header[0], size))
    if not chosen:
        return {}, left_out
    output = _git(["cat-file", "--batch"], workspace, b"".join(oid + b"\n" for _, oid, _ in chosen))
    if output is None:
        raise SnapshotError("git could not read HEAD's version of the changed files")
    found: dict[str, bytes] = {}
    position = 0
    for path, _, size in chosen:
        end = output.find(b"\n", position)
        if end < 0:
            raise SnapshotError("git's answer for HEAD's version of the changed files is cut short")
        header = output[position:end].split()
        position = end + 1
        if len(header) == 3 and header[1] == b"blob" and int(header[2]) == size:
            found[path] = output[position : position + size]
            position += size + 1
    return found, left_out


def take(workspace: Path, session_path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> SnapshotInfo:
    """Snapshot `workspace` beside the session file at `session_path` (a 0600 archive)."""
    head_raw = _git(["rev-parse", "--verify", "-q", "HEAD"], workspace)
    listed = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], workspace)
    kind = "git" if listed is not None else "files"
    head = head_raw.decode().strip() if head_raw else None
    untracked: set[str] = set()
    changed: list[str] = []
    walk: _Walk | None = None
    candidates: Iterable[str]
    if listed is not None:
        names = sorted(set(_split(listed)))
        walk_stopped = len(names) > MAX_ENTRIES
        candidates = names[:MAX_ENTRIES]
        untracked = set(_split(_git(["ls-files", "-z", "--others", "--exclude-standard"], workspace) or b""))
        if head is not None:
            changed = sorted(
                _split(_git(["diff", "--relative", "--name-only", "-z", "HEAD"], workspace) or b"")
            )
    else:
        walk_stopped = False
        walk = candidates = _Walk(workspace)

    import tarfile  # here, after git: the snapshot starts as the first request is being sent

    target = archive_path(session_path)
    budget = max_bytes
    count = 0
    deleted: list[str] = []
    kept_untracked: list[str] = []
    left_out: list[tuple[str, int]] = []
    links: dict[str, bool] = {}
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as archive:
        for relative in candidates:
            if not valid_name(relative):
                continue  # not a path restore would accept (a `.GIT` directory, say)
            path = workspace / relative
            try:
                if _beyond_link(workspace, relative, links):
                    raise FileNotFoundError(relative)  # git sees it as gone
                status = path.lstat()
            except OSError:
                if relative not in untracked:
                    deleted.append(relative)
                continue
            if not (stat.S_ISREG(status.st_mode) or stat.S_ISLNK(status.st_mode)):
                continue
            size = 0 if stat.S_ISLNK(status.st_mode) else status.st_size
            if is_secret(relative):
                left_out.append((relative + SECRETS, size))
                continue
            if size > budget:
                left_out.append((relative, size))
                continue
            try:
                archive.add(path, arcname=f"files/{relative}", recursive=False)
            except OSError:
                left_out.append((relative, size))
                continue
            budget -= size
            count += 1
            if relative in untracked:
                kept_untracked.append(relative)
            if walk is not None and budget <= 0:
                walk.stop()  # nothing more fits: do not walk a home directory to the end
        left_names = {name for name, _ in left_out}
        kept_changed = [p for p in changed if p not in left_names and valid_name(p) and not is_secret(p)]
        versions, head_left_out = _head_versions(workspace, kept_changed, budget)
        left_out.extend(head_left_out)
        for relative, content in versions.items():
            member = tarfile.TarInfo(f"git-head/{relative}")
            member.size = len(content)
            member.mode = 0o644
            archive.addfile(member, io.BytesIO(content))
    if walk is not None:
        walk_stopped = walk.stopped
    names_left_out = [name for name, _ in left_out[:LEFT_OUT_NAMES]]
    if walk_stopped:
        names_left_out.append(f"... (walk stopped after {MAX_ENTRIES} paths or once max_bytes were used)")
    data = target.read_bytes()
    return SnapshotInfo(
        file=target.name,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        kind=kind,
        head=head,
        files=count,
        deleted=tuple(deleted),
        untracked=tuple(kept_untracked),
        left_out=len(left_out),
        left_out_bytes=sum(size for _, size in left_out),
        left_out_names=tuple(names_left_out),
        max_bytes=max_bytes,
        walk_stopped=walk_stopped,
    )
