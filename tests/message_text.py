"""Reading request bodies in tests: a message's text, whether it went as a string or as a text
part carrying a prompt-cache marker (the default model, Claude, gets markers)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def text(message: Mapping[str, Any]) -> str:
    """The message's text; "" for none."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return content if isinstance(content, str) else ""


def unmarked(body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` as it was before cache markers: each one-part marked content back to its string."""
    plain = copy.deepcopy(dict(body))
    for message in plain.get("messages", []):
        content = message.get("content")
        if isinstance(content, list) and len(content) == 1:
            part = content[0]
            if set(part) - {"type", "text"} <= {"cache_control", "prompt_cache_breakpoint"}:
                message["content"] = part["text"]
    plain.pop("prompt_cache_key", None)
    return plain
