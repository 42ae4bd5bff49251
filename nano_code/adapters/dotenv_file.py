"""Reading a `.env` file exactly as python-dotenv 1.x does, which users write it against:
`export`, quotes and escapes, inline comments, multi-line values, `${NAME:-default}`; a
statement that does not parse is skipped to its line's end. "Blank" is whitespace but CR/LF.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_BLANKS = r"[^\S\r\n]"
_SKIP_WHITESPACE = re.compile(r"\s*")
_EXPORT_PREFIX = re.compile(rf"export{_BLANKS}+")
_QUOTED_KEY = re.compile(r"'([^']+)'")
_BARE_KEY = re.compile(r"[^=#\s]+")
_INLINE_BLANKS = re.compile(f"{_BLANKS}*")
_EQUALS = re.compile(f"={_BLANKS}*")
# Inside quotes a backslash takes the next character with it; a quoted value may span lines.
_SINGLE_QUOTED = re.compile(r"'((?:\\.|[^'\\])*)'", re.DOTALL)
_DOUBLE_QUOTED = re.compile(r'"((?:\\.|[^"\\])*)"', re.DOTALL)
_TO_END_OF_LINE = re.compile(r"[^\r\n]*")
_WHITESPACE_THEN_HASH = re.compile(r"\s#")
_TRAILING_COMMENT = re.compile(f"(?:{_BLANKS}*#[^\\r\\n]*)?")
_END_OF_LINE = re.compile(f"{_BLANKS}*(?:\r\n|\n|\r|$)")
_REST_OF_BAD_LINE = re.compile(r"[^\r\n]*(?:\r|\n)?")
_VARIABLE = re.compile(r"\$\{([^}:]*)(?::-([^}]*))?\}")

_DOUBLE_QUOTE_ESCAPES = re.compile(r"\\[\\'\"abfnrtv]")
_SINGLE_QUOTE_ESCAPES = re.compile(r"\\[\\']")
_ESCAPED = dict(zip("\\'\"abfnrtv", "\\'\"\a\b\f\n\r\t\v", strict=True))


def _unescape(pattern: re.Pattern[str], raw: str) -> str:
    return pattern.sub(lambda m: _ESCAPED[m.group()[1]], raw)


class _BadStatement(Exception):
    """A statement that does not parse at `args[0]`; scanning resumes at that line's end."""


def _match(pattern: re.Pattern[str], text: str, pos: int) -> re.Match[str]:
    found = pattern.match(text, pos)
    if found is None:
        raise _BadStatement(pos)
    return found


def _read_value(text: str, pos: int) -> tuple[str, int]:
    first = text[pos : pos + 1]
    if first == "'":
        found = _match(_SINGLE_QUOTED, text, pos)
        return _unescape(_SINGLE_QUOTE_ESCAPES, found.group(1)), found.end()
    if first == '"':
        found = _match(_DOUBLE_QUOTED, text, pos)
        return _unescape(_DOUBLE_QUOTE_ESCAPES, found.group(1)), found.end()
    if first in ("", "\n", "\r"):
        return "", pos
    found = _match(_TO_END_OF_LINE, text, pos)
    raw = found.group()
    comment = _WHITESPACE_THEN_HASH.search(raw)
    if comment is not None:
        raw = raw[: comment.start()]
    return raw.rstrip(), found.end()


def _read_statement(text: str, pos: int) -> tuple[str | None, str | None, int]:
    """(key, value, position after the line end) of one `[export] KEY[=VALUE] [# comment]`:
    key None for a comment line, value None for a key without `=`."""
    export = _EXPORT_PREFIX.match(text, pos)
    if export is not None:
        pos = export.end()
    key: str | None = None
    first = text[pos : pos + 1]
    if first == "'":
        found = _match(_QUOTED_KEY, text, pos)
        key, pos = found.group(1), found.end()
    elif first != "#":
        found = _match(_BARE_KEY, text, pos)
        key, pos = found.group(), found.end()
    pos = _match(_INLINE_BLANKS, text, pos).end()
    value: str | None = None
    if text.startswith("=", pos):
        equals = _match(_EQUALS, text, pos)
        blank_after_equals = equals.end() - pos > 1
        pos = equals.end()
        if blank_after_equals and text.startswith("#", pos):
            value = ""  # `KEY= # comment` is an empty value
        else:
            value, pos = _read_value(text, pos)
    pos = _match(_TRAILING_COMMENT, text, pos).end()
    pos = _match(_END_OF_LINE, text, pos).end()
    return key, value, pos


def _scan(text: str) -> list[tuple[str, str | None]]:
    text = text.removeprefix("\ufeff")
    bindings: list[tuple[str, str | None]] = []
    pos = 0
    while pos < len(text):
        pos = _match(_SKIP_WHITESPACE, text, pos).end()
        if pos >= len(text):
            break
        try:
            key, value, pos = _read_statement(text, pos)
        except _BadStatement as bad:
            pos = _match(_REST_OF_BAD_LINE, text, bad.args[0]).end()
            continue
        if key is not None:
            bindings.append((key, value))
    return bindings


def parse_dotenv(text: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A `.env`'s text as {name: value}, as python-dotenv's `dotenv_values` reads it (minus
    keys without `=`); never raises. `${NAME}` expands from the assignments above, then from
    `environ` (python-dotenv reads `os.environ`; passing it keeps this pure)."""
    outside: Mapping[str, str] = environ if environ is not None else {}
    expanded: dict[str, str | None] = {}

    def substitute(found: re.Match[str]) -> str:
        name, default = found.group(1), found.group(2)
        if name in expanded:
            return expanded[name] or ""
        if name in outside:
            return outside[name]
        return default or ""

    for key, raw in _scan(text):
        expanded[key] = None if raw is None else _VARIABLE.sub(substitute, raw)
    return {key: value for key, value in expanded.items() if value is not None}
