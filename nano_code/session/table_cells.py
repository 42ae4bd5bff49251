"""Text cells of the corpus tables, made safe for whatever opens them.

A cell holds what models, servers and tools said, so it may be hostile: it is cut, its control
characters are escaped, and text a spreadsheet would read as a formula gets a leading `'` (OWASP).
"""

from __future__ import annotations

import re

from nano_code.adapters.safe_text import for_terminal

CELL_CHARS = 32_000
"""The longest text cell: under Excel's 32,767."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20", "'")
"""What a spreadsheet reads as the start of a formula (and `'`, to keep the rule reversible)."""

_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
"""Every line boundary `str.splitlines` knows."""


def cut(text: str, limit: int = CELL_CHARS) -> str:
    """`text`, or its head with a marker saying how long it was, within `limit` characters."""
    if len(text) <= limit:
        return text
    marker = f"\u2026 [cut: {len(text):,} characters in all]"
    return text[: limit - len(marker)] + marker


def first_line(text: str) -> str:
    """`text.strip().splitlines()[0]` (or ""), without splitting a huge text into all its lines."""
    text = text.strip()
    match = _LINE_BREAK.search(text)
    return text if match is None else text[: match.start()]


def csv_text(text: str) -> str:
    """A text cell as it goes into a CSV file: cut, control characters escaped, never a formula."""
    shown = cut(for_terminal(cut(text)))
    return "'" + shown if shown.startswith(_FORMULA_START) else shown
