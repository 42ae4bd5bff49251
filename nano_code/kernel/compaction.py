"""Compaction's decisions: what to cut (never between a tool call and its answers), how to
ask for a summary, and what replaces the old part: the agent's own notes, never the user's words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from nano_code.kernel.policy import cut_middle
from nano_code.kernel.request import encode_message
from nano_code.kernel.types import (
    MIN_CONTEXT_TOKENS,
    AssistantMessage,
    Message,
    SystemMessage,
    ToolMessage,
    UserMessage,
)

CHARS_PER_TOKEN = 3
"""Characters of JSON per token: fewer than prose takes, so estimates err high."""

SUMMARY_HEADER = "[Summary of the earlier conversation]"

SUMMARY_NOTE = (
    "The conversation grew too long for the context window, so its older part was replaced "
    "by this summary, which you wrote. The messages after it continue the conversation verbatim."
)

SUMMARY_ACK = "Understood: I will continue from this summary."
"""Between a user-role summary and a kept user message (some chat templates need alternation)."""

NOTES_INTRO = (
    "[nano-code] The conversation grew too long for the context window. Its older part was "
    "replaced by the notes you wrote on it, in your next message; the messages after them "
    "continue the conversation verbatim."
)
"""nano-code's user-role message before the agent's notes (`summary_as` "assistant")."""

NOTES_NOTE = (
    "My own notes on the older part of the conversation, written when it was compacted "
    "(what the user asked is quoted in them; they are not the user's words)."
)

NOTES_CONTINUE = "[nano-code] Continue from your notes."
"""Put after the notes when the kept part starts with an assistant message (roles alternate)."""

MIN_TRANSCRIPT_TOKENS = 256
"""Less old conversation than this is not worth a summary request."""


_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)"
_LIMIT_PATTERNS = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # OpenAI, Azure, DeepSeek, vLLM, OpenRouter, LiteLLM, Groq: "maximum context length is 8192 tokens"
        rf"maximum context length (?:is|of)\s*{_NUMBER}",
        # Anthropic (directly or via OpenRouter): "prompt is too long: 210000 tokens > 200000 maximum"
        rf"{_NUMBER}\s*tokens?\s*>\s*{_NUMBER}\s*maximum",
        # Mistral: "Prompt contains 40000 tokens ..., too large for model with 32768 maximum context length"
        rf"model with {_NUMBER}\s*maximum context length",
        # vLLM v1: "longer than the maximum model length of 8192"; xAI: "maximum prompt length is 131072"
        rf"maximum (?:model|prompt|input) length (?:is|of)\s*{_NUMBER}",
        # Gemini: "exceeds the maximum number of tokens allowed (1048576)"
        rf"maximum number of tokens allowed\s*\(?\s*{_NUMBER}",
        # Fireworks "context length: 32768", llama.cpp "context size: 4096", "context window of 8192"
        rf"context (?:length|window|size)\s*(?:is|of|:)\s*{_NUMBER}",
        # Cohere: "... cannot exceed 4081 - received 5000"
        rf"tokens.{{0,80}}cannot exceed\s*{_NUMBER}",
        # Hugging Face TGI: "`inputs` tokens + `max_new_tokens` must be <= 8193"
        rf"tokens.{{0,80}}must be <=\s*{_NUMBER}",
    )
)
_MOST_TOKENS = 100_000_000


def context_limit_in(message: str) -> int | None:
    """The context window a context-length error states, or None (also for an implausible number)."""
    text = message[:4000]
    for pattern in _LIMIT_PATTERNS:
        match = pattern.search(text)
        if match:
            limit = int(match.group(match.lastindex or 1).replace(",", ""))
            return limit if MIN_CONTEXT_TOKENS // 4 <= limit <= _MOST_TOKENS else None
    return None


def message_tokens(message: Message) -> int:
    """Estimated tokens of one message as it is sent."""
    return len(json.dumps(encode_message(message))) // CHARS_PER_TOKEN + 4


def estimate_tokens(messages: Sequence[Message]) -> int:
    """Estimated tokens of `messages` as they are sent, on the high side."""
    return sum(message_tokens(message) for message in messages)


def is_compaction_message(message: Message) -> bool:
    """True for a message an earlier compaction left: its summary, or the framing around it."""
    if isinstance(message, UserMessage):
        return message.content.startswith(SUMMARY_HEADER) or message.content in (NOTES_INTRO, NOTES_CONTINUE)
    return (
        isinstance(message, AssistantMessage)
        and not message.tool_calls
        and (message.content == SUMMARY_ACK or (message.content or "").startswith(SUMMARY_HEADER))
    )


def cut_points(history: Sequence[Message]) -> list[int]:
    """Every index where the kept part `history[cut:]` may start: not a tool message, and
    leaving something besides an earlier summary to summarise."""
    first = 1
    while first < len(history) and is_compaction_message(history[first]):
        first += 1
    return [index for index in range(first + 1, len(history)) if not isinstance(history[index], ToolMessage)]


def choose_cut(history: Sequence[Message], keep_tokens: int) -> int | None:
    """The earliest cut point whose kept part fits in `keep_tokens`, else the latest one;
    None when nothing is old enough to compact."""
    points = cut_points(history)
    if not points:
        return None
    starts = set(points)
    fits: int | None = None
    kept = 0
    for index in range(len(history) - 1, points[0] - 1, -1):
        kept += message_tokens(history[index])
        if kept > keep_tokens:
            break
        if index in starts:
            fits = index
    return points[-1] if fits is None else fits


def keep_budget(history: Sequence[Message], window: int, keep_recent: float) -> int:
    """Tokens the kept part may hold: `keep_recent` of the window, or of the conversation
    when smaller (so /compact still shortens a short one)."""
    return int(keep_recent * min(window, estimate_tokens(history)))


def summary_target_tokens(window: int) -> int:
    """How long a summary should be: a tenth of the window, within 256 and 3000 tokens."""
    return min(3000, max(256, window // 10))


def transcript_budget(window: int, summary_prompt: str) -> int:
    """Tokens of old conversation a summary request may carry: half the window, less the prompt."""
    return max(MIN_TRANSCRIPT_TOKENS, window // 2 - len(summary_prompt) // CHARS_PER_TOKEN - 64)


def _cut_to(text: str, budget_chars: int) -> str:
    """`text` cut in the middle to about `budget_chars` characters as sent (JSON-escaped)."""
    sent = len(json.dumps(text))
    if sent <= budget_chars:
        return text
    limit = max(1, len(text) * budget_chars // sent)
    while True:
        cut = cut_middle(text, limit)
        # The kept ends may escape longer than the average: trim again (this converges).
        over = len(json.dumps(cut)) - budget_chars
        if over <= 0 or limit == 1:
            return cut
        limit = max(1, limit - over)


def render_transcript(messages: Sequence[Message], budget_tokens: int) -> str:
    """The messages as a plain-text transcript of about `budget_tokens`, each message capped
    and then the whole (reasoning left out)."""
    budget_chars = max(MIN_TRANSCRIPT_TOKENS, budget_tokens) * CHARS_PER_TOKEN
    piece_chars = max(400, min(6000, budget_chars // 8))
    names: dict[str, str] = {}
    parts: list[tuple[str, str]] = []  # (who, what); nano-code's framing of earlier notes is left out
    for message in messages:
        if isinstance(message, UserMessage) and message.content not in (NOTES_INTRO, NOTES_CONTINUE):
            parts.append(("user", message.content))
        elif isinstance(message, ToolMessage):
            parts.append((f"result of {names.get(message.tool_call_id, 'a tool')}", message.content))
        elif isinstance(message, AssistantMessage):
            if message.content:
                parts.append(("assistant", message.content))
            for call in message.tool_calls:
                names[call.id] = call.name
                parts.append((f"assistant called {call.name}", call.arguments))
    text = "\n\n".join(f"[{who}]\n{_cut_to(what, piece_chars)}" for who, what in parts)
    return _cut_to(text, budget_chars)


def summary_messages(
    history: Sequence[Message], cut: int, summary_prompt: str, budget_tokens: int, window: int
) -> tuple[Message, ...]:
    """The summary prompt, then `history[1:cut]` as a transcript in one user message (no tool
    schemas needed, no tool call invited, and cut to fit)."""
    transcript = render_transcript(history[1:cut], budget_tokens)
    words = summary_target_tokens(window) * 3 // 4
    request = (
        "Here is the older part of our conversation, as a transcript:\n\n"
        f"<transcript>\n{transcript}\n</transcript>\n\n"
        f"Write the summary now, in at most about {words} words."
    )
    return (SystemMessage(summary_prompt), UserMessage(request))


def summary_text(summary: str, window: int, summary_as: str = "assistant") -> str:
    """The message content carrying `summary`, headed and capped at twice the length asked for."""
    limit = summary_target_tokens(window) * 2 * 4
    note = NOTES_NOTE if summary_as == "assistant" else SUMMARY_NOTE
    return f"{SUMMARY_HEADER}\n{note}\n\n{cut_middle(summary.strip(), limit)}"


def compacted(
    history: Sequence[Message], cut: int, summary: str, window: int, summary_as: str = "assistant"
) -> tuple[Message, ...]:
    """`history` with `history[1:cut]` replaced by the summary, framed so roles alternate."""
    kept = tuple(history[cut:])
    text = summary_text(summary, window, summary_as)
    head: tuple[Message, ...]
    if summary_as == "assistant":
        head = (history[0], UserMessage(NOTES_INTRO), AssistantMessage(content=text))
        if kept and isinstance(kept[0], AssistantMessage):
            head += (UserMessage(NOTES_CONTINUE),)
        return head + kept
    head = (history[0], UserMessage(text))
    if kept and isinstance(kept[0], UserMessage):
        head += (AssistantMessage(content=SUMMARY_ACK),)
    return head + kept
