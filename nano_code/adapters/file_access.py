"""How the file tools reach a file: where a path leads, and the boundary it must keep when opened.

Path checks hold at the moment of use: with `ToolContext.confined`, a file is reached from the
workspace one name at a time without following links, so a link swapped in after the check makes
the call fail. With an OS sandbox on, writes keep to its boundary as the shell's do (reads are not
confined: the shell can read everything too).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO

from nano_code.adapters.regular_files import (
    DIRECTORY,
    LinkInTheWay,
    NotARegularFile,
    checked_regular,
    open_beneath,
)
from nano_code.adapters.tool import ToolContext, ToolFailure
from nano_code.kernel.types import SandboxMode

BINARY_SNIFF_BYTES = 8192


def inside_workspace(path: str, workspace: Path) -> bool:
    """Whether `path` (relative to `workspace`, or absolute) resolves inside it, every link followed."""
    try:
        root = os.path.realpath(workspace)
        target = os.path.realpath(os.path.join(root, path))
    except (OSError, ValueError):
        return False
    return Path(target).is_relative_to(root)


def resolve(path: str, context: ToolContext) -> Path:
    """The path a tool acts on; `~` is deliberately not expanded."""
    if not path.strip():
        raise ToolFailure("path is empty.")
    if "\0" in path:
        raise ToolFailure("path contains a NUL character.")
    return context.workspace / path


def confinement(context: ToolContext) -> str | None:
    """The real path file tools must stay inside, or None when the call may go anywhere."""
    return os.path.realpath(context.workspace) if context.confined else None


def write_confinement(path: Path, shown: str, context: ToolContext) -> str | None:
    """Where a write must stay (None: anywhere); refuses what the sandbox forbids, as the shell's would."""
    if context.sandbox is None:
        return confinement(context)
    if context.sandbox.mode is SandboxMode.READ_ONLY:
        raise ToolFailure(
            f"the sandbox is read-only, so no file can be written; {shown} was not written. "
            "Tell the user the change you would make instead."
        )
    root = os.path.realpath(context.sandbox.workspace)
    target = Path(os.path.realpath(path))
    if not target.is_relative_to(root):
        raise ToolFailure(
            f"{shown} is outside the workspace, and the sandbox (workspace-write) lets tools write "
            f"only inside it ({root}); not written. Write inside the workspace instead."
        )
    if ".git" in target.relative_to(root).parts:
        raise ToolFailure(
            f"{shown} is inside a .git directory, which the sandbox keeps out of reach of the file "
            "tools (git would run what a repository's config names); not written. Use git commands instead."
        )
    return root


def _resolve_at_use(path: Path, shown: str, confine_to: str | None, undone: str) -> Path:
    """Where `path` leads now, refused when it must stay inside `confine_to` and does not."""
    target = Path(os.path.realpath(path))
    if confine_to is not None and not target.is_relative_to(confine_to):
        raise ToolFailure(
            f"{shown} resolved outside the workspace when it was opened (it changed after it was "
            f"checked); {undone}."
        )
    return target


def _beneath(confine_to: str, target: Path, flags: int, shown: str, undone: str, make_dirs: bool) -> int:
    try:
        return open_beneath(confine_to, target.relative_to(confine_to).parts, flags, make_dirs=make_dirs)
    except LinkInTheWay:
        raise ToolFailure(
            f"{shown} changed after it was checked (a part of it is now a symbolic link, "
            f"or a link loops); {undone}."
        ) from None


def target_note(path: Path, shown: str, context: ToolContext, action: str) -> str:
    """For the approval prompt: where `path` really leads, when that is not what it says (else empty)."""
    real = os.path.realpath(path)
    outside = not Path(real).is_relative_to(os.path.realpath(context.workspace))
    where = ", outside the workspace" if outside else ""
    if real == os.path.normpath(path):
        return f"note: {shown} is outside the workspace" if outside else ""
    how = "is a symlink" if os.path.islink(path) else "goes through a symlink"
    return f"note: {shown} {how}; the {action} goes to {real}{where}"


def with_note(text: str, note: str) -> str:
    """`text` with `note` as its second line (its first is the heading)."""
    if not note:
        return text
    heading, _, rest = text.partition("\n")
    return "\n".join(part for part in (heading, note, rest) if part)


def open_for_reading(path: Path, shown: str, confine_to: str | None = None) -> IO[bytes]:
    """Open a regular file (inside `confine_to`, when given), failures as messages for the model."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY
    try:
        if confine_to is None:
            fd = os.open(path, flags)
        else:
            target = _resolve_at_use(path, shown, confine_to, "not read")
            fd = _beneath(confine_to, target, flags, shown, "not read", make_dirs=False)
        fd = checked_regular(fd, path)
    except FileNotFoundError:
        raise ToolFailure(f"file not found: {shown}") from None
    except PermissionError:
        raise ToolFailure(f"permission denied reading {shown}") from None
    except NotADirectoryError:
        raise ToolFailure(f"file not found: {shown} (a part of the path is not a directory)") from None
    except NotARegularFile as error:
        if error.directory:
            raise ToolFailure(
                f"{shown} is a directory, not a file. Use shell (e.g. ls) to list it."
            ) from None
        raise ToolFailure(f"{shown} is not a regular file (a pipe, socket or device); not read.") from None
    return os.fdopen(fd, "rb")


def read_text(path: Path, shown: str, confine_to: str | None = None) -> str:
    """The whole file as text (for edits and diffs); binary or non-UTF-8 files are refused."""
    with open_for_reading(path, shown, confine_to) as stream:
        data = stream.read()
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        raise ToolFailure(f"{shown} looks like a binary file (it contains NUL bytes).")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ToolFailure(f"{shown} is not UTF-8 text (invalid byte on line {line}).") from None


def write_atomically(path: Path, data: bytes, shown: str, confine_to: str | None = None) -> bool:
    """Replace `path` with `data` so readers see the old file or the new one; returns whether it existed.

    Missing parents are created; a file keeps its permission bits, a link its target (which is
    replaced). Beneath `confine_to`, a link now in the file's place is refused.
    """
    target = _resolve_at_use(path, shown, confine_to, "not written")
    if str(target) == confine_to:
        raise IsADirectoryError(21, "Is a directory", shown)
    if confine_to is None:
        target.parent.mkdir(parents=True, exist_ok=True)
        directory = os.open(target.parent, DIRECTORY)
    else:
        directory = _beneath(confine_to, target.parent, DIRECTORY, shown, "not written", make_dirs=True)
    try:
        return _replace_in(directory, target.name, data, shown, confined=confine_to is not None)
    finally:
        os.close(directory)


def _replace_in(directory: int, name: str, data: bytes, shown: str, *, confined: bool) -> bool:
    """Put `data` in `name` of the open `directory` through a temporary file and a rename."""
    try:
        before = os.stat(name, dir_fd=directory, follow_symlinks=not confined)
    except FileNotFoundError:
        before = None
    if before is not None and stat.S_ISLNK(before.st_mode):
        raise ToolFailure(f"{shown} changed after it was checked (it is now a symbolic link); not written.")
    if before is not None and stat.S_ISDIR(before.st_mode):
        raise IsADirectoryError(21, "Is a directory", shown)
    while True:
        temporary = f".{name}.{os.urandom(4).hex()}.tmp"
        try:
            # 0o666 lets the umask decide a new file's bits, as any editor would.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=directory)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            if before is not None:
                os.fchmod(stream.fileno(), stat.S_IMODE(before.st_mode))
            os.fsync(stream.fileno())
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=directory)
        raise
    return before is not None
