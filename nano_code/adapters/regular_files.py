"""Opening files that are data: regular files only, and reached below a folder without following links.

A named pipe would hang a plain `open`, `/dev/zero` fill memory, and a link lead anywhere;
a workspace's files, a session file and a path the model names may be any of these.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

DIRECTORY: int = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_PATH", 0)
"""How directories on the way are opened: O_PATH (Linux) needs only search permission, like a lookup."""


class NotARegularFile(OSError):
    """The path names a pipe, a device, a socket or a directory."""

    def __init__(self, path: object, *, directory: bool = False) -> None:
        super().__init__(f"{path}: not a regular file (a pipe, device or directory)")
        self.directory = directory


class LinkInTheWay(OSError):
    """A part of a path opened by `open_beneath` is a symbolic link (swapped in after it was resolved)."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.ELOOP, "a part of the path is a symbolic link", name)


class LeadsOutside(OSError):
    """The path leads, through a link, out of the folder it must stay in."""

    def __init__(self, path: Path, target: str) -> None:
        super().__init__(f"{path} leads out of its folder (to {target})")
        self.target = target


def checked_regular(fd: int, path: object) -> int:
    """`fd`, made blocking, if it is a regular file (checked on the descriptor: the file checked is the
    file read); otherwise it is closed and NotARegularFile raised."""
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(path, directory=stat.S_ISDIR(mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path: Path, flags: int = os.O_RDONLY) -> int:
    """A blocking descriptor for `path` only if it is a regular file (O_NONBLOCK: a pipe cannot hang the open)."""
    return checked_regular(os.open(path, flags | os.O_NONBLOCK), path)


def read_regular(path: Path, limit: int) -> bytes:
    """At most `limit + 1` bytes of `path` (one more than allowed tells the caller it is longer)."""
    return _read(open_regular(path), limit)


def _read(fd: int, limit: int) -> bytes:
    with os.fdopen(fd, "rb") as stream:
        return stream.read(limit + 1)


def open_beneath(root: str, names: Sequence[str], flags: int, *, make_dirs: bool = False) -> int:
    """Open `root/names...`, each name relative to the directory before it; a name that is a link raises
    LinkInTheWay. With `make_dirs`, every name is a directory, created when missing."""
    fd = os.open(root, DIRECTORY)
    try:
        for index, name in enumerate(names):
            if make_dirs:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, dir_fd=fd)
            last = index == len(names) - 1
            try:
                step = os.open(name, (flags if last else DIRECTORY) | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                if _is_link(name, fd):
                    raise LinkInTheWay(name) from None
                raise
            os.close(fd)
            fd = step
        return fd
    except BaseException:
        os.close(fd)
        raise


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_regular_inside(root: Path, name: str) -> int:
    """A blocking descriptor for `root/name`, a regular file inside `root` once every link is followed;
    a link that leads out (or is swapped in meanwhile) raises LeadsOutside before anything is opened."""
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(base, name))
    if os.path.commonpath([base, target]) != base or target == base:
        raise LeadsOutside(root / name, target)
    try:
        fd = open_beneath(base, Path(target).relative_to(base).parts, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LeadsOutside(root / name, target) from None
        raise
    return checked_regular(fd, root / name)


def read_regular_inside(root: Path, name: str, limit: int) -> bytes:
    """`read_regular` of `root/name`, following links only while they stay inside `root`."""
    return _read(open_regular_inside(root, name), limit)
