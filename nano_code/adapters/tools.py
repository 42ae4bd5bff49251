"""The tools the model can call: each one's schema and implementation, side by side.

Adding a tool means adding one `Tool(...)` to `TOOLS`: its `ToolSpec` (what
the model reads and what the approval policy needs), how to run it, what the
approval prompt shows, and its one-line transcript summary.

Everything a tool can get wrong (bad arguments, missing files, permissions,
encodings) comes back as a `ToolOutcome` with `is_error=True` and a message
written for the model; only KeyboardInterrupt escapes, after the shell's
process group has been killed.

Path checks hold at the moment of use: when `ToolContext.confined` is set (the
call runs because its path was found inside the workspace), the file tools
reach the file from the workspace's own directory one name at a time without
following symlinks (`_open_beneath`), so a link swapped after the check makes
the call fail instead of reaching outside.

With an OS sandbox on (`ToolContext.sandbox`), the shell runs inside it and the
file tools keep to the same boundary, so the model meets one rule whichever
tool it uses. What runs without asking is confined: under `read-only` every
write_file and edit_file is refused; under `workspace-write` a write whose path
leads outside the workspace, or into its .git (read-only for the shell too), is
refused when the file is opened, and /tmp counts as outside, as it is for the
shell, whose /tmp is private. A call the user approved at the prompt runs
without the sandbox (`LivePerformer` drops it from the call's context): the
question was asked because the call leaves the sandbox, and the answer was yes.
`--yes` approves only what the sandbox allows.
Reads are not confined by the sandbox: the shell can read the whole
filesystem too, and read_file outside the workspace still asks first.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import attrs
from attrs import validators as v

from nano_code.adapters.sandbox import Sandbox
from nano_code.adapters.shell import Ending, run_command
from nano_code.kernel.policy import check_argument_values
from nano_code.kernel.types import SandboxMode, ToolSpec

DEFAULT_READ_LIMIT = 2000
MAX_LINE_CHARS = 2000
BINARY_SNIFF_BYTES = 8192
PREVIEW_DIFF_LINES = 80
_DIFF_MAX_LINES = 20_000
"""Past this many lines on either side the preview skips the diff (difflib gets slow)."""
SUMMARY_CHARS = 80


@attrs.frozen
class ToolOutcome:
    output: str
    is_error: bool = False
    exit_status: int | None = None
    """The shell's exit status; None for the file tools and after a timeout."""


@attrs.frozen
class ToolContext:
    workspace: Path
    """Absolute, resolved directory that relative paths and commands start from."""
    shell_timeout: float = attrs.field(default=120.0, validator=v.gt(0))
    output_head_bytes: int = attrs.field(default=65536, validator=v.ge(0))
    output_tail_bytes: int = attrs.field(default=65536, validator=v.ge(0))
    confined: bool = False
    """The file tools act only on what is inside `workspace` when they open it, and refuse otherwise.

    Set for a call that runs because its path was checked as inside the
    workspace: the path may lead elsewhere by the time the tool uses it.
    """
    sandbox: Sandbox | None = None
    """The OS sandbox the shell runs in, or None. With one, the file tools keep to its
    boundary too: no write under read-only, and writes only inside the workspace."""


class ToolFailure(Exception):
    """A tool could not do what was asked; the message is for the model."""


Arguments = Mapping[str, Any]


@attrs.frozen
class Tool:
    spec: ToolSpec
    execute: Callable[[Arguments, ToolContext], ToolOutcome]
    """Runs with arguments already checked against `spec`; may raise ToolFailure or OSError."""
    describe: Callable[[Arguments, ToolContext], str]
    """Text of the approval prompt, from checked arguments."""
    key_argument: str
    """The argument the transcript shows."""

    def run(self, arguments: Arguments, context: ToolContext) -> ToolOutcome:
        problem = check_arguments(self.spec, arguments)
        if problem is not None:
            return ToolOutcome(problem, is_error=True)
        try:
            return self.execute(arguments, context)
        except ToolFailure as failure:
            return ToolOutcome(f"Error: {failure}", is_error=True)
        except OSError as error:
            return ToolOutcome(f"Error: {self.spec.name} failed: {_describe_os_error(error)}", is_error=True)

    def preview(self, arguments: Arguments, context: ToolContext) -> str:
        problem = check_arguments(self.spec, arguments)
        if problem is not None:
            return problem
        try:
            return self.describe(arguments, context)
        except (ToolFailure, OSError, ValueError) as error:
            return f"{self.summary(arguments)}\n(cannot preview: {error})"

    def summary(self, arguments: Arguments) -> str:
        """One short line: the key argument (a command's first line, or a path), cut to fit."""
        value = arguments.get(self.key_argument) if isinstance(arguments, Mapping) else None
        if not isinstance(value, str):
            return "(invalid arguments)"
        lines = value.strip().splitlines() or [""]
        first = lines[0]
        if len(first) > SUMMARY_CHARS:
            return first[: SUMMARY_CHARS - 1] + "…"
        return first + (" …" if len(lines) > 1 else "")


# --- arguments and paths -------------------------------------------------------------------------


def check_arguments(spec: ToolSpec, arguments: object) -> str | None:
    """Why `arguments` do not fit `spec.parameters`, or None when they do (the kernel's check)."""
    if not isinstance(arguments, Mapping):
        return f"Error: the arguments of {spec.name} must be a JSON object; the call was not run."
    return check_argument_values(spec, arguments)


def inside_workspace(path: str, workspace: Path) -> bool:
    """Whether `path` (relative to `workspace`, or absolute) resolves inside it.

    Symlinks are followed wherever they are along the path, dangling ones
    included, so a link that points out of the workspace counts as outside.
    """
    try:
        root = os.path.realpath(workspace)
        target = os.path.realpath(os.path.join(root, path))
    except (OSError, ValueError):
        return False
    return Path(target).is_relative_to(root)


def _resolve(path: str, context: ToolContext) -> Path:
    """The path a tool acts on; `~` is deliberately not expanded."""
    if not path.strip():
        raise ToolFailure("path is empty.")
    if "\0" in path:
        raise ToolFailure("path contains a NUL character.")
    return context.workspace / path


def _confinement(context: ToolContext) -> str | None:
    """The real path file tools must stay inside, or None when the call may go anywhere."""
    return os.path.realpath(context.workspace) if context.confined else None


def _write_confinement(path: Path, shown: str, context: ToolContext) -> str | None:
    """Where a write must stay, or None when it may go anywhere; refuses what the sandbox forbids.

    Without a sandbox this is `_confinement`. With one, a write is always
    confined: under read-only there is none at all, and under workspace-write
    a path that leads outside the workspace is refused here, as the shell's
    sandbox would refuse it (its /tmp is private, so the real /tmp is outside
    for both).
    """
    if context.sandbox is None:
        return _confinement(context)
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


_DIRECTORY: int = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_PATH", 0)
"""How directories on the way are opened: O_PATH (Linux) needs only search permission, like a lookup."""


def _open_beneath(root: str, target: Path, flags: int, shown: str, undone: str, *, make_dirs: bool) -> int:
    """Open `target`, a resolved path inside `root`, walking down from `root` without following links.

    Every name on the way is opened relative to the directory before it with
    O_NOFOLLOW, so what gets opened is inside `root` even if a part of the path
    was swapped for a symlink after `target` was resolved: that makes the walk
    fail instead. With `make_dirs`, `target` and the names before it are
    directories, created when missing.
    """
    fd = os.open(root, _DIRECTORY)
    try:
        names = target.relative_to(root).parts
        for index, name in enumerate(names):
            if make_dirs:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, dir_fd=fd)
            last = index == len(names) - 1
            try:
                step = os.open(name, (flags if last else _DIRECTORY) | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                if _is_link(name, fd):
                    raise ToolFailure(
                        f"{shown} changed after it was checked (a part of it is now a symbolic link, "
                        f"or a link loops); {undone}."
                    ) from None
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


def _target_note(path: Path, shown: str, context: ToolContext, action: str) -> str:
    """For the approval prompt: where `path` really leads, when that is not what it says.

    Empty for a plain path inside the workspace; otherwise a line naming the
    real target and whether it is outside the workspace.
    """
    real = os.path.realpath(path)
    outside = not Path(real).is_relative_to(os.path.realpath(context.workspace))
    where = ", outside the workspace" if outside else ""
    if real == os.path.normpath(path):
        return f"note: {shown} is outside the workspace" if outside else ""
    how = "is a symlink" if os.path.islink(path) else "goes through a symlink"
    return f"note: {shown} {how}; the {action} goes to {real}{where}"


def _with_note(text: str, note: str) -> str:
    """`text` with `note` as its second line (its first is the heading)."""
    if not note:
        return text
    heading, _, rest = text.partition("\n")
    return "\n".join(part for part in (heading, note, rest) if part)


def _describe_os_error(error: OSError) -> str:
    reason = error.strerror or str(error)
    return f"{reason}: {error.filename}" if error.filename else reason


def _open_for_reading(path: Path, shown: str, confine_to: str | None = None) -> IO[bytes]:
    """Open a regular file, turning the usual failures into messages for the model.

    O_NONBLOCK keeps a named pipe from blocking the open; anything that is not
    a regular file (pipes, devices like /dev/zero) is refused before reading.
    With `confine_to`, only a file inside that directory is opened.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY
    try:
        if confine_to is None:
            fd = os.open(path, flags)
        else:
            target = _resolve_at_use(path, shown, confine_to, "not read")
            fd = _open_beneath(confine_to, target, flags, shown, "not read", make_dirs=False)
    except FileNotFoundError:
        raise ToolFailure(f"file not found: {shown}") from None
    except PermissionError:
        raise ToolFailure(f"permission denied reading {shown}") from None
    except NotADirectoryError:
        raise ToolFailure(f"file not found: {shown} (a part of the path is not a directory)") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ToolFailure(f"{shown} is a directory, not a file. Use shell (e.g. ls) to list it.")
        if not stat.S_ISREG(mode):
            raise ToolFailure(f"{shown} is not a regular file (a pipe, socket or device); not read.")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_text(path: Path, shown: str, confine_to: str | None = None) -> str:
    """The whole file as text (for edits and diffs); binary or non-UTF-8 files are refused."""
    with _open_for_reading(path, shown, confine_to) as stream:
        data = stream.read()
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        raise ToolFailure(f"{shown} looks like a binary file (it contains NUL bytes).")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ToolFailure(f"{shown} is not UTF-8 text (invalid byte on line {line}).") from None


# --- shell -----------------------------------------------------------------------------------------


def _run_shell(arguments: Arguments, context: ToolContext) -> ToolOutcome:
    command: str = arguments["command"]
    if not command.strip():
        return ToolOutcome("Error: the command is empty; nothing was run.", is_error=True)
    result = run_command(
        command,
        context.workspace,
        timeout=context.shell_timeout,
        head_bytes=context.output_head_bytes,
        tail_bytes=context.output_tail_bytes,
        sandbox=context.sandbox,
    )
    if result.ending is Ending.TIMED_OUT:
        limit = f"{context.shell_timeout:g}"
        advice = (
            "For a server or other long-running program, start it in the background with its output "
            "redirected to a file (cmd > out.log 2>&1 &)."
            if context.sandbox is None
            else "Commands run in a sandbox where background processes end with the command, so start "
            "a server and what uses it in the same command (server & sleep 1; client; kill %1)."
        )
        return ToolOutcome(
            f"Error: the command did not finish within {limit} s, so it and every process it started "
            f"were killed. {advice}\n"
            f"Output before it was killed:\n{result.output}",
            is_error=True,
        )
    output = result.output
    notes = []
    if result.signal_name is not None:
        notes.append(f"[the shell was terminated by {result.signal_name}]")
    if result.ending is Ending.LEFT_RUNNING:
        notes.append(
            "[the command finished but left a background process attached to its output; that "
            "process keeps running until nano-code exits, and its further output is not captured. "
            "Redirect a background process's output to a file (cmd > out.log 2>&1 &) to keep it.]"
        )
    if result.created_repositories:
        notes.append(
            "[this command created git repositories at "
            + ", ".join(result.created_repositories)
            + ": a repository's config can name programs git runs, so the user should check them "
            "before running git there; nano-code's own git calls run none of them]"
        )
    if notes:
        output = "\n".join([output.rstrip("\n"), *notes]) if output else "\n".join(notes)
    return ToolOutcome(output, exit_status=result.exit_status)


def _preview_shell(arguments: Arguments, context: ToolContext) -> str:
    command: str = arguments["command"]
    return command


SHELL_TOOL = Tool(
    spec=ToolSpec(
        name="shell",
        description=(
            "Run a shell command (bash -c) in the workspace directory and get its combined stdout and "
            "stderr plus the exit status. Use it to build, run tests, search (grep, find), inspect "
            "git, and the like. It is non-interactive: stdin is closed and there is no terminal, so "
            "pass flags that avoid prompts and pagers. Each call starts a fresh shell (cd and "
            "variables do not carry over). Commands are killed after a time limit (120 seconds by "
            "default). Long output is cut to its beginning and end, so filter it (grep, head, tail) "
            "when you can. Use read_file, write_file and edit_file rather than the shell for files."
        ),
        parameters={
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command line to run, e.g. 'pytest -q'."}
            },
            "required": ["command"],
            "additionalProperties": False,
        },
        mutates=True,
        path_parameter=None,
        sandboxed=True,
    ),
    execute=_run_shell,
    describe=_preview_shell,
    key_argument="command",
)


# --- read_file -------------------------------------------------------------------------------------


READ_SKIP = 1 << 16


def _lines(stream: IO[bytes], keep: int) -> Iterator[tuple[bytes, bool]]:
    """Each line of `stream` without its line ending, cut to `keep` bytes, and whether it was cut.

    Memory stays bounded even for a gigabyte file with no newline at all.
    """
    while True:
        piece = stream.readline(keep + 1)
        if not piece:
            return
        if piece.endswith(b"\n"):
            line = piece[:-1]
        else:
            line = piece
            while not piece.endswith(b"\n"):
                piece = stream.readline(READ_SKIP)
                if not piece:
                    break
        cut = len(line) > keep
        yield (line[:keep] if cut else line.removesuffix(b"\r")), cut


def _count_remaining_lines(stream: IO[bytes]) -> int:
    """Lines from the current position (the start of a line) to the end, read in chunks."""
    count = 0
    last = b"\n"
    while chunk := stream.read(READ_SKIP):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    return count + (last != b"\n")


def _decode_line(data: bytes, cut: bool, number: int, shown: str) -> str:
    try:
        # A cut line may end inside a character: let the decoder leave that out.
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=not cut)
    except UnicodeDecodeError:
        raise ToolFailure(
            f"{shown} is not UTF-8 text (invalid byte on line {number}); read_file shows text only. "
            "Use shell (e.g. file, xxd | head) to inspect it."
        ) from None
    if cut or len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS] + f" [... line cut at {MAX_LINE_CHARS} characters]"
    return text


def _read_file(arguments: Arguments, context: ToolContext) -> ToolOutcome:
    shown: str = arguments["path"]
    offset: int = arguments.get("offset", 1)
    limit: int = arguments.get("limit", DEFAULT_READ_LIMIT)
    path = _resolve(shown, context)
    page: list[str] = []
    total = 0
    with _open_for_reading(path, shown, _confinement(context)) as stream:
        if b"\0" in stream.read(BINARY_SNIFF_BYTES):
            raise ToolFailure(
                f"{shown} looks like a binary file (it contains NUL bytes); read_file shows text only. "
                "Use shell (e.g. file, xxd | head) to inspect it."
            )
        stream.seek(0)
        # A line cut at MAX_LINE_CHARS characters needs at most 4 bytes per character.
        for total, (data, cut) in enumerate(_lines(stream, MAX_LINE_CHARS * 4), start=1):
            if total >= offset:
                page.append(f"{total:6}\t{_decode_line(data, cut, total, shown)}")
                if len(page) == limit:
                    total += _count_remaining_lines(stream)
                    break
    if total == 0:
        return ToolOutcome(f"[{shown} is empty]")
    if offset > total:
        raise ToolFailure(f"offset {offset} is past the end of {shown}, which has {total} lines.")
    last = offset + len(page) - 1
    if last < total:
        page.append(f"[lines {offset}-{last} of {total}; call read_file with offset={last + 1} for more]")
    return ToolOutcome("\n".join(page))


def _preview_read(arguments: Arguments, context: ToolContext) -> str:
    shown: str = arguments["path"]
    note = _target_note(_resolve(shown, context), shown, context, "read")
    if "offset" in arguments or "limit" in arguments:
        offset = arguments.get("offset", 1)
        limit = arguments.get("limit", DEFAULT_READ_LIMIT)
        return _with_note(f"{shown} (lines {offset}-{offset + limit - 1})", note)
    return _with_note(shown, note)


READ_FILE_TOOL = Tool(
    spec=ToolSpec(
        name="read_file",
        description=(
            "Read a UTF-8 text file and get its lines numbered from 1, as 'number<TAB>text' (the "
            "numbers are not part of the file). Returns at most `limit` lines (default 2000) starting "
            "at line `offset` (default 1); when more remain, the output ends with a note giving the "
            "offset to ask for next. Lines longer than 2000 characters are cut. Binary files are "
            "refused. Paths are relative to the workspace unless absolute; '~' is not expanded."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File to read."},
                "offset": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Line number to start at (1-based). Default 1.",
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "description": f"Maximum number of lines to return. Default {DEFAULT_READ_LIMIT}.",
                },
            },
            "required": ["path"],
            "additionalProperties": False,
        },
        mutates=False,
        path_parameter="path",
    ),
    execute=_read_file,
    describe=_preview_read,
    key_argument="path",
)


# --- write_file ------------------------------------------------------------------------------------


def write_atomically(path: Path, data: bytes, shown: str, confine_to: str | None = None) -> bool:
    """Replace `path` with `data` so readers see the old file or the new one, never a mix.

    Missing parent directories are created. An existing file keeps its
    permission bits, and a symlink keeps pointing where it did: the file it
    points at is what gets replaced. Returns whether the file existed.

    The temporary file and the rename are relative to the open directory, so
    the file lands in the directory that was opened. With `confine_to`, that
    directory is reached by `_open_beneath` and a symlink now in the file's
    place is refused, so the write stays inside `confine_to`.
    """
    target = _resolve_at_use(path, shown, confine_to, "not written")
    if str(target) == confine_to:
        raise IsADirectoryError(21, "Is a directory", shown)
    if confine_to is None:
        target.parent.mkdir(parents=True, exist_ok=True)
        directory = os.open(target.parent, _DIRECTORY)
    else:
        directory = _open_beneath(confine_to, target.parent, _DIRECTORY, shown, "not written", make_dirs=True)
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


def _count_lines(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _encode(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolFailure(f"{what} contains characters that cannot be written as UTF-8.") from None


def _write_file(arguments: Arguments, context: ToolContext) -> ToolOutcome:
    shown: str = arguments["path"]
    content: str = arguments["content"]
    path = _resolve(shown, context)
    data = _encode(content, "content")
    confine_to = _write_confinement(path, shown, context)
    if path.is_dir():
        raise ToolFailure(f"{shown} is a directory; give the path of a file.")
    existed = write_atomically(path, data, shown, confine_to)
    what = "replaced the previous content" if existed else "new file"
    return ToolOutcome(f"Wrote {len(data)} bytes ({_count_lines(content)} lines) to {shown} ({what})")


def _capped_diff(before: str, after: str, shown: str) -> str:
    import difflib  # here: only a preview needs it, and it is not cheap to import

    old_lines = before.splitlines(keepends=True)
    new_lines = after.splitlines(keepends=True)
    if max(len(old_lines), len(new_lines)) > _DIFF_MAX_LINES:
        return "(file too large to diff)"
    diff = [
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        for line in difflib.unified_diff(old_lines, new_lines, f"a/{shown}", f"b/{shown}")
    ]
    text = "".join(diff).splitlines()
    if not text:
        return "(no changes)"
    if len(text) > PREVIEW_DIFF_LINES:
        hidden = len(text) - PREVIEW_DIFF_LINES
        text = [*text[:PREVIEW_DIFF_LINES], f"[... {hidden} more diff lines]"]
    return "\n".join(text)


def _preview_write(arguments: Arguments, context: ToolContext) -> str:
    shown: str = arguments["path"]
    content: str = arguments["content"]
    path = _resolve(shown, context)
    note = _target_note(path, shown, context, "write")
    size = f"{len(content.encode('utf-8', 'replace'))} bytes, {_count_lines(content)} lines"
    if not path.exists():
        return _with_note(f"{shown} (new file, {size})\n{_capped_diff('', content, shown)}", note)
    header = f"{shown} (overwrite, {size})"
    try:
        before = _read_text(path, shown)
    except ToolFailure as failure:
        return _with_note(f"{header}\n(no diff: {failure})", note)
    return _with_note(f"{header}\n{_capped_diff(before, content, shown)}", note)


WRITE_FILE_TOOL = Tool(
    spec=ToolSpec(
        name="write_file",
        description=(
            "Create a file, or replace a file's whole content, with `content` (UTF-8). Missing parent "
            "directories are created; an existing file keeps its permissions. The write is atomic. "
            "To change part of an existing file, prefer edit_file. Paths are relative to the "
            "workspace unless absolute."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File to write."},
                "content": {"type": "string", "description": "The complete new content of the file."},
            },
            "required": ["path", "content"],
            "additionalProperties": False,
        },
        mutates=True,
        path_parameter="path",
    ),
    execute=_write_file,
    describe=_preview_write,
    key_argument="path",
)


# --- edit_file -------------------------------------------------------------------------------------

_LINE_NUMBER_PREFIX = re.compile(r"^ *\d+\t", re.MULTILINE)


@attrs.frozen
class _Edit:
    before: str
    after: str
    line: int
    """Line number where the replaced text started."""


def _squash(line: str) -> str:
    return " ".join(line.split())


def _whitespace_hint(text: str, old: str) -> str:
    """Where `old` would match if whitespace did not matter, as advice for the model."""
    wanted = [_squash(line) for line in old.strip("\n").split("\n")]
    if not any(wanted):
        return ""
    lines = [_squash(line) for line in text.split("\n")]
    for start in range(len(lines) - len(wanted) + 1):
        if lines[start] == wanted[0] and lines[start : start + len(wanted)] == wanted:
            return (
                f" It does match at line {start + 1} if whitespace (indentation, spaces, line breaks) "
                "is ignored: copy the exact text from read_file's output."
            )
    return ""


def _plan_edit(text: str, old: str, new: str, shown: str) -> _Edit:
    if old == "":
        raise ToolFailure("old_string is empty. To create a file or replace all of it, use write_file.")
    if old == new:
        raise ToolFailure("old_string and new_string are identical; there is nothing to change.")
    if old not in text and "\r\n" in text and "\r" not in old:
        # The file has Windows line endings the model's text does not show.
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
    first = text.find(old)
    if first < 0:
        hint = _whitespace_hint(text, old)
        if not hint and _LINE_NUMBER_PREFIX.search(old):
            hint = " old_string seems to include the line numbers read_file shows; leave them out."
        raise ToolFailure(
            f"old_string was not found in {shown}; nothing was changed. It must match the file "
            f"exactly, including whitespace and indentation.{hint}"
        )
    starts = [first]
    while (following := text.find(old, starts[-1] + 1)) >= 0:
        starts.append(following)
    if len(starts) > 1:
        shown_lines = ", ".join(str(text.count("\n", 0, start) + 1) for start in starts[:10])
        more = ", ..." if len(starts) > 10 else ""
        raise ToolFailure(
            f"old_string matches {len(starts)} times in {shown} (at lines {shown_lines}{more}); nothing "
            "was changed. Include more surrounding lines so that it matches exactly once."
        )
    after = text[:first] + new + text[first + len(old) :]
    return _Edit(before=text, after=after, line=text.count("\n", 0, first) + 1)


def _edit_file(arguments: Arguments, context: ToolContext) -> ToolOutcome:
    shown: str = arguments["path"]
    path = _resolve(shown, context)
    confine_to = _write_confinement(path, shown, context)
    text = _read_text(path, shown, confine_to)
    edit = _plan_edit(text, arguments["old_string"], arguments["new_string"], shown)
    write_atomically(path, _encode(edit.after, "new_string"), shown, confine_to)
    removed = _count_lines(arguments["old_string"])
    added = _count_lines(arguments["new_string"])
    return ToolOutcome(
        f"Edited {shown} at line {edit.line}: replaced {removed} line(s) with {added} line(s)."
    )


def _preview_edit(arguments: Arguments, context: ToolContext) -> str:
    shown: str = arguments["path"]
    path = _resolve(shown, context)
    note = _target_note(path, shown, context, "edit")
    edit = _plan_edit(_read_text(path, shown), arguments["old_string"], arguments["new_string"], shown)
    diff = _capped_diff(edit.before, edit.after, shown)
    return f"{note}\n{diff}" if note else diff


EDIT_FILE_TOOL = Tool(
    spec=ToolSpec(
        name="edit_file",
        description=(
            "Replace one piece of text in an existing file: `old_string` must occur in the file "
            "exactly once, matching character for character, including whitespace, indentation and "
            "line breaks; it is replaced by `new_string`. Read the file first and copy the text from "
            "it (without read_file's line numbers), with enough surrounding lines to make it unique. "
            "If it is not found or matches several times, nothing changes and the error says why."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File to edit."},
                "old_string": {"type": "string", "description": "Exact text to replace; must be unique."},
                "new_string": {"type": "string", "description": "Text to put in its place."},
            },
            "required": ["path", "old_string", "new_string"],
            "additionalProperties": False,
        },
        mutates=True,
        path_parameter="path",
    ),
    execute=_edit_file,
    describe=_preview_edit,
    key_argument="path",
)


# --- registry --------------------------------------------------------------------------------------

TOOLS: tuple[Tool, ...] = (SHELL_TOOL, READ_FILE_TOOL, WRITE_FILE_TOOL, EDIT_FILE_TOOL)


def tool_specs() -> tuple[ToolSpec, ...]:
    return tuple(tool.spec for tool in TOOLS)


def find_tool(name: str) -> Tool | None:
    for tool in TOOLS:
        if tool.spec.name == name:
            return tool
    return None


def approved_at_prompt(name: str, context: ToolContext) -> ToolContext:
    """The context a call the user approved at the prompt runs in: the question was asked
    because the call leaves the sandbox, so it runs without the sandbox's file boundary --
    except a tool that runs inside the OS sandbox whatever it is approved for (the shell)."""
    tool = find_tool(name)
    if tool is not None and tool.spec.sandboxed:
        return context
    return attrs.evolve(context, sandbox=None)


def run_tool(name: str, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutcome:
    """Run a tool by name. Errors come back as outcomes; KeyboardInterrupt propagates."""
    tool = find_tool(name)
    if tool is None:
        known = ", ".join(tool.spec.name for tool in TOOLS)
        return ToolOutcome(f"Error: there is no tool named {name!r}; the tools are {known}.", is_error=True)
    try:
        return tool.run(arguments, context)
    except Exception as error:  # a bug must not end the session; the model and the user see it
        return ToolOutcome(
            f"Error: {name} failed unexpectedly: {type(error).__name__}: {error}", is_error=True
        )
