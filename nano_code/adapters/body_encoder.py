"""Request bodies as bytes, each message encoded once per session (not once per step,
which is quadratic): cached by the frozen message's identity, joined byte for byte as
`json.dumps` of the whole body would give.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nano_code.kernel.request import RequestBody, encode_message, request_head
from nano_code.kernel.types import KernelConfig, Message


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _BodyEncoder:
    """Joins each body from cached message encodings; the few messages carrying a cache
    marker are encoded afresh. Messages that left the history (a cleared or compacted
    conversation) are dropped once the cache outgrows it."""

    MARK = b'"messages":[]'

    def __init__(self) -> None:
        self._messages: dict[int, tuple[Message, bytes]] = {}
        self._head: tuple[KernelConfig, bytes, bytes] | None = None

    def encode(self, body: Mapping[str, Any]) -> bytes:
        if not isinstance(body, RequestBody):
            return _dumps(body)
        config = body.config
        if self._head is None or self._head[0] is not config:
            before, _, after = _dumps(request_head(config)).partition(self.MARK)
            self._head = (config, before + b'"messages":[', b"]" + after)
        _, start, end = self._head
        history = body.history
        cache = self._messages
        if len(cache) > 2 * len(history) + 64:
            alive = {id(message) for message in history}
            self._messages = cache = {key: item for key, item in cache.items() if key in alive}
        marked = body.marked()
        pieces = []
        for index, message in enumerate(history):
            if index in marked:
                pieces.append(_dumps(marked[index]))
                continue
            item = cache.get(id(message))
            if item is None or item[0] is not message:
                item = cache[id(message)] = (message, _dumps(encode_message(message)))
            pieces.append(item[1])
        return start + b",".join(pieces) + end


_ENCODER = _BodyEncoder()


def encode_body(body: Mapping[str, Any]) -> bytes:
    """`body` as the bytes nano-code sends: compact JSON, UTF-8, keys in order."""
    return _ENCODER.encode(body)
