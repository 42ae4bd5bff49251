"""The one place where anything read from a session, a table or a manifest becomes HTML.

Everything is shown as text, never markup: control, bidirectional and zero-width characters
become visible escapes first (the terminal's rule, `for_terminal`), then `html.escape(quote=True)`
makes `<`, `>`, `&` and both quotes inert, in element text and attribute values alike. Text is
bounded: a long one is cut to its head and tail with a note (the session file keeps it whole).
"""

from __future__ import annotations

import html
import json
from typing import Any

from nano_code.adapters.safe_text import for_terminal

SHOWN_CHARS = 20_000
"""The most of one text a page shows: its head and tail, the middle replaced by a note."""
TAIL_CHARS = 5_000
FOLD_CHARS = 1_200
FOLD_LINES = 16
"""A text longer than either is folded: its first line shows, the rest opens on a click."""
PREVIEW_CHARS = 160


def text(value: object) -> str:
    """`value` as HTML text, safe in an element and in a quoted attribute value."""
    shown = value if isinstance(value, str) else str(value)
    return html.escape(for_terminal(shown), quote=True)


def bounded(value: str, limit: int = SHOWN_CHARS) -> str:
    """`value`, or its head and tail with a note saying how much was left out, within ~`limit`."""
    if len(value) <= limit:
        return value
    tail = min(TAIL_CHARS, limit // 4)
    head = limit - tail
    left_out = len(value) - head - tail
    note = (
        f"\n\n[\u2026 {left_out:,} characters not shown, of {len(value):,}: "
        "the session file holds them all \u2026]\n\n"
    )
    return value[:head] + note + value[len(value) - tail :]


def preview(value: str) -> str:
    """The first line of `value` (or its start), short enough for a one-line summary."""
    stripped = value.lstrip()
    first = stripped.split("\n", 1)[0] if "\n" in stripped[: PREVIEW_CHARS + 1] else stripped
    return first if len(first) <= PREVIEW_CHARS else first[: PREVIEW_CHARS - 1] + "\u2026"


def is_long(value: str) -> bool:
    return len(value) > FOLD_CHARS or value.count("\n", 0, FOLD_CHARS + 1) >= FOLD_LINES


def block(value: str, css: str = "", fold: bool = True, label: str = "") -> str:
    """`value` as a preformatted block; folded into a <details> when long (its first line shows)."""
    shown = bounded(value)
    pre = f'<pre class="{css}">{text(shown)}</pre>' if css else f"<pre>{text(shown)}</pre>"
    if not fold or not is_long(value):
        return pre
    lines = value.count("\n") + 1
    size = f"{lines:,} lines, {len(value):,} characters"
    head = f"{text(label)} " if label else ""
    return (
        f'<details class="fold"><summary>{head}<span class="preview">{text(preview(value))}</span>'
        f' <span class="size">({size})</span></summary>{pre}</details>'
    )


def json_value(value: Any) -> str:
    """A JSON value as readable text: strings as they are, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return "(not shown: nested too deeply to write out)"


def number(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def seconds(milliseconds: int | None) -> str:
    """A duration in milliseconds as a short text: 850 ms, 3.2 s, 4 min 05 s."""
    if milliseconds is None:
        return ""
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    if milliseconds < 60_000:
        return f"{milliseconds / 1000:.1f} s"
    minutes, rest = divmod(milliseconds // 1000, 60)
    return f"{minutes} min {rest:02d} s"


def money(cost: object) -> str:
    """A cost in USD as the server reported it (up to 6 decimals); "" when none was reported."""
    if cost is None or cost == "":
        return ""
    try:
        amount = float(str(cost))
    except ValueError:
        return str(cost)
    return f"${amount:.6f}".rstrip("0").rstrip(".") if amount else "$0"
