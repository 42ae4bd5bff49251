"""Request bodies for /chat/completions, built from the conversation (strict: they
validate against the official `CreateChatCompletionRequest` schema; Anthropic's cache
markers are the one field it does not name, sent only where they are welcome)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from nano_code.kernel.prompt_cache import breakpoints, cache_key, cache_marker, with_marker
from nano_code.kernel.types import KernelConfig, Message, SystemMessage, ToolMessage, ToolSpec, UserMessage


def encode_message(message: Message) -> dict[str, Any]:
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": message.content}
    if isinstance(message, UserMessage):
        return {"role": "user", "content": message.content}
    if isinstance(message, ToolMessage):
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    encoded: dict[str, Any] = {"role": "assistant"}
    if message.tool_calls:
        encoded["content"] = message.content or None
        encoded["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    else:
        encoded["content"] = message.content or ""
    return encoded


def encode_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": dict(spec.parameters)},
    }


class RequestBody(Mapping[str, Any]):
    """A request body as a read-only mapping, built when `messages` is first read (an encoder
    may use `config` and `history` directly; its bytes equal `json.dumps(dict(body))`)."""

    __slots__ = ("_built", "config", "history")

    def __init__(self, config: KernelConfig, history: tuple[Message, ...]) -> None:
        self.config = config
        self.history = history
        self._built: dict[str, Any] | None = None

    def _body(self) -> dict[str, Any]:
        if self._built is None:
            self._built = build_request(self.config, self.history)
        return self._built

    def __getitem__(self, key: str) -> Any:
        if key == "messages" or self._built is not None:
            return self._body()[key]
        return request_head(self.config)[key]  # cheap: no message is encoded

    def __iter__(self) -> Iterator[str]:
        return iter(request_head(self.config))

    def __len__(self) -> int:
        return len(request_head(self.config))

    def __repr__(self) -> str:
        return f"RequestBody({self.config.model!r}, {len(self.history)} messages)"

    def marked(self) -> dict[int, dict[str, Any]]:
        """The messages that carry a cache marker, encoded with it, by index."""
        return marked_messages(self.config, self.history)


def marked_messages(config: KernelConfig, history: tuple[Message, ...]) -> dict[int, dict[str, Any]]:
    marker = cache_marker(config)
    if marker is None:
        return {}
    return {i: with_marker(encode_message(history[i]), marker) for i in breakpoints(history)}


def request_head(config: KernelConfig) -> dict[str, Any]:
    """Every field of a request body but `messages`, in the order they are sent."""
    body: dict[str, Any] = {"model": config.model, "messages": []}
    if config.tools:
        body["tools"] = [encode_tool(t) for t in config.tools]
    if config.temperature is not None:
        body["temperature"] = config.temperature
    if config.seed is not None:
        body["seed"] = config.seed
    if config.max_completion_tokens is not None:
        body["max_completion_tokens"] = config.max_completion_tokens
    if config.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    key = cache_key(config)
    if key is not None:
        body["prompt_cache_key"] = key
    return body


def build_request(config: KernelConfig, history: tuple[Message, ...]) -> dict[str, Any]:
    """The complete body; the system prompt is the first message (not a top-level field)."""
    body = request_head(config)
    messages = [encode_message(m) for m in history]
    for index, message in marked_messages(config, history).items():
        messages[index] = message
    body["messages"] = messages
    return body


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` made encodable as UTF-8: lone surrogates (a JSON `\\ud800`, a bad stdin byte)
    become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text
