"""Reading request bodies in tests: a message's text, whether it went as a string or as a text
part carrying a prompt-cache marker (the default model, Claude, gets markers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nano_code.testing.cache_billing import unmarked_message


def text(message: Mapping[str, Any]) -> str:
    """The message's text; "" for none."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return content if isinstance(content, str) else ""


def unmarked(body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` as it was before cache markers: no marker, no `prompt_cache_key`."""
    plain = {key: value for key, value in body.items() if key != "prompt_cache_key"}
    plain["messages"] = [unmarked_message(message)[0] for message in body.get("messages", [])]
    return plain
