"""A key a streamed reply spreads over its pieces never survives in the recording.

Regression: a refactor recorded such streams by joining pieces its own way, which differs from
how the decoder joins them (ids, indexes, reasoning fields, content parts), so replay rebuilt the
key in these shapes. Each body is recorded, decoded again as replay would, and searched.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from nano_code.adapters.model_client import Exchange
from nano_code.adapters.recorder import interaction_record
from nano_code.adapters.secrets import Redactor
from nano_code.kernel.events import ModelReply
from nano_code.kernel.stream import decode_stream

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"
A, B, C = KEY[:10], KEY[10:25], KEY[25:]


def sse(*events: dict[str, Any]) -> bytes:
    return ("".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n").encode()


def chunk(delta: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, **more}]}


def call(arguments: str, **more: Any) -> dict[str, Any]:
    return {"tool_calls": [{**more, "function": {"arguments": arguments}}]}


FIRST_CALL = {"index": 0, "id": "c1", "type": "function"}
STREAMS = {
    "content over three events": sse(chunk({"content": A}), chunk({"content": B}), chunk({"content": C})),
    "tool arguments, later pieces without an index": sse(
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                **FIRST_CALL,
                                "function": {"name": "shell", "arguments": '{"command": "echo ' + A},
                            }
                        ]
                    },
                }
            ]
        },
        chunk(call(B)),
        chunk(call(C + '"}'), finish_reason="tool_calls"),
    ),
    "tool arguments, same id under another index": sse(
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                **FIRST_CALL,
                                "function": {"name": "shell", "arguments": '{"command": "echo ' + A},
                            }
                        ]
                    },
                }
            ]
        },
        chunk(call(B + C + '"}', index=1, id="c1"), finish_reason="tool_calls"),
    ),
    "reasoning then reasoning_content": sse(
        chunk({"reasoning": A}), chunk({"reasoning_content": B + C}), chunk({"content": "ok"})
    ),
    "content as a list of parts": sse(
        chunk({"content": [{"type": "text", "text": A}]}),
        chunk({"content": [{"type": "text", "text": B + C}]}),
    ),
    "reasoning_details items": sse(
        chunk({"reasoning_details": [{"type": "reasoning.text", "text": A}]}),
        chunk({"reasoning_details": [{"type": "reasoning.text", "text": B + C}]}),
        chunk({"content": "ok"}),
    ),
    "choice 0 not first": sse(
        {"choices": [{"index": 1, "delta": {"content": "zz"}}, {"index": 0, "delta": {"content": A}}]},
        chunk({"content": B + C}),
    ),
}


def texts(reply: object) -> list[str]:
    assert isinstance(reply, ModelReply)
    return [reply.content, reply.reasoning, *(c.arguments or "" for c in reply.tool_calls)]


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_a_key_split_over_a_streams_pieces_does_not_survive_in_the_recording(name: str) -> None:
    body = STREAMS[name]
    reply = decode_stream([body])
    assert any(KEY in text for text in texts(reply)), "the stream must really spell the key"
    headers = {"content-type": "text/event-stream"}
    exchange = Exchange("POST", "http://h/v1/chat/completions", {}, b"{}", 200, "OK", headers, body, reply)
    recorded = interaction_record(exchange, Redactor(KEY), {})["response"]["body"]["string"]
    assert not any(KEY in text for text in texts(decode_stream([recorded.encode()])))
    assert KEY not in recorded


def test_a_reencoded_reply_keeps_its_usage_cache_figures_included() -> None:
    usage = {"prompt_tokens": 900, "completion_tokens": 9, "cost": 0.01,
             "prompt_tokens_details": {"cached_tokens": 800, "cache_write_tokens": 90}}  # fmt: skip
    body = sse(chunk({"content": A}), chunk({"content": B + C}), {"id": "x", "choices": [], "usage": usage})
    reply = decode_stream([body])
    headers = {"content-type": "text/event-stream"}
    exchange = Exchange("POST", "http://h/v1/chat/completions", {}, b"{}", 200, "OK", headers, body, reply)
    recorded = interaction_record(exchange, Redactor(KEY), {})["response"]["body"]["string"]
    replayed = decode_stream([recorded.encode()])
    assert isinstance(reply, ModelReply) and isinstance(replayed, ModelReply)
    assert KEY not in recorded and replayed.usage == reply.usage
    assert replayed.usage is not None and replayed.usage.cache_write_tokens == 90
