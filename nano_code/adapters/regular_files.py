"""Opening files a directory or a recording brings with it: regular files only, read with a cap.

A named pipe under a file's name would hang a plain `open`, and `/dev/zero`
would be read until memory runs out; a file that comes with the workspace
(`.env`, `AGENTS.md`) or a session file is data and may be either. So may a link:
`open_regular_inside` follows one only while it stays inside a given folder.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class NotARegularFile(OSError):
    """The path names a pipe, a device, a socket or a directory."""


class LeadsOutside(OSError):
    """The path leads, through a link, out of the folder it must stay in."""

    def __init__(self, path: Path, target: str) -> None:
        super().__init__(f"{path} leads out of its folder (to {target})")
        self.target = target


def open_regular(path: Path, flags: int = os.O_RDONLY) -> int:
    """A blocking descriptor for `path` only if it is a regular file (NotARegularFile otherwise).

    O_NONBLOCK keeps a named pipe from blocking the open itself; the check is
    made on the opened descriptor, so the file checked is the file read.
    """
    fd = os.open(path, flags | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotARegularFile(f"{path}: not a regular file (a pipe, device or directory)")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path, limit: int) -> bytes:
    """At most `limit + 1` bytes of `path` (one more than allowed tells the caller it is longer)."""
    return _read(open_regular(path), limit)


def _read(fd: int, limit: int) -> bytes:
    with os.fdopen(fd, "rb") as stream:
        return stream.read(limit + 1)


def open_regular_inside(root: Path, name: str) -> int:
    """A blocking descriptor for `root/name`, a regular file that is inside `root` once every link
    is followed (LeadsOutside otherwise, NotARegularFile for a pipe or device inside).

    A link that stays inside (AGENTS.md -> docs/AGENTS.md) is followed; one that leads out,
    itself or through a linked folder on the way (-> ~/.ssh/id_rsa, -> ../../etc/passwd,
    docs -> /etc), is refused before anything outside is opened. The path is resolved, then
    opened one component at a time below a descriptor of `root` without following links, so
    a link swapped in meanwhile is refused, not followed.
    """
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(base, name))
    if os.path.commonpath([base, target]) != base or target == base:
        raise LeadsOutside(root / name, target)
    *folders, last = Path(target).relative_to(base).parts
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for folder in folders:
            inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        opened = os.open(last, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):  # a link appeared after it was resolved
            raise LeadsOutside(root / name, target) from None
        raise
    finally:
        os.close(fd)
    try:
        if not stat.S_ISREG(os.fstat(opened).st_mode):
            raise NotARegularFile(f"{root / name}: not a regular file (a pipe, device or directory)")
        os.set_blocking(opened, True)
    except BaseException:
        os.close(opened)
        raise
    return opened


def read_regular_inside(root: Path, name: str, limit: int) -> bytes:
    """`read_regular` of `root/name`, following links only while they stay inside `root`."""
    return _read(open_regular_inside(root, name), limit)
