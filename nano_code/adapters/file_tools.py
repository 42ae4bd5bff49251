"""The file tools: read_file, write_file and edit_file, each with its approval preview."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from typing import IO

from nano_code.adapters.file_access import (
    BINARY_SNIFF_BYTES,
    confinement,
    open_for_reading,
    read_text,
    resolve,
    target_note,
    with_note,
    write_atomically,
    write_confinement,
)
from nano_code.adapters.tool import Arguments, Tool, ToolContext, ToolFailure, ToolOutcome
from nano_code.kernel.types import ToolSpec

DEFAULT_READ_LIMIT = 2000
MAX_LINE_CHARS = 2000
READ_SKIP = 1 << 16
PREVIEW_DIFF_LINES = 80
DIFF_MAX_LINES = 20_000
"""Past this many lines on either side the preview skips the diff (difflib gets slow)."""


def _lines(stream: IO[bytes], keep: int) -> Iterator[tuple[bytes, bool]]:
    """Each line of `stream` without its line ending, cut to `keep` bytes (memory stays bounded), and
    whether it was cut."""
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
    path = resolve(shown, context)
    page: list[str] = []
    total = 0
    with open_for_reading(path, shown, confinement(context)) as stream:
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
    note = target_note(resolve(shown, context), shown, context, "read")
    if "offset" in arguments or "limit" in arguments:
        offset = arguments.get("offset", 1)
        limit = arguments.get("limit", DEFAULT_READ_LIMIT)
        return with_note(f"{shown} (lines {offset}-{offset + limit - 1})", note)
    return with_note(shown, note)


def _file_tool(
    name: str,
    description: str,
    properties: dict[str, object],
    required: list[str],
    *,
    execute: Callable[[Arguments, ToolContext], ToolOutcome],
    describe: Callable[[Arguments, ToolContext], str],
) -> Tool:
    """A tool on the file at its `path` argument; only read_file leaves the file unchanged."""
    parameters = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    spec = ToolSpec(name, description, parameters, mutates=name != "read_file", path_parameter="path")
    return Tool(spec=spec, execute=execute, describe=describe, key_argument="path")


READ_FILE_TOOL = _file_tool(
    "read_file",
    (
        "Read a UTF-8 text file and get its lines numbered from 1, as 'number<TAB>text' (the "
        "numbers are not part of the file). Returns at most `limit` lines (default 2000) starting "
        "at line `offset` (default 1); when more remain, the output ends with a note giving the "
        "offset to ask for next. Lines longer than 2000 characters are cut. Binary files are "
        "refused. Paths are relative to the workspace unless absolute; '~' is not expanded."
    ),
    {
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
    ["path"],
    execute=_read_file,
    describe=_preview_read,
)


# --- write_file ------------------------------------------------------------------------------------


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
    path = resolve(shown, context)
    data = _encode(content, "content")
    confine_to = write_confinement(path, shown, context)
    if path.is_dir():
        raise ToolFailure(f"{shown} is a directory; give the path of a file.")
    existed = write_atomically(path, data, shown, confine_to)
    what = "replaced the previous content" if existed else "new file"
    return ToolOutcome(f"Wrote {len(data)} bytes ({_count_lines(content)} lines) to {shown} ({what})")


def _capped_diff(before: str, after: str, shown: str) -> str:
    import difflib  # here: only a preview needs it, and it is not cheap to import

    old_lines = before.splitlines(keepends=True)
    new_lines = after.splitlines(keepends=True)
    if max(len(old_lines), len(new_lines)) > DIFF_MAX_LINES:
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
    path = resolve(shown, context)
    note = target_note(path, shown, context, "write")
    size = f"{len(content.encode('utf-8', 'replace'))} bytes, {_count_lines(content)} lines"
    if not path.exists():
        return with_note(f"{shown} (new file, {size})\n{_capped_diff('', content, shown)}", note)
    header = f"{shown} (overwrite, {size})"
    try:
        before = read_text(path, shown)
    except ToolFailure as failure:
        return with_note(f"{header}\n(no diff: {failure})", note)
    return with_note(f"{header}\n{_capped_diff(before, content, shown)}", note)


WRITE_FILE_TOOL = _file_tool(
    "write_file",
    (
        "Create a file, or replace a file's whole content, with `content` (UTF-8). Missing parent "
        "directories are created; an existing file keeps its permissions. The write is atomic. "
        "To change part of an existing file, prefer edit_file. Paths are relative to the "
        "workspace unless absolute."
    ),
    {
        "path": {"type": "string", "description": "File to write."},
        "content": {"type": "string", "description": "The complete new content of the file."},
    },
    ["path", "content"],
    execute=_write_file,
    describe=_preview_write,
)

# --- edit_file -------------------------------------------------------------------------------------

_LINE_NUMBER_PREFIX = re.compile(r"^ *\d+\t", re.MULTILINE)


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


def _plan_edit(text: str, old: str, new: str, shown: str) -> tuple[str, int]:
    """The text after the edit, and the line where the replaced text started."""
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
    return text[:first] + new + text[first + len(old) :], text.count("\n", 0, first) + 1


def _edit_file(arguments: Arguments, context: ToolContext) -> ToolOutcome:
    shown: str = arguments["path"]
    path = resolve(shown, context)
    confine_to = write_confinement(path, shown, context)
    text = read_text(path, shown, confine_to)
    after, line = _plan_edit(text, arguments["old_string"], arguments["new_string"], shown)
    write_atomically(path, _encode(after, "new_string"), shown, confine_to)
    removed = _count_lines(arguments["old_string"])
    added = _count_lines(arguments["new_string"])
    return ToolOutcome(f"Edited {shown} at line {line}: replaced {removed} line(s) with {added} line(s).")


def _preview_edit(arguments: Arguments, context: ToolContext) -> str:
    shown: str = arguments["path"]
    path = resolve(shown, context)
    note = target_note(path, shown, context, "edit")
    before = read_text(path, shown)
    after, _ = _plan_edit(before, arguments["old_string"], arguments["new_string"], shown)
    diff = _capped_diff(before, after, shown)
    return f"{note}\n{diff}" if note else diff


EDIT_FILE_TOOL = _file_tool(
    "edit_file",
    (
        "Replace one piece of text in an existing file: `old_string` must occur in the file "
        "exactly once, matching character for character, including whitespace, indentation and "
        "line breaks; it is replaced by `new_string`. Read the file first and copy the text from "
        "it (without read_file's line numbers), with enough surrounding lines to make it unique. "
        "If it is not found or matches several times, nothing changes and the error says why."
    ),
    {
        "path": {"type": "string", "description": "File to edit."},
        "old_string": {"type": "string", "description": "Exact text to replace; must be unique."},
        "new_string": {"type": "string", "description": "Text to put in its place."},
    },
    ["path", "old_string", "new_string"],
    execute=_edit_file,
    describe=_preview_edit,
)
