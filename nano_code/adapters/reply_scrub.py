"""A response body with the API key scrubbed, also where a streamed reply split it up.

A stream carries text and tool arguments in small pieces, so a key the model echoes (after
reading `.env`, say) can be spread over several events where no text replacement finds it,
while replay would join them again. A reply that holds the key once decoded is therefore
recorded re-encoded whole (same content, reasoning, tool calls, finish reason and usage),
scrubbed; a stream that failed part-way has its text pieces joined and scrubbed instead.
"""

from __future__ import annotations

import json
from typing import Any

from nano_code.adapters.model_client import Exchange
from nano_code.adapters.secrets import Redactor
from nano_code.kernel.events import ModelReply
from nano_code.kernel.stream import ResponseDecoder
from nano_code.kernel.types import Usage


def scrubbed_response_body(exchange: Exchange, redactor: Redactor) -> str:
    """`exchange`'s response body as it may be recorded: without the key, whole or split."""
    text = redactor.scrub(exchange.response_body.decode("utf-8", "replace"))
    if redactor.secret is None or exchange.status != 200:
        return text
    reply = exchange.reply
    if reply is None:  # an exchange made by hand: decode it here
        decoder = ResponseDecoder(exchange.status, dict(exchange.response_headers))
        decoder.feed(exchange.response_body)
        reply = decoder.finish()
    if not isinstance(reply, ModelReply):
        return _scrub_split_stream(text, redactor)
    parts = [reply.content, reply.reasoning, reply.model or ""]
    parts += [piece for call in reply.tool_calls for piece in (call.id, call.name, call.arguments or "")]
    if all(redactor.scrub(part) == part for part in parts):
        return text
    return _reencoded(exchange, reply, redactor)


def _reencoded(exchange: Exchange, reply: ModelReply, redactor: Redactor) -> str:
    message: dict[str, Any] = {"role": "assistant", "content": redactor.scrub(reply.content) or None}
    if reply.reasoning:
        message["reasoning"] = redactor.scrub(reply.reasoning)
    calls = [
        {
            "index": index,
            "id": redactor.scrub(call.id),
            "type": "function",
            "function": {
                "name": redactor.scrub(call.name),
                "arguments": redactor.scrub(call.arguments or ""),
            },
        }
        for index, call in enumerate(reply.tool_calls)
    ]
    if calls:
        message["tool_calls"] = calls
    base: dict[str, Any] = {"id": "redacted", "model": redactor.scrub(reply.model or "")}
    usage = _usage_json(reply.usage)
    content_type = next((v for k, v in exchange.response_headers.items() if k.lower() == "content-type"), "")
    if "event-stream" not in content_type.lower():
        for call in calls:
            del call["index"]
        choice = {"index": 0, "message": message, "finish_reason": reply.finish_reason}
        body = {**base, "object": "chat.completion", "choices": [choice]}
        if usage is not None:
            body["usage"] = usage
        return json.dumps(body, ensure_ascii=False)
    choice = {"index": 0, "delta": message, "finish_reason": reply.finish_reason}
    events = [{**base, "object": "chat.completion.chunk", "choices": [choice]}]
    if usage is not None:
        events.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    return "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events) + "data: [DONE]\n\n"


def _usage_json(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    raw: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
    if usage.cost is not None:
        raw["cost"] = usage.cost
    return raw


def _scrub_split_stream(text: str, redactor: Redactor) -> str:
    """An SSE body whose text pieces, joined, hold the key: the joined text, scrubbed, goes
    in the first piece and the others are emptied; every other event stays as it was."""
    lines = text.split("\n")
    events: list[tuple[int, dict[str, Any]]] = []
    pieces: dict[Any, list[tuple[dict[str, Any], str]]] = {}
    for number, line in enumerate(lines):
        try:
            event: Any = json.loads(line[5:]) if line.startswith("data:") else None
            delta = event["choices"][0]["delta"]
        except (ValueError, LookupError, TypeError):
            continue
        if not isinstance(delta, dict):
            continue
        events.append((number, event))
        for field in ("content", "reasoning", "reasoning_content"):
            if isinstance(delta.get(field), str):
                pieces.setdefault(field, []).append((delta, field))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                pieces.setdefault(("tool", str(call.get("index"))), []).append((function, "arguments"))
    changed = False
    for parts in pieces.values():
        joined = "".join(holder[field] for holder, field in parts)
        scrubbed = redactor.scrub(joined)
        if scrubbed != joined:
            changed = True
            (first, field), *rest = parts
            first[field] = scrubbed
            for holder, other in rest:
                holder[other] = ""
    if not changed:
        return text
    for number, event in events:
        lines[number] = "data: " + json.dumps(event, ensure_ascii=False)
    return "\n".join(lines)
