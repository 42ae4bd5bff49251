"""The workspace as a session found it, so that forks and live-tool replays start there.

`take` writes a gzip'd tar beside the session file and returns what the session
records about it (`SnapshotInfo.to_json`); `restore` rebuilds that workspace in
an empty directory.

In a git repository the snapshot holds the files git knows of (tracked and
untracked, ignored ones left out) as they are on disk, plus the HEAD version
of every tracked file that differs from HEAD. Paths are the workspace's own,
also when it is a subdirectory of the repository. `restore` then makes a fresh
repository whose one commit has HEAD's content and puts the uncommitted
changes and untracked files back on top, so `git diff` and `git status` in a
fork say what they said when the session started (the commit's id differs:
the repository's history is not copied). Elsewhere it holds the files under
the workspace, skipping the usual caches and environments.

Both are bounded: files are taken in path order until `max_bytes` of them
are in, HEAD's versions only when their size (asked of git first) still
fits, and at most `MAX_ENTRIES` paths are looked at; what was left out (how
many, how large, the first few names) is recorded, and `walk_stopped` says
the walk ended early (the count left out is then a lower bound). `.env` and
`.env.*` files (secrets) are never taken: they are named in
`left_out_names`. A path with a newline has no HEAD version taken.

The session file and the archive are data, possibly from someone else, and
nothing in them can make `restore` write, delete or run anything outside its
target directory:

- `from_json` accepts only relative paths without `.`/`..`/empty parts, NUL
  or a `.git` component (in any case) in `deleted` and `untracked`, and sane
  sizes; the archive must be a regular file of the recorded size (at most
  `MAX_ARCHIVE_BYTES`) and checksum, and it is decompressed with a bound
  (twice `max_bytes` plus room for the tar headers), so a gzip bomb is refused.
- Every member's path obeys the same rules, or the archive is refused; only
  plain files and symlinks are used (no devices, hard links or sparse files),
  and no file or link may lie under a link of the archive.
- Files are written (and `deleted` ones removed) through real directories
  only (each parent opened with O_NOFOLLOW from the target), and the git
  steps run with the repository's programs off and every filter unset
  (`.git/info/attributes` says `* -filter`, which overrides any
  `.gitattributes`), before any link exists.
- The archive's links are made last, and only those whose target is
  relative and stays inside: normalised from the link's directory it may not
  climb out, and it may not climb (`..`) out of another link of the archive.
  A link out of the workspace is not recreated.

Any failure is a `SnapshotError` with a one-line message.
"""

from __future__ import annotations

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
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters import git
from nano_code.adapters.regular_files import read_regular
from nano_code.adapters.workspace_scan import is_secret as is_secret_name

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
"""What a snapshot holds at most (NANO_CODE_SNAPSHOT_MAX_BYTES); 0 turns snapshots off."""
SKIPPED_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".tox"}
)
LEFT_OUT_NAMES = 20
MAX_ENTRIES = 100_000
"""How many paths `take` looks at, at most (directories and files walked, or git's list)."""
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
"""The largest archive (and `max_bytes`) a session may record."""
_HEADER_ROOM = 4096
"""Room per recorded path for its tar headers (a long name takes a pax header) when unpacking."""
_SLACK = 16 * 1024 * 1024
SECRETS = " (secrets: not snapshotted)"
_GIT_TIMEOUT = 30.0
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_RESTORE_GIT = (
    "-c",
    "core.attributesFile=/dev/null",
    "-c",
    "commit.gpgSign=false",
    "-c",
    "user.name=nano-code",
    "-c",
    "user.email=nano-code@localhost",
)


class SnapshotError(Exception):
    """A snapshot that cannot be taken or restored; the message says why, in one line."""


def _one_line(text: object) -> str:
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
    """Whether the file at the workspace path `relative` holds secrets (never snapshotted)."""
    return is_secret_name(relative.rsplit("/", 1)[-1])


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
    walk_stopped: bool = False
    """The walk ended at `MAX_ENTRIES` (or once `max_bytes` were used): `left_out` is a lower bound."""

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
        except TypeError as error:
            raise SnapshotError(
                f"the session's workspace snapshot entry is not usable: {_one_line(error)}"
            ) from None
        if not isinstance(info.file, str) or "/" in info.file or info.file in ("", ".", ".."):
            raise SnapshotError("the workspace snapshot must be a file name beside the session")
        if not (
            isinstance(info.sha256, str)
            and info.kind in ("git", "files")
            and (info.head is None or isinstance(info.head, str))
            and isinstance(info.walk_stopped, bool)
            and all(
                _is_count(n)
                for n in (info.bytes, info.files, info.left_out, info.left_out_bytes, info.max_bytes)
            )
            and all(isinstance(v, tuple) for v in (info.deleted, info.untracked, info.left_out_names))
            and all(isinstance(name, str) for name in info.left_out_names)
        ):
            raise SnapshotError("the session's workspace snapshot entry has fields of the wrong type")
        if info.bytes > MAX_ARCHIVE_BYTES or info.max_bytes > MAX_ARCHIVE_BYTES:
            raise SnapshotError(
                f"the session's workspace snapshot is recorded as larger than {MAX_ARCHIVE_BYTES} bytes"
            )
        if info.files > MAX_ENTRIES or len(info.deleted) + len(info.untracked) > 2 * MAX_ENTRIES:
            raise SnapshotError("the session's workspace snapshot records more paths than a snapshot holds")
        for name in (*info.deleted, *info.untracked):
            if not valid_name(name):
                raise SnapshotError(f"the workspace snapshot names a path it may not hold: {name!r}")
        return info


def archive_path(session_path: Path) -> Path:
    """Where the snapshot of the session at `session_path` lives."""
    return session_path.with_name(session_path.stem + ".workspace.tar.gz")


# ---------------------------------------------------------------- taking


def _git(args: Iterable[str], cwd: Path, data: bytes | None = None) -> bytes | None:
    try:
        done = subprocess.run(
            git.argv(cwd, *args),
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


class _Walk:
    """The files (and links) under a workspace in path order, at most `MAX_ENTRIES` paths looked at."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.stopped = False
        """Whether paths were left unvisited."""
        self.visited = 0
        self._halt = False

    def stop(self) -> None:
        """Visit nothing more."""
        self._halt = True

    def __iter__(self) -> Iterator[str]:
        for root, dirs, files in os.walk(self.workspace):
            relative_root = os.path.relpath(root, self.workspace)
            prefix = "" if relative_root == "." else relative_root + "/"
            kept = sorted(d for d in dirs if d not in SKIPPED_DIRS and d.casefold() != ".git")
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
    """HEAD's content of each path that fits in `budget` bytes, and those left out.

    Their sizes come first (`git cat-file --batch-check`), so a blob that does
    not fit is never read; a path with a newline cannot be asked for (git's
    batch protocol is line-based) and is left out.
    """
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

    target = archive_path(session_path)
    budget = max_bytes
    count = 0
    deleted: list[str] = []
    kept_untracked: list[str] = []
    left_out: list[tuple[str, int]] = []
    links: dict[str, bool] = {}
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
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


# ---------------------------------------------------------------- restoring


def read_archive(session_path: Path, info: SnapshotInfo) -> bytes:
    """The archive `info` names beside the session file, checked: a regular file, of the
    recorded size and checksum (SnapshotError otherwise)."""
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
        raise SnapshotError(f"cannot read the workspace snapshot {path}: {_one_line(error)}") from None
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
        raise SnapshotError(f"the workspace snapshot cannot be unpacked: {_one_line(error)}") from None
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
    """Whether the link at `relative` to `target` resolves inside the workspace.

    Its target must be relative and, followed component by component from the
    link's directory, never climb above the workspace nor climb (`..`) out of
    a path at or under another link (where `..` is not what it seems).
    """
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
        """An open descriptor of `relative`'s directory and its last part (None: it is not there).

        Each parent is opened with O_NOFOLLOW from the root: with `create`, a
        missing one is made and a file or link in its place is replaced (the
        link itself, never what it points to) by a directory.
        """
        *parents, name = relative.split("/")
        flags = os.O_RDONLY | _DIRECTORY | _NOFOLLOW
        fd = os.open(self.root, os.O_RDONLY | _DIRECTORY)
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

    def _clear(self, fd: int, name: str) -> None:
        """Remove whatever is at `name` in `fd` (a directory tree we made, a file, a link)."""
        try:
            status = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(status.st_mode):
            shutil.rmtree(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)

    def write(self, relative: str, content: bytes, mode: int = 0o644) -> None:
        opened = self._parent(relative, create=True)
        assert opened is not None
        fd, name = opened
        try:
            self._clear(fd, name)
            out = os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode & 0o777 | 0o600, dir_fd=fd
            )
            with os.fdopen(out, "wb") as handle:
                handle.write(content)
        finally:
            os.close(fd)

    def link(self, relative: str, target: str) -> None:
        opened = self._parent(relative, create=True)
        assert opened is not None
        fd, name = opened
        try:
            self._clear(fd, name)
            os.symlink(target, name, dir_fd=fd)
        finally:
            os.close(fd)

    def remove(self, relative: str) -> None:
        """Remove the file (or link) at `relative`, if it is there; a directory is left alone."""
        opened = self._parent(relative, create=False)
        if opened is None:
            return
        fd, name = opened
        try:
            status = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(status.st_mode):
                os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)


def _restore_git(into: Path, args: list[str], what: str, data: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            git.argv(into, *_RESTORE_GIT, *args),
            cwd=into,
            input=data,
            capture_output=True,
            timeout=_GIT_TIMEOUT,
            stdin=None if data is not None else subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise SnapshotError(f"{what} failed in the restored workspace: {_one_line(error)}") from None
    if done.returncode != 0:
        reason = _one_line(done.stderr.decode("utf-8", "replace"))[:300]
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
        message = f"the workspace's HEAD ({_one_line(info.head)[:80]}) when the session was recorded"
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
    for name in (*info.deleted, *info.untracked):
        if not valid_name(name):
            raise SnapshotError(f"the workspace snapshot names a path it may not hold: {name!r}")
    try:
        into = into.resolve()
        data = read_archive(session_path, info)
        limit = unpacked_limit(info)
        try:
            contents = _read_members(_decompress(data, limit), limit)
        except SnapshotError:
            raise
        except Exception as error:  # whatever a hostile tar makes tarfile raise
            raise SnapshotError(f"the workspace snapshot cannot be unpacked: {_one_line(error)}") from None
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
        raise SnapshotError(f"the workspace snapshot cannot be restored: {_one_line(error)}") from None


def restored_workspace(session_path: Path, info: SnapshotInfo, prefix: str = "nano-fork-") -> Path:
    """A fresh private temporary directory holding the restored workspace (removed if that fails)."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        restore(session_path, info, directory)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory
