"""Incremental decoding of one response, fed bytes in arbitrary pieces: `ResponseDecoder`
yields `StreamDelta`s to show as they arrive, then the one event the response amounts to.

Tool-call deltas merge by id, then by index, then onto the last call: the order that
survives every server in QUIRKS.md (ids empty or repeated, index missing or reused,
arguments re-sent whole or as objects).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from nano_code.kernel import response
from nano_code.kernel.error_text import error_object, header
from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply, ReplyToolCall
from nano_code.kernel.failures import classify_http_error, in_band_failure
from nano_code.kernel.types import Usage

_LINE_END = re.compile(rb"\r\n|\r|\n")


@attrs.frozen
class StreamDelta:
    """A piece of the reply to show as it arrives: kind is 'text', 'reasoning' or 'tool'."""

    kind: str
    text: str


class SseParser:
    """Server-sent events framing: bytes in, (event name, data) pairs out."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, piece: bytes) -> list[tuple[str, str]]:
        self._buffer += piece
        dispatched: list[tuple[str, str]] = []
        start = 0
        for match in _LINE_END.finditer(self._buffer):
            # A lone \r at the very end may be the first half of \r\n.
            if match.group() == b"\r" and match.end() == len(self._buffer):
                break
            self._line(self._buffer[start : match.start()], dispatched)
            start = match.end()
        self._buffer = self._buffer[start:]
        return dispatched

    def finish(self) -> list[tuple[str, str]]:
        return self.feed(b"\n\n")  # ends the last line (a held \r included), then its event

    def _line(self, raw: bytes, dispatched: list[tuple[str, str]]) -> None:
        line = raw.decode("utf-8", "replace")
        if not line:
            if self._data:
                dispatched.append((self._event, "\n".join(self._data)))
            self._event = ""
            self._data = []
            return
        if line.startswith(":"):
            return  # keep-alive comment, e.g. ": OPENROUTER PROCESSING"
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value


@attrs.define
class _CallSlot:
    id: str
    index: int | None
    name: str = ""
    arguments: str = ""
    seen_arguments: bool = False


class StreamAssembler:
    """Chat-completion chunks (already parsed JSON) merged into one reply."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: list[_CallSlot] = []
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._model: str | None = None
        self._chunks = 0
        self._failure: ModelFailure | None = None
        self._done = False

    @property
    def finished(self) -> bool:
        return self._done or self._failure is not None

    def add_data(self, event: str, data: str) -> list[StreamDelta]:
        if self.finished:
            return []
        if data.strip() == "[DONE]":
            self._done = True
            return []
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            if event == "error":
                self._failure = ModelFailure(FailureKind.IN_BAND_ERROR, f"error event: {data[:300]}")
            return []
        return self.add_chunk(chunk, event)

    def add_chunk(self, chunk: object, event: str = "") -> list[StreamDelta]:
        if self.finished or not isinstance(chunk, Mapping):
            return []
        error = error_object(chunk)
        if error is not None or event == "error":
            self._failure = in_band_failure(error or {"message": "error event without details"})
            return []
        self._chunks += 1
        self._model = response.text_or_none(chunk.get("model")) or self._model
        groq = chunk.get("x_groq")
        groq_usage = groq.get("usage") if isinstance(groq, Mapping) else None
        self._usage = (
            response.decode_usage(chunk.get("usage")) or response.decode_usage(groq_usage) or self._usage
        )
        deltas: list[StreamDelta] = []
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) not in (0, None):
                continue
            self._finish = response.text_or_none(choice.get("finish_reason")) or self._finish
            delta = choice.get("delta")
            if not isinstance(delta, Mapping):
                delta = choice.get("message")  # some servers send whole messages
            if isinstance(delta, Mapping):
                self._add_delta(delta, deltas)
        return deltas

    def _add_delta(self, delta: Mapping[str, Any], deltas: list[StreamDelta]) -> None:
        text, content_reasoning = response.split_content(delta.get("content"))
        reasoning = response.reasoning_of(delta) or content_reasoning
        if reasoning:
            self._reasoning.append(reasoning)
            deltas.append(StreamDelta("reasoning", reasoning))
        if text:
            self._text.append(text)
            deltas.append(StreamDelta("text", text))
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for item in tool_calls:
                if isinstance(item, Mapping):
                    self._add_tool_delta(item, deltas)

    def _slot_for(self, call_id: str, index: int | None) -> _CallSlot:
        if call_id:
            for slot in self._calls:
                if slot.id == call_id:
                    return slot
            # A new id at an index whose slot has none continues it (vLLM names ids late).
            for slot in reversed(self._calls):
                if index is not None and slot.index == index and not slot.id:
                    slot.id = call_id
                    return slot
        elif index is not None:
            for slot in reversed(self._calls):
                if slot.index == index:
                    return slot
        elif self._calls:
            return self._calls[-1]
        slot = _CallSlot(call_id, index)
        self._calls.append(slot)
        return slot

    def _add_tool_delta(self, item: Mapping[str, Any], deltas: list[StreamDelta]) -> None:
        raw_index = item.get("index")
        index = raw_index if isinstance(raw_index, int) and not isinstance(raw_index, bool) else None
        call_id = item.get("id") if isinstance(item.get("id"), str) else ""
        slot = self._slot_for(call_id or "", index)
        function = item.get("function")
        if not isinstance(function, Mapping):
            return
        name = function.get("name")
        if isinstance(name, str) and name and not slot.name:
            slot.name = name
            deltas.append(StreamDelta("tool", name))
        piece = response.arguments_text(function.get("arguments"))
        if piece is None:
            return
        slot.seen_arguments = True
        if not isinstance(function.get("arguments"), str):
            slot.arguments = piece  # an object is always the whole value
        elif not (piece and _is_whole_resend(slot.arguments, piece)):
            slot.arguments += piece  # (the same complete value again is kept once)

    def result(self) -> ModelReply | ModelFailure:
        if self._failure is not None:
            return self._failure
        if self._chunks == 0:
            return ModelFailure(FailureKind.MALFORMED, "the stream ended before any reply arrived")
        calls = tuple(
            ReplyToolCall(slot.id, slot.name, slot.arguments if slot.seen_arguments else None)
            for slot in self._calls
        )
        reply = ModelReply(
            content="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=calls,
            finish_reason=self._finish,
            usage=self._usage,
            model=self._model,
        )
        return response.clean_reply(reply)


def _is_whole_resend(current: str, piece: str) -> bool:
    """True when a server re-sent the identical, complete arguments (QUIRKS B-9). Two
    different objects concatenate, so the model hears its JSON is invalid."""
    if piece != current:
        return False
    try:
        json.loads(current)
    except (ValueError, RecursionError):
        return False
    return True


class ResponseDecoder:
    """One HTTP response, streamed or not, success or error, to one kernel event."""

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        self.status = status
        self._headers = dict(headers)
        content_type = header(self._headers, "content-type").lower()
        self._sse: bool | None = None if not content_type else "event-stream" in content_type
        self._body = bytearray()
        self._parser = SseParser()
        self._assembler = StreamAssembler()

    def feed(self, piece: bytes) -> list[StreamDelta]:
        if self.status != 200 or not piece:
            self._body += piece
            return []
        if not self._sse:
            self._body += piece
            if self._sse is False or not self._body.lstrip():
                return []
            self._sse = not self._body.lstrip().startswith((b"{", b"["))  # sniffed: no content type
            if not self._sse:
                return []
            piece = bytes(self._body)
            self._body.clear()
        deltas: list[StreamDelta] = []
        for event, data in self._parser.feed(piece):
            deltas.extend(self._assembler.add_data(event, data))
        return deltas

    def finish(self) -> ModelReply | ModelFailure:
        if not 200 <= self.status < 300:
            return classify_http_error(self.status, self._headers, bytes(self._body))
        if self.status != 200:
            return ModelFailure(FailureKind.MALFORMED, f"unexpected HTTP {self.status}", status=self.status)
        if not self._sse:
            return response.decode_body(bytes(self._body))
        for event, data in self._parser.finish():
            self._assembler.add_data(event, data)
        return self._assembler.result()


def decode_stream(pieces: list[bytes]) -> ModelReply | ModelFailure:
    """A whole SSE body given as pieces."""
    decoder = ResponseDecoder(200, {"content-type": "text/event-stream"})
    for piece in pieces:
        decoder.feed(piece)
    return decoder.finish()
