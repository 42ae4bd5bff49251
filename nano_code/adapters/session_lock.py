"""One writer per session file: a `flock` held while the writer lives, dropped by the OS
however its process dies; a second writer is refused, naming the holder (/proc/locks).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class SessionLocked(Exception):
    """Another process is writing the session file."""

    def __init__(self, path: Path, pid: int | None) -> None:
        where = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"{path} is open in {where}")
        self.path = path
        self.pid = pid


def lock(fd: int, path: Path) -> None:
    """Hold the session file `fd` (this writer's own descriptor) until `fd` is closed."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SessionLocked(path, holder(fd)) from None


def holder(fd: int) -> int | None:
    """The process holding a flock on the file of `fd`, from /proc/locks (None when unknown).
    Lines read `1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF` (pid, dev, inode)."""
    info = os.fstat(fd)
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}"
    by_inode: list[int] = []
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            lines = table.readlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[3] != "WRITE":
            continue  # also skips the `->` lines of waiting requests
        pid, where = fields[4], fields[5]
        dev, _, inode = where.rpartition(":")
        if inode != str(info.st_ino) or not pid.isdigit():
            continue
        if dev == device:
            return int(pid)
        by_inode.append(int(pid))  # some filesystems report another device number here
    return by_inode[0] if len(set(by_inode)) == 1 else None
