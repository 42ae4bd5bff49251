"""Prompt-cache markers: which a request carries and on which messages, as a pure function of
the config and the history (so a replay rebuilds every marker exactly).

Anthropic's models cache a prefix only where a content block asks for it; a read then costs
0.1x the input price and a write 1.25x. A marker goes on the system prompt (the tools precede
it, so it caches them too), on the newest message (the next step reads everything up to it),
and on the newest message of the previous request: the server looks back only about 20 blocks
from a marker for an earlier entry, and one step with many parallel tool calls adds more, so
the spot the previous request wrote is marked again to be read exactly. Three at most; the
servers allow four.

Markers go on text content parts (`{"type": "text", "text": ..., MARK}`), not OpenRouter's
top-level `cache_control`: the top-level form places a single marker at the end and is not
taken by Claude on Bedrock or Vertex, where OpenRouter may route a request; per-part markers
work on every route. OpenAI's own explicit breakpoints (gpt-5.6 and later) take the same
places; `prompt_cache_options` keeps its default (implicit mode), which writes the latest three
explicit breakpoints besides its own. A marker never changes a message's text, and without markers a body is exactly what
it was before markers existed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nano_code.kernel.events import ModelFailure
from nano_code.kernel.types import AssistantMessage, KernelConfig, Message, PromptCache, Server, SystemMessage

CACHE_CONTROL: Mapping[str, Any] = {"cache_control": {"type": "ephemeral"}}
"""Anthropic's marker, which OpenRouter also takes for Gemini."""
OPENAI_BREAKPOINT: Mapping[str, Any] = {"prompt_cache_breakpoint": {"mode": "explicit"}}
"""OpenAI's explicit breakpoint (`PromptCacheBreakpointParam` in the API 2.3.0 schema)."""

_OPENAI_EXPLICIT = re.compile(r"gpt-(\d{1,4})(?:\.(\d{1,4}))?(?!\d)")  # bounded: a file names the model
_REFUSAL_WORDS = ("cache_control", "prompt_cache", "extra inputs are not permitted")


def _model_name(model: str) -> str:
    """The model's own name: `anthropic/claude-x` -> `claude-x`, `us.anthropic.claude-x` -> `claude-x`."""
    name = model.lower().rsplit("/", 1)[-1]
    return name.rsplit("anthropic.", 1)[-1]


def _takes_openai_breakpoints(name: str) -> bool:
    match = _OPENAI_EXPLICIT.match(name)
    return match is not None and (int(match[1]), int(match[2] or 0)) >= (5, 6)


def cache_marker(config: KernelConfig) -> Mapping[str, Any] | None:
    """The marker `config`'s requests carry, or None for none."""
    if config.prompt_cache is PromptCache.OFF:
        return None
    name = _model_name(config.model)
    if config.model.lower().startswith("anthropic/") or name.startswith("claude"):
        return CACHE_CONTROL
    if config.server is Server.OPENROUTER and name.startswith("gemini"):
        return CACHE_CONTROL
    if config.server is Server.OPENAI and _takes_openai_breakpoints(name):
        return OPENAI_BREAKPOINT
    if config.prompt_cache is PromptCache.ON:
        return OPENAI_BREAKPOINT if config.server is Server.OPENAI else CACHE_CONTROL
    return None


def cache_key(config: KernelConfig) -> str | None:
    """The `prompt_cache_key` to send: the session's, to OpenAI's own server only."""
    if config.prompt_cache is PromptCache.OFF or config.server is not Server.OPENAI:
        return None
    return config.prompt_cache_key


def _markable(message: Message) -> bool:
    """A text a marker can sit on (an empty text block with a marker is refused)."""
    return bool(message.content)


def breakpoints(history: tuple[Message, ...]) -> tuple[int, ...]:
    """Indexes of the messages that carry a marker, ascending: the system prompt, the newest
    message of the previous request (just before the latest reply) and the newest message."""
    marks: list[int] = []
    if history and isinstance(history[0], SystemMessage) and _markable(history[0]):
        marks.append(0)
    latest_reply = next(
        (i for i in range(len(history) - 1, 0, -1) if isinstance(history[i], AssistantMessage)), 0
    )
    for end in (latest_reply, len(history)):
        newest = next((i for i in range(end - 1, 0, -1) if _markable(history[i])), None)
        if newest is not None and newest not in marks:
            marks.append(newest)
    return tuple(sorted(marks))


def with_marker(encoded: dict[str, Any], marker: Mapping[str, Any]) -> dict[str, Any]:
    """An encoded message whose text is one content part carrying `marker` (same text)."""
    return {**encoded, "content": [{"type": "text", "text": encoded["content"], **marker}]}


def refuses_markers(config: KernelConfig, failure: ModelFailure) -> bool:
    """The server refused a request because of its cache markers or key: send it again without."""
    if cache_marker(config) is None and cache_key(config) is None:
        return False
    if failure.status not in (400, 422):
        return False
    message = failure.message.lower()
    return any(word in message for word in _REFUSAL_WORDS)
