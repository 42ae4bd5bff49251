"""Where two JSON values differ (`$.messages[3].content`) and what both sides hold, for
replay and `nano-code diff`. Masks (`--ignore`) are path patterns:

    $.messages[*].content      any element of an array (or any key: `$.*.x`)
    $..id                      a key at any depth
    $.tools                    a subtree: everything under it is masked too
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import zip_longest
from typing import Any

import attrs

_TOKEN = re.compile(r"\.\.(?P<deep>[^.\[\]]+)|\.(?P<key>[^.\[\]]+)|\[(?P<index>\*|\d+)\]")
MISSING = "<missing>"  # how a report shows what one side does not have
_ABSENT = object()  # compared by identity, so a literal "<missing>" value still differs from an absent one


@attrs.frozen
class Difference:
    path: str
    recorded: Any
    actual: Any


class MaskError(ValueError):
    """A --ignore pattern that is not a path like $.a.b[*].c or $..id."""


@attrs.frozen
class Mask:
    pattern: str
    tokens: tuple[tuple[str, str], ...]

    @staticmethod
    def parse(pattern: str) -> Mask:
        if not pattern.startswith("$"):
            raise MaskError(f"mask {pattern!r} must start with '$'")
        rest = pattern[1:]
        tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(rest):
            match = _TOKEN.match(rest, position)
            if match is None:
                raise MaskError(f"mask {pattern!r}: cannot read {rest[position:]!r}")
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return Mask(pattern, tuple(tokens))

    def covers(self, path: Sequence[str | int]) -> bool:
        """True when `path` is the masked location or inside it."""
        return _match(self.tokens, tuple(path))


def _match(tokens: tuple[tuple[str, str], ...], path: tuple[str | int, ...]) -> bool:
    if not tokens:
        return True  # the mask ended: everything below is masked
    if not path:
        return False
    kind, value = tokens[0]
    head = path[0]
    if kind == "deep":
        return (head == value and _match(tokens[1:], path[1:])) or _match(tokens, path[1:])
    if kind == "index":
        fits = isinstance(head, int) and (value == "*" or int(value) == head)
    else:
        fits = value in ("*", head)
    return fits and _match(tokens[1:], path[1:])


def format_path(path: Sequence[str | int]) -> str:
    parts = ["$"]
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", step):
            parts.append(f".{step}")
        else:
            parts.append(f"[{step!r}]")
    return "".join(parts)


def differences(
    recorded: Any, actual: Any, masks: Iterable[Mask] = (), limit: int = 50
) -> tuple[list[Difference], list[str]]:
    """(differences not covered by a mask, mask patterns that hid at least one)."""
    masks = tuple(masks)
    found: list[Difference] = []
    used: set[str] = set()

    def walk(a: Any, b: Any, path: tuple[str | int, ...]) -> None:
        if len(found) >= limit:
            return
        for mask in masks:
            if mask.covers(path):
                if a != b:
                    used.add(mask.pattern)
                return
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in list(a) + [k for k in b if k not in a]:
                walk(a.get(key, _ABSENT), b.get(key, _ABSENT), (*path, str(key)))
        elif isinstance(a, list) and isinstance(b, list):
            for index, (x, y) in enumerate(zip_longest(a, b, fillvalue=_ABSENT)):
                walk(x, y, (*path, index))
        elif a != b or type(a) is not type(b):
            shown = tuple(MISSING if side is _ABSENT else side for side in (a, b))
            found.append(Difference(format_path(path), shown[0], shown[1]))

    walk(recorded, actual, ())
    return found, sorted(used)


def _short(value: Any, width: int = 160) -> str:
    text = value if value == MISSING else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 15] + f"... ({len(text)} chars)"


def _around_change(recorded: Any, actual: Any, width: int = 160) -> tuple[str, str]:
    """Both sides shortened; two long strings are shown around their first difference."""
    plain = _short(recorded, width), _short(actual, width)
    both_text = isinstance(recorded, str) and isinstance(actual, str) and MISSING not in (recorded, actual)
    if not both_text or all(len(json.dumps(t, ensure_ascii=False)) <= width for t in (recorded, actual)):
        return plain
    at = 0
    while at < min(len(recorded), len(actual)) and recorded[at] == actual[at]:
        at += 1
    begin = max(0, at - 40)
    window = width // 2

    def excerpt(text: str) -> str:
        piece = json.dumps(text[begin : begin + window], ensure_ascii=False)
        head = "..." if begin else ""
        tail = "..." if begin + window < len(text) else ""
        return f"{head}{piece}{tail} ({len(text)} chars, first difference at char {at})"

    return excerpt(recorded), excerpt(actual)


def render(found: Iterable[Difference], labels: tuple[str, str] = ("recorded", "new")) -> str:
    """A report: each difference's path, then its two sides, named by `labels`."""
    width = max(len(labels[0]), len(labels[1])) + 1
    lines = []
    for difference in found:
        recorded, actual = _around_change(difference.recorded, difference.actual)
        lines.append(f"  {difference.path}")
        lines.append(f"    - {(labels[0] + ':').ljust(width)} {recorded}")
        lines.append(f"    + {(labels[1] + ':').ljust(width)} {actual}")
    return "\n".join(lines)
