"""What an error response says, as one readable line: its message (in any envelope
shape, QUIRKS H), an HTML page's title, a header value -- control characters out, capped."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from nano_code.kernel.request import clean_text

MAX_ERROR_TEXT = 500
"""Longest server-written text in a failure message (a page must not flood the terminal)."""
MAX_HEADER_TEXT = 200

_ELLIPSIS = "\u2026"


def one_line(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """`text` with its whitespace runs collapsed to single spaces, cut to `limit` characters."""
    text = " ".join(text.lstrip()[: limit * 4 + 64].split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + _ELLIPSIS


def header(headers: Mapping[str, str], name: str) -> str:
    """The value of header `name` (lowercase; headers match whatever their case), or ""."""
    return next((v for k, v in headers.items() if k.lower() == name and isinstance(v, str)), "")


def header_text(value: str, limit: int = MAX_HEADER_TEXT) -> str:
    """A header value made safe to quote: on one line, no control characters, capped."""
    visible = "".join(ch if ch.isprintable() else " " for ch in value[: limit * 4 + 64])
    return clean_text(one_line(visible, limit))


def error_object(payload: object) -> Mapping[str, Any] | None:
    """The error object of any envelope shape (QUIRKS H-32), or None; a string `error`
    beside a `message` or `detail` becomes one object whose message says both."""
    if not isinstance(payload, Mapping):
        return None
    inner = payload.get("error")
    if isinstance(inner, Mapping):
        return inner
    if isinstance(inner, str) and inner.strip():
        name = inner.strip()
        detail = _human_text(payload.get("message")) or _human_text(payload.get("detail"))
        message = detail or name if not detail or detail.startswith(name) else f"{name}: {detail}"
        codes = {key: payload[key] for key in ("code", "type", "status", "status_code") if key in payload}
        return {**codes, "message": message}
    if payload.get("object") == "error" or (
        "message" in payload and "choices" not in payload and ("code" in payload or "type" in payload)
    ):
        return payload
    return None


_TEXT_KEYS = ("message", "detail", "msg", "error_message", "description", "title")


def _human_text(value: object, depth: int = 0) -> str:
    """The readable text of an error value: a string, an object's message, a list's texts."""
    if isinstance(value, str):
        return value.strip()
    if depth >= 4:
        return ""
    if isinstance(value, Mapping):
        for key in _TEXT_KEYS:
            text = _human_text(value.get(key), depth + 1)
            if text:
                where = _location(value.get("loc"))
                return f"{text} ({where})" if where else text
        return ""
    if isinstance(value, list):
        texts = (_human_text(item, depth + 1) for item in value[:8])
        return "; ".join(dict.fromkeys(text for text in texts if text))  # each text once, in order
    return ""


def _location(loc: object) -> str:
    """FastAPI's `loc` (["body", "messages", 0]) as `body.messages.0`."""
    if not isinstance(loc, list):
        return ""
    parts = [str(p) for p in loc[:8] if isinstance(p, (str, int)) and not isinstance(p, bool)]
    return one_line(".".join(parts), 80)


def _is_name(value: str) -> bool:
    """A code or type worth showing: not a number, not a stringified null."""
    value = value.strip()
    return bool(value) and not value.isdigit() and value.lower() not in ("none", "null")


def error_message(error: Mapping[str, Any] | None, fallback: str) -> str:
    if error is None:
        return fallback
    texts = (_human_text(error.get(key)) for key in ("message", "detail", "msg", "errors", "error"))
    text = next((text for text in texts if text), "")
    if not text:
        # No words at all: the code or type is the best there is.
        names = (error.get(key) for key in ("code", "type"))
        text = next((n.strip() for n in names if isinstance(n, str) and _is_name(n)), "") or fallback
    metadata = error.get("metadata")
    if isinstance(metadata, Mapping):
        raw = metadata.get("raw")
        provider = metadata.get("provider_name")
        if isinstance(raw, str) and raw:
            try:
                upstream = error_object(json.loads(raw))
            except (ValueError, RecursionError):
                upstream = None
            detail = error_message(upstream, raw) if upstream else raw
            text = f"{text}: {one_line(detail, 300)}"
        if isinstance(provider, str) and provider:
            text = f"{text} (provider {one_line(provider, 60)})"
    window = error.get("n_ctx")
    if isinstance(window, int) and not isinstance(window, bool) and window > 0:
        # llama.cpp states its context window only in this field: say it, so it can be learned.
        text = f"{one_line(text, MAX_ERROR_TEXT - 40)} (context size: {window} tokens)"
    return one_line(text, MAX_ERROR_TEXT)


_TAG = re.compile(r"<[^<>]*>")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")
_NAMED_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'", "nbsp": " "}
_HTML_HEAD = 65_536  # characters of an HTML page read for its title or first words
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _lower(text: str) -> str:
    """ASCII-only lowercasing: unlike str.lower it keeps every index in place."""
    return text.translate(_ASCII_LOWER)


def _unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("#"):
            number = int(name[2:], 16) if name[1:2] in ("x", "X") else int(name[1:])
            return chr(number) if 0 < number < 0x110000 and not 0xD800 <= number < 0xE000 else "\ufffd"
        return _NAMED_ENTITIES.get(name.lower(), match.group())

    return _ENTITY.sub(replace, text)


def _find_tag(lowered: str, tag: str, start: int) -> int:
    """Index of the first `<tag` (or `</tag`) at or after `start` that is the whole tag name."""
    while True:
        found = lowered.find(tag, start)
        end = found + len(tag)
        if found < 0 or end >= len(lowered) or lowered[end] in " \t\r\n/>":
            return found
        start = found + 1


def _element(lowered: str, tag: str, start: int = 0) -> tuple[int, int, int] | None:
    """(start of `<tag`, of its content, of `</tag`) of the first such element from
    `start`, or None. Each search moves forward: linear time."""
    begin = _find_tag(lowered, f"<{tag}", start)
    if begin < 0:
        return None
    content = lowered.find(">", begin)
    if content < 0:
        return None
    end = _find_tag(lowered, f"</{tag}", content + 1)
    return (begin, content + 1, end) if end >= 0 else None


def _without_elements(text: str, tag: str) -> str:
    """`text` without its <tag>...</tag> elements (script, style)."""
    lowered = _lower(text)
    kept: list[str] = []
    position = 0
    while (found := _element(lowered, tag, position)) is not None:
        kept.append(text[position : found[0]])
        closing = lowered.find(">", found[2])
        position = len(text) if closing < 0 else closing + 1
    kept.append(text[position:])
    return "".join(kept)


def body_text(text: str) -> str:
    """A non-JSON error body on one capped line: an HTML page's title or first words."""
    head = text[:_HTML_HEAD]
    lowered = _lower(head)
    if not re.search(r"<(?:!doctype|html|head|body|title)\b", lowered[:2048]):
        return one_line(text)
    title = _element(lowered, "title")
    if title is not None:
        text = one_line(_unescape(_TAG.sub(" ", head[title[1] : title[2]])))
        if text:
            return text
    for tag in ("script", "style", "title"):
        head = _without_elements(head, tag)
    return one_line(_unescape(_TAG.sub(" ", head)))
