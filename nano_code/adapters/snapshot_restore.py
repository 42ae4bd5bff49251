"""Restoring a workspace snapshot in an empty directory; the session file and archive are data, and
nothing in them makes `restore` write, delete or run anything outside its target (checked archive,
bounded unpacking, `valid_name` paths, real directories only, git without filters or hooks, links
last and only those staying inside). A git snapshot becomes a repository whose one commit holds
HEAD's content, the uncommitted changes on top.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import attrs

from nano_code.adapters import git
from nano_code.adapters.regular_files import read_regular
from nano_code.adapters.snapshot import (
    GIT_TIMEOUT,
    MAX_ARCHIVE_BYTES,
    MAX_ENTRIES,
    SnapshotError,
    SnapshotInfo,
    check_paths,
    one_line,
    valid_name,
)

_HEADER_ROOM = 4096
"""Room per recorded path for its tar headers (a long name takes a pax header) when unpacking."""
_SLACK = 16 * 1024 * 1024
_RESTORE_GIT = ["-c", "core.attributesFile=/dev/null", "-c", "commit.gpgSign=false"]
_RESTORE_GIT += ["-c", "user.name=nano-code", "-c", "user.email=nano-code@localhost"]


def read_archive(session_path: Path, info: SnapshotInfo) -> bytes:
    """The archive `info` names beside the session file: a regular file of the recorded size and checksum."""
    path = session_path.with_name(info.file)
    if info.bytes > MAX_ARCHIVE_BYTES:
        raise SnapshotError(
            f"the workspace snapshot {path} is recorded as larger than {MAX_ARCHIVE_BYTES} bytes"
        )
    try:
        data = read_regular(path, info.bytes)
    except FileNotFoundError:
        raise SnapshotError(f"the workspace snapshot {path} is missing") from None
    except OSError as error:
        raise SnapshotError(f"cannot read the workspace snapshot {path}: {one_line(error)}") from None
    if len(data) != info.bytes or hashlib.sha256(data).hexdigest() != info.sha256:
        raise SnapshotError(f"the workspace snapshot {path} is not the one the session recorded")
    return data


def unpacked_limit(info: SnapshotInfo) -> int:
    """How many bytes the archive may expand to: twice what it may hold, and room for headers."""
    paths = min(2 * info.files + len(info.deleted), 3 * MAX_ENTRIES)
    return 2 * min(info.max_bytes, MAX_ARCHIVE_BYTES) + _SLACK + _HEADER_ROOM * paths


def _decompress(data: bytes, limit: int) -> bytes:
    """The gzip'd `data` expanded, refused (SnapshotError) past `limit` bytes."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        tar = inflater.decompress(data, limit + 1)
    except zlib.error as error:
        raise SnapshotError(f"the workspace snapshot cannot be unpacked: {one_line(error)}") from None
    if len(tar) > limit:
        raise SnapshotError(f"the workspace snapshot expands to more than {limit} bytes: refused")
    if not inflater.eof:
        raise SnapshotError("the workspace snapshot cannot be unpacked: it is cut short")
    if inflater.unused_data:
        raise SnapshotError("the workspace snapshot cannot be unpacked: it holds data after its end")
    return tar


@attrs.define
class _Contents:
    """What an archive holds, checked: files (content, mode), links and HEAD versions by path."""

    files: dict[str, tuple[bytes, int]] = attrs.Factory(dict)
    links: dict[str, str] = attrs.Factory(dict)
    head: dict[str, bytes] = attrs.Factory(dict)


def _read_members(tar: bytes, limit: int) -> _Contents:
    contents = _Contents()
    total = 0
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        for member in archive:
            section, _, relative = member.name.partition("/")
            if section not in ("files", "git-head") or not valid_name(relative):
                raise SnapshotError(f"the workspace snapshot holds an unexpected entry {member.name!r}")
            if member.issym() and section == "files":
                contents.files.pop(relative, None)
                contents.links[relative] = member.linkname
                continue
            if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.sparse is not None:
                continue  # directories, hard links, devices, sparse files: never in a snapshot
            total += member.size
            if total > limit:
                raise SnapshotError(f"the workspace snapshot's files add up to more than {limit} bytes")
            handle = archive.extractfile(member)
            content = handle.read(member.size) if handle is not None else b""
            if section == "files":
                contents.links.pop(relative, None)
                contents.files[relative] = (content, member.mode)
            else:
                contents.head[relative] = content
    links = set(contents.links)
    for relative in (*contents.files, *contents.links):
        parts = relative.split("/")
        if any("/".join(parts[:end]) in links for end in range(1, len(parts))):
            raise SnapshotError(f"the workspace snapshot holds {relative!r} under a link")
    return contents


def _link_stays_inside(relative: str, target: str, links: set[str]) -> bool:
    """Whether the link at `relative` to `target` stays inside: relative, never climbing above the
    workspace nor (`..`) out of a path under another link, where `..` is not what it seems."""
    if not target or "\0" in target or target.startswith("/"):
        return False
    position = relative.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not position:
                return False
            if any("/".join(position[:end]) in links for end in range(1, len(position) + 1)):
                return False
            position.pop()
        else:
            position.append(part)
    return True


class _Tree:
    """Writing and removing inside `root`, through real directories only (never a link)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _parent(self, relative: str, create: bool) -> tuple[int, str] | None:
        """An open descriptor of `relative`'s directory and its last part (None: it is not there); with
        `create`, a missing parent is made, replacing a file or link (never what it points to)."""
        *parents, name = relative.split("/")
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in parents:
                try:
                    child = os.open(part, flags, dir_fd=fd)
                except OSError as error:
                    if error.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                        raise
                    if not create:
                        os.close(fd)
                        return None
                    if error.errno != errno.ENOENT:
                        os.unlink(part, dir_fd=fd)
                    os.mkdir(part, 0o755, dir_fd=fd)
                    child = os.open(part, flags, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd, name

    @contextlib.contextmanager
    def _cleared(self, relative: str) -> Iterator[tuple[int, str]]:
        """`relative`'s directory and last part, with whatever was there removed (a tree we made, a file, a link)."""
        opened = self._parent(relative, create=True)
        assert opened is not None
        fd, name = opened
        try:
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    shutil.rmtree(name, dir_fd=fd)
                else:
                    os.unlink(name, dir_fd=fd)
            yield fd, name
        finally:
            os.close(fd)

    def write(self, relative: str, content: bytes, mode: int = 0o644) -> None:
        with self._cleared(relative) as (fd, name):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            with os.fdopen(os.open(name, flags, mode & 0o777 | 0o600, dir_fd=fd), "wb") as handle:
                handle.write(content)

    def link(self, relative: str, target: str) -> None:
        with self._cleared(relative) as (fd, name):
            os.symlink(target, name, dir_fd=fd)

    def remove(self, relative: str) -> None:
        """Remove the file (or link) at `relative`, if it is there; a directory is left alone."""
        opened = self._parent(relative, create=False)
        if opened is None:
            return
        fd, name = opened
        try:
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)


def _restore_git(into: Path, args: list[str], what: str, data: bytes | None = None) -> bytes:
    try:
        done = git.run(into, *_RESTORE_GIT, *args, data=data, timeout=GIT_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as error:
        raise SnapshotError(f"{what} failed in the restored workspace: {one_line(error)}") from None
    if done.returncode != 0:
        reason = one_line(done.stderr.decode("utf-8", "replace"))[:300]
        raise SnapshotError(f"{what} failed in the restored workspace: {reason}")
    return done.stdout


def _rebuild_repository(into: Path, info: SnapshotInfo, contents: _Contents, links: dict[str, str]) -> None:
    """A repository whose one commit is HEAD's content, then the uncommitted state on top (no links yet)."""
    tree = _Tree(into)
    untracked = set(info.untracked)
    for relative in info.untracked:
        tree.remove(relative)
    for relative, content in contents.head.items():
        tree.write(relative, content)
    _restore_git(into, ["init", "-q"], "git init")
    # No filter named in the archive's .gitattributes may run (this file overrides them all).
    info_dir = into / ".git" / "info"
    if info_dir.is_symlink() or not (into / ".git").is_dir() or (into / ".git").is_symlink():
        raise SnapshotError("git init made no plain .git directory in the restored workspace")
    info_dir.mkdir(exist_ok=True)
    (info_dir / "attributes").write_text("* -filter\n")
    _restore_git(into, ["add", "-A", "-f"], "git add")
    # The tracked links go in the index only: they are made on disk last.
    for relative, target in links.items():
        if relative in untracked or relative in contents.head:
            continue
        blob = _restore_git(into, ["hash-object", "-w", "--stdin"], "git hash-object", os.fsencode(target))
        entry = f"120000,{blob.decode().strip()},{relative}"
        _restore_git(into, ["update-index", "--add", "--cacheinfo", entry], "git update-index")
    if info.head is not None:
        message = f"the workspace's HEAD ({one_line(info.head)[:80]}) when the session was recorded"
        _restore_git(into, ["commit", "-q", "--allow-empty", "--no-verify", "-m", message], "git commit")
    for relative in contents.head:
        if relative in contents.files:
            content, mode = contents.files[relative]
            tree.write(relative, content, mode)
    for relative in info.deleted:
        tree.remove(relative)
    for relative in info.untracked:
        if relative in contents.files:
            content, mode = contents.files[relative]
            tree.write(relative, content, mode)


def restore(session_path: Path, info: SnapshotInfo, into: Path) -> None:
    """Rebuild the snapshotted workspace in `into` (an empty directory)."""
    check_paths(info)
    try:
        into = into.resolve()
        data = read_archive(session_path, info)
        limit = unpacked_limit(info)
        try:
            contents = _read_members(_decompress(data, limit), limit)
        except SnapshotError:
            raise
        except Exception as error:  # whatever a hostile tar makes tarfile raise
            raise SnapshotError(f"the workspace snapshot cannot be unpacked: {one_line(error)}") from None
        tree = _Tree(into)
        for relative, (content, mode) in contents.files.items():
            tree.write(relative, content, mode)
        names = set(contents.links)
        links = {
            relative: target
            for relative, target in sorted(contents.links.items())
            if _link_stays_inside(relative, target, names)
        }
        if info.kind == "git":
            _rebuild_repository(into, info, contents, links)
        for relative, target in links.items():
            tree.link(relative, target)
    except (OSError, UnicodeError) as error:
        raise SnapshotError(f"the workspace snapshot cannot be restored: {one_line(error)}") from None


def restored_workspace(session_path: Path, info: SnapshotInfo, prefix: str = "nano-fork-") -> Path:
    """A fresh private temporary directory holding the restored workspace (removed if that fails)."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        restore(session_path, info, directory)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory
