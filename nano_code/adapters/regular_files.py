"""Opening files a directory or a recording brings with it: regular files only, read with a cap.

A named pipe under a file's name would hang a plain `open`, and `/dev/zero`
would be read until memory runs out; a file that comes with the workspace
(`.env`, `AGENTS.md`) or a session file is data and may be either.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotARegularFile(OSError):
    """The path names a pipe, a device, a socket or a directory."""


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
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as stream:
        return stream.read(limit + 1)
