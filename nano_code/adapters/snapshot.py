"""The workspace as a session found it, so that forks and live-tool replays start there.

`take` writes a gzip'd tar beside the session file and returns what the session
records about it (`SnapshotInfo.to_json`); `restore` rebuilds that workspace in
an empty directory.

In a git repository the snapshot holds the files git knows of (tracked and
untracked, ignored ones left out) as they are on disk, plus the HEAD version
of every tracked file that differs from HEAD. `restore` then makes a fresh
repository whose one commit has HEAD's content and puts the uncommitted
changes and untracked files back on top, so `git diff` and `git status` in a
fork say what they said when the session started (the commit's id differs:
the repository's history is not copied). Elsewhere it holds the files under
the workspace, skipping the usual caches and environments.

Both are bounded: files are taken in path order until `max_bytes` of them
are in, and what was left out (how many, how large, the first few names) is
recorded. An archive is data: `restore` checks it is a regular file of the
recorded size and checksum, and extracts only plain files, directories and
links that stay inside the target directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters import git
from nano_code.adapters.regular_files import read_regular

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
"""What a snapshot holds at most (NANO_CODE_SNAPSHOT_MAX_BYTES); 0 turns snapshots off."""
SKIPPED_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".tox"}
)
LEFT_OUT_NAMES = 20
_GIT_TIMEOUT = 30.0


class SnapshotError(Exception):
    """A snapshot that cannot be taken or restored; the message says why, in one line."""


@attrs.frozen
class SnapshotInfo:
    """What a session records about its workspace snapshot."""

    file: str
    """The archive's name, in the session file's directory."""
    sha256: str
    bytes: int
    kind: str
    """'git' or 'files'."""
    head: str | None = None
    """The commit HEAD named (git)."""
    files: int = 0
    deleted: tuple[str, ...] = ()
    """Tracked files missing from the working tree (git): deleted again after restoring HEAD."""
    untracked: tuple[str, ...] = ()
    left_out: int = 0
    left_out_bytes: int = 0
    left_out_names: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES

    def to_json(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in attrs.asdict(self).items()
        }

    @classmethod
    def from_json(cls, data: object) -> SnapshotInfo:
        if not isinstance(data, Mapping):
            raise SnapshotError("the session's workspace snapshot entry is not an object")
        known = {field.name for field in attrs.fields(cls)}
        values: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known
        }
        try:
            info = cls(**values)
        except TypeError as error:
            raise SnapshotError(f"the session's workspace snapshot entry is not usable: {error}") from None
        if not isinstance(info.file, str) or "/" in info.file or info.file in ("", ".", ".."):
            raise SnapshotError("the workspace snapshot must be a file name beside the session")
        if not (
            isinstance(info.sha256, str) and isinstance(info.bytes, int) and info.kind in ("git", "files")
        ):
            raise SnapshotError("the session's workspace snapshot entry has fields of the wrong type")
        if not all(isinstance(p, str) for p in (*info.deleted, *info.untracked)):
            raise SnapshotError("the workspace snapshot names a path that is not text")
        return info


def archive_path(session_path: Path) -> Path:
    """Where the snapshot of the session at `session_path` lives."""
    return session_path.with_name(session_path.stem + ".workspace.tar.gz")


# ---------------------------------------------------------------- taking


def _git(args: list[str], cwd: Path, data: bytes | None = None) -> bytes | None:
    try:
        done = subprocess.run(
            git.argv(*args),
            cwd=cwd,
            input=data,
            capture_output=True,
            timeout=_GIT_TIMEOUT,
            stdin=None if data is not None else subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _split(output: bytes) -> list[str]:
    return [os.fsdecode(p) for p in output.split(b"\0") if p]


def _walk(workspace: Path) -> Iterator[str]:
    for root, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            yield str(Path(root, name).relative_to(workspace))


def _head_versions(workspace: Path, paths: list[str]) -> dict[str, bytes]:
    """HEAD's content of each path, from one `git cat-file --batch`."""
    if not paths:
        return {}
    request = b"".join(b"HEAD:" + os.fsencode(p) + b"\n" for p in paths)
    output = _git(["cat-file", "--batch"], workspace, request)
    if output is None:
        raise SnapshotError("git could not read HEAD's version of the changed files")
    found: dict[str, bytes] = {}
    position = 0
    for path in paths:
        end = output.index(b"\n", position)
        header = output[position:end].split()
        position = end + 1
        if len(header) >= 3 and header[1] == b"blob":
            size = int(header[2])
            found[path] = output[position : position + size]
            position += size + 1
    return found


def take(workspace: Path, session_path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> SnapshotInfo:
    """Snapshot `workspace` beside the session file at `session_path` (a 0600 archive)."""
    head_raw = _git(["rev-parse", "--verify", "-q", "HEAD"], workspace)
    listed = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], workspace)
    kind = "git" if listed is not None else "files"
    head = head_raw.decode().strip() if head_raw else None
    untracked: list[str] = []
    deleted: list[str] = []
    changed: list[str] = []
    if listed is not None:
        candidates = sorted(set(_split(listed)))
        untracked = sorted(
            _split(_git(["ls-files", "-z", "--others", "--exclude-standard"], workspace) or b"")
        )
        if head is not None:
            changed = sorted(_split(_git(["diff", "--name-only", "-z", "HEAD"], workspace) or b""))
    else:
        candidates = list(_walk(workspace))

    target = archive_path(session_path)
    budget = max_bytes
    count = 0
    left_out: list[tuple[str, int]] = []
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as archive:
        for relative in candidates:
            path = workspace / relative
            try:
                status = path.lstat()
            except OSError:
                if relative not in untracked:
                    deleted.append(relative)
                continue
            if not (path.is_file() or path.is_symlink()):
                continue
            size = 0 if path.is_symlink() else status.st_size
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
        kept_changed = [p for p in changed if p not in {name for name, _ in left_out}]
        for relative, content in _head_versions(workspace, kept_changed).items():
            if len(content) > budget:
                left_out.append((f"{relative} (HEAD's version)", len(content)))
                continue
            member = tarfile.TarInfo(f"git-head/{relative}")
            member.size = len(content)
            member.mode = 0o644
            archive.addfile(member, io.BytesIO(content))
            budget -= len(content)
    data = target.read_bytes()
    return SnapshotInfo(
        file=target.name,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        kind=kind,
        head=head,
        files=count,
        deleted=tuple(deleted),
        untracked=tuple(untracked),
        left_out=len(left_out),
        left_out_bytes=sum(size for _, size in left_out),
        left_out_names=tuple(name for name, _ in left_out[:LEFT_OUT_NAMES]),
        max_bytes=max_bytes,
    )


# ---------------------------------------------------------------- restoring


def _read_archive(session_path: Path, info: SnapshotInfo) -> bytes:
    path = session_path.with_name(info.file)
    try:
        data = read_regular(path, info.bytes)
    except FileNotFoundError:
        raise SnapshotError(f"the workspace snapshot {path} is missing") from None
    except OSError as error:
        raise SnapshotError(f"cannot read the workspace snapshot {path}: {error}") from None
    if len(data) != info.bytes or hashlib.sha256(data).hexdigest() != info.sha256:
        raise SnapshotError(f"the workspace snapshot {path} is not the one the session recorded")
    return data


def _safe_members(archive: tarfile.TarFile, into: Path) -> Iterator[tuple[tarfile.TarInfo, str, str]]:
    """(member, 'files' or 'git-head', relative path) for each member that is safe to write."""
    for member in archive.getmembers():
        section, _, relative = member.name.partition("/")
        parts = Path(relative).parts
        if section not in ("files", "git-head") or not parts or ".." in parts or Path(relative).is_absolute():
            raise SnapshotError(f"the workspace snapshot holds an unexpected entry {member.name!r}")
        if member.issym():
            target = (into / relative).parent / member.linkname
            if Path(member.linkname).is_absolute() or not _within(target, into):
                continue  # a link out of the workspace: not recreated
        elif not member.isfile():
            continue
        yield member, section, relative


def _within(path: Path, root: Path) -> bool:
    resolved = Path(os.path.normpath(path))
    return resolved == root or root in resolved.parents


def _write(into: Path, relative: str, content: bytes, mode: int = 0o644) -> None:
    path = into / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode & 0o777 | 0o600
    )
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)


def restore(session_path: Path, info: SnapshotInfo, into: Path) -> None:
    """Rebuild the snapshotted workspace in `into` (an empty directory)."""
    into = into.resolve()
    data = _read_archive(session_path, info)
    work: dict[str, bytes] = {}
    head: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member, section, relative in _safe_members(archive, into):
                if member.issym():
                    if section == "files":
                        link = into / relative
                        link.parent.mkdir(parents=True, exist_ok=True)
                        link.symlink_to(member.linkname)
                    continue
                handle = archive.extractfile(member)
                content = handle.read() if handle is not None else b""
                if section == "files":
                    work[relative] = content
                    _write(into, relative, content, member.mode)
                else:
                    head[relative] = content
    except (tarfile.TarError, OSError, EOFError) as error:
        raise SnapshotError(f"the workspace snapshot cannot be unpacked: {error}") from None
    if info.kind != "git":
        return
    # A repository whose one commit is HEAD's content, then the uncommitted state on top.
    for relative in info.untracked:
        (into / relative).unlink(missing_ok=True)
    for relative, content in head.items():
        _write(into, relative, content)
    if _git(["init", "-q"], into) is None:
        raise SnapshotError("git init failed in the restored workspace")
    identity = ["-c", "user.name=nano-code", "-c", "user.email=nano-code@localhost"]
    _git(["add", "-A"], into)
    message = f"the workspace's HEAD ({info.head or 'no commit yet'}) when the session was recorded"
    if info.head is not None:
        _git([*identity, "commit", "-q", "--allow-empty", "--no-verify", "-m", message], into)
    for relative in head:
        if relative in work:
            _write(into, relative, work[relative])
    for relative in info.deleted:
        (into / relative).unlink(missing_ok=True)
    for relative in info.untracked:
        if relative in work:
            _write(into, relative, work[relative])


def restored_workspace(session_path: Path, info: SnapshotInfo, prefix: str = "nano-fork-") -> Path:
    """A fresh private temporary directory holding the restored workspace."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    restore(session_path, info, directory)
    return directory
