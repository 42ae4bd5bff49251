"""The one place that makes untrusted text safe to show on a terminal.

Untrusted text reaches the screen only through `for_terminal` (`for_command` where a person must
see exactly what would run; `json_text` for `--json`): control characters become visible escapes,
so nothing can move the cursor, retitle the window or reorder text.
"""

from __future__ import annotations

import json
import re
from typing import Any

# DEL, C1 controls, the bidirectional formatting characters, zero-width and BOM characters that
# can hide text, line/paragraph separators, and lone surrogates (undecodable file names).
_HIDING = "\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f{_HIDING}]")
"""What `for_terminal` escapes: C0 controls but tab and newline, and `_HIDING`."""
_JSON_UNSAFE = re.compile(f"[{_HIDING}]")
"""What JSON leaves unescaped but a terminal must not get."""


def _escape(char: str) -> str:
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """`text` with every character that could control the terminal shown as an escape."""
    if text.isascii() and text.isprintable():
        return text  # the common case, checked in C
    return _UNSAFE.sub(lambda match: _escape(match.group()), text.replace("\r\n", "\n"))


def for_command(text: str) -> tuple[str, bool]:
    """A command exactly as it would run, safe to show, and whether anything was escaped: every
    non-printable character but newline and tab (CR-LF included), so what is approved is what runs."""
    if text.isascii() and text.isprintable():
        return text, False
    shown = "".join(char if char.isprintable() or char in "\n\t" else _escape(char) for char in text)
    return shown, shown != text


def json_text(value: Any) -> str:
    """One line of JSON, UTF-8 where safe, with terminal-unsafe characters as `\\u` escapes."""
    text = json.dumps(value, ensure_ascii=False)
    if text.isascii() and "\x7f" not in text:
        return text
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
