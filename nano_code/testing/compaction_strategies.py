"""Hypothesis strategies for compaction: long conversations and the context-length errors of real servers."""

from __future__ import annotations

import json
from collections.abc import Sequence

from hypothesis import strategies as st

from nano_code.kernel.types import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    UserMessage,
)
from nano_code.testing.strategies import DEMO_TOOLS, arguments_for

__all__ = ["CONTEXT_LENGTH_ERRORS", "context_overflows", "histories"]

_short_text = st.text(max_size=30)
_SIZED_TEXT = st.text(max_size=30) | st.builds(
    lambda count, word: word * count,
    st.integers(1, 600),
    st.sampled_from(["word ", "x", "line of output\n", "\u65e5\u672c\u8a9e", '{"k": "v"} ']),
)
"""Message text from empty to several kilobytes (tool output is where a context window goes)."""


@st.composite
def histories(
    draw: st.DrawFn, tools: Sequence[ToolSpec] = DEMO_TOOLS, max_pieces: int = 14
) -> tuple[Message, ...]:
    """Valid `State.history` conversations: the system prompt, sometimes an earlier summary, then up
    to `max_pieces` user messages, assistant texts, or tool calls with their answers."""
    from nano_code.kernel.compaction import NOTES_CONTINUE, SUMMARY_ACK, compacted

    history: list[Message] = [SystemMessage(draw(st.sampled_from(["You are a coding agent.", ""])))]
    if draw(st.integers(0, 3)) == 0:  # the agent's notes, or a user-role summary as older sessions kept it
        notes = draw(st.booleans())
        history = list(compacted(history, 1, draw(_SIZED_TEXT), 128_000, "assistant" if notes else "user"))
        if draw(st.booleans()):  # the framing that keeps roles alternating
            history.append(UserMessage(NOTES_CONTINUE) if notes else AssistantMessage(SUMMARY_ACK))
    number = 0
    for _ in range(draw(st.integers(0, max_pieces))):
        kind = draw(st.sampled_from(["user", "text", "calls", "calls"]))
        if kind == "user":
            history.append(UserMessage(draw(_SIZED_TEXT)))
        elif kind == "text":
            reasoning = draw(st.none() | _short_text)
            history.append(AssistantMessage(content=draw(_SIZED_TEXT), reasoning=reasoning))
        else:
            calls = []
            for _ in range(draw(st.integers(1, 3))):
                number += 1
                spec = draw(st.sampled_from(list(tools)))
                arguments = json.dumps(draw(arguments_for(spec)))
                calls.append(ToolCall(id=f"call_{number}", name=spec.name, arguments=arguments))
            history.append(AssistantMessage(content=draw(st.none() | _SIZED_TEXT), tool_calls=tuple(calls)))
            history.extend(ToolMessage(tool_call_id=call.id, content=draw(_SIZED_TEXT)) for call in calls)
    return tuple(history)


_OVERFLOW_BODIES = {
    "openai": '{"error":{"message":"This model\'s maximum context length is %(limit)d tokens. However, your '
    'messages resulted in %(used)d tokens. Please reduce the length of the messages.",'
    '"type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}',
    "vllm": '{"object":"error","message":"This model\'s maximum context length is %(limit)d tokens. However, '
    "you requested %(used)d tokens (%(used)d in the messages, 0 in the completion). Please reduce "
    'the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}',
    "vllm-v1": '{"object":"error","message":"The decoder prompt (length %(used)d) is longer than the maximum '
    "model length of %(limit)d. Make sure that `max_model_len` is no smaller than the number of "
    'text tokens.","type":"BadRequestError","param":null,"code":400}',
    "deepseek": '{"error":{"message":"This model\'s maximum context length is %(limit)d tokens. However, you '
    "requested %(used)d tokens (%(used)d in the messages, 0 in the completion). Please reduce the "
    'length of the messages or completion.","type":"invalid_request_error","param":null,'
    '"code":"invalid_request_error"}}',
    "anthropic-via-openrouter": '{"error":{"message":"Provider returned error","code":400,'
    '"metadata":{"raw":"{\\"type\\":\\"error\\",\\"error\\":{\\"type\\":\\"invalid_request_error\\",\\"message\\":'
    '\\"prompt is too long: %(used)d tokens > %(limit)d maximum\\"}}","provider_name":"Anthropic"}}}',
    "openrouter": '{"error":{"message":"This endpoint\'s maximum context length is %(limit)d tokens. However, you '
    "requested about %(used)d tokens (%(used)d of text input). Please reduce the length of either "
    'one, or use the \\"middle-out\\" transform to compress your prompt automatically.","code":400}}',
    "mistral": '{"object":"error","message":"Prompt contains %(used)d tokens and 0 draft tokens, too large for '
    'model with %(limit)d maximum context length","type":"invalid_request_message_error",'
    '"param":null,"code":"3051"}',
    "gemini": '[{"error":{"code":400,"message":"The input token count (%(used)d) exceeds the maximum number '
    'of tokens allowed (%(limit)d).","status":"INVALID_ARGUMENT"}}]',
    "llama.cpp": '{"error":{"code":400,"message":"the request exceeds the available context size, try '
    'increasing it","type":"exceed_context_size_error","n_prompt_tokens":%(used)d,"n_ctx":%(limit)d}}',
    "xai": '{"code":"Client specified an invalid argument","error":"This model\'s maximum prompt length '
    'is %(limit)d but the request contains %(used)d tokens."}',
    "cohere": '{"message":"too many tokens: total number of tokens in the prompt cannot exceed %(limit)d - '
    'received %(used)d. Try using a shorter prompt, or enabling prompt truncation."}',
    "groq": '{"error":{"message":"Please reduce the length of the messages or completion.",'
    '"type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}',
}
CONTEXT_LENGTH_ERRORS: tuple[tuple[str, int, str, bool], ...] = tuple(
    (server, 400, body, server != "groq") for server, body in _OVERFLOW_BODIES.items()
)
"""Context-length errors transcribed from real servers: (server, HTTP status, body with %(limit)d
and %(used)d to fill in, whether the body states the limit)."""


@st.composite
def context_overflows(draw: st.DrawFn) -> tuple[str, int, bytes, int | None]:
    """A context-length error response: (server, status, body, the limit it states or None)."""
    server, status, template, states_limit = draw(st.sampled_from(CONTEXT_LENGTH_ERRORS))
    limit = draw(
        st.sampled_from([2048, 4096, 8192, 32_768, 128_000, 200_000, 1_048_576])
        | st.integers(1024, 2_000_000)
    )
    used = limit + draw(st.integers(1, 100_000))
    body = (template % {"limit": limit, "used": used}).encode()
    return server, status, body, limit if states_limit else None
