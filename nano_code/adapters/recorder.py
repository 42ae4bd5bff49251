"""Recording a session as it happens: its HTTP exchanges and a journal of the rest.

The `Recorder` is a driver observer and an HTTP exchange sink: it writes the
interactions our own adapter saw (so streaming stays live) and, as journal
entries, everything else replay needs. The API key never reaches the file:
auth headers are dropped, the key is scrubbed everywhere (even split across
streamed pieces), and the writer refuses any line still holding it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from nano_code.adapters.journal import (
    CallWithoutResponse,
    CommandEntry,
    EventEntry,
    JournalEntry,
    RecordedCall,
    RetryEntry,
    SnapshotEntry,
    TurnEndEntry,
    entry_json,
)
from nano_code.adapters.model_client import Exchange
from nano_code.adapters.secrets import SECRET_HEADERS, Redactor
from nano_code.adapters.session_writer import SessionWriter
from nano_code.kernel.actions import Action, CallModel, CallPurpose, EndTurn, RetryModel, RunTool
from nano_code.kernel.events import (
    USER_STARTED_EVENTS,
    Event,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolResult,
)
from nano_code.kernel.serialize import to_json
from nano_code.kernel.state import State
from nano_code.kernel.stream import ResponseDecoder
from nano_code.kernel.types import Usage


def _usage_json(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    raw: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
    if usage.cost is not None:
        raw["cost"] = usage.cost
    return raw


def _scrubbed_response_body(exchange: Exchange, redactor: Redactor) -> str:
    """The response body with the key scrubbed -- also where the key was split up.

    A streamed reply carries its text and tool arguments in small pieces, so a
    key the model echoes (say, after reading `.env`) can be spread over several
    events, where no text replacement finds it, yet replay would reassemble it.
    Then the reply is recorded re-encoded whole (same content, tool calls,
    finish reason and usage), scrubbed.
    """
    text = redactor.scrub(exchange.response_body.decode("utf-8", "replace"))
    if redactor.secret is None or exchange.status != 200:
        return text
    reply = exchange.reply
    if reply is None:  # an exchange made by hand: decode it here
        decoder = ResponseDecoder(exchange.status, dict(exchange.response_headers))
        decoder.feed(exchange.response_body)
        reply = decoder.finish()
    if not isinstance(reply, ModelReply):
        # A stream that failed part-way (an in-band error after some text) may still
        # have spelled the key across its pieces; replay would show them joined.
        return _scrub_split_stream(text, redactor)
    parts = [reply.content, reply.reasoning, reply.model or ""]
    parts += [piece for call in reply.tool_calls for piece in (call.id, call.name, call.arguments or "")]
    if all(redactor.scrub(part) == part for part in parts):
        return text
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
        body = {
            **base,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
        }
        if usage is not None:
            body["usage"] = usage
        return json.dumps(body, ensure_ascii=False)
    chunk = {
        **base,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": message, "finish_reason": reply.finish_reason}],
    }
    events = [chunk]
    if usage is not None:
        events.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    return "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events) + "data: [DONE]\n\n"


def _recordable_headers(headers: Mapping[str, str], redactor: Redactor) -> dict[str, list[str]]:
    """Headers without credentials; a header whose *name* holds the key is dropped whole."""
    return {
        name: [redactor.scrub(value)]
        for name, value in headers.items()
        if name.lower() not in SECRET_HEADERS and redactor.scrub(name) == name
    }


_STREAMED_TEXT_FIELDS = ("content", "reasoning", "reasoning_content")


def _scrub_split_stream(text: str, redactor: Redactor) -> str:
    """An SSE body whose text pieces, joined, hold the key: the joined text, scrubbed, goes
    in the first piece and the others are emptied; every other event stays as it was."""
    lines = text.split("\n")
    events: list[tuple[int, dict[str, Any]]] = []
    pieces: dict[Any, list[tuple[dict[str, Any], str]]] = {}
    for number, line in enumerate(lines):
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        events.append((number, event))
        choices = event.get("choices")
        delta = (
            choices[0].get("delta")
            if isinstance(choices, list) and choices and isinstance(choices[0], dict)
            else None
        )
        if not isinstance(delta, dict):
            continue
        for field in _STREAMED_TEXT_FIELDS:
            if isinstance(delta.get(field), str):
                pieces.setdefault(field, []).append((delta, field))
        for call in delta.get("tool_calls") or [] if isinstance(delta.get("tool_calls"), list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                pieces.setdefault(("tool", str(call.get("index"))), []).append((function, "arguments"))
    changed = False
    for parts in pieces.values():
        joined = "".join(holder[field] for holder, field in parts)
        scrubbed = redactor.scrub(joined)
        if scrubbed != joined:
            changed = True
            first, field = parts[0]
            first[field] = scrubbed
            for holder, other in parts[1:]:
                holder[other] = ""
    if not changed:
        return text
    for number, event in events:
        lines[number] = "data: " + json.dumps(event, ensure_ascii=False)
    return "\n".join(lines)


def _same_call(answered: object, action: CallModel | RetryModel) -> bool:
    """Whether the exchange recorded last answered `action`: the very action, or the
    same call sent with a rebuilt body (a fork's first live request under `--model`)."""
    if answered is action:
        return True
    return (
        isinstance(answered, type(action))
        and answered.step == action.step
        and answered.attempt == action.attempt
        and answered.purpose is action.purpose  # a summary call shares its step's numbers
    )


def interaction_record(exchange: Exchange, redactor: Redactor, extra: Mapping[str, Any]) -> dict[str, Any]:
    """An exchange in vcrpy's cassette shape (request/response dicts), scrubbed."""
    request_headers = _recordable_headers(exchange.request_headers, redactor)
    response_headers = _recordable_headers(exchange.response_headers, redactor)
    return {
        "request": {
            "method": exchange.method,
            "uri": redactor.scrub(exchange.uri),
            "body": redactor.scrub(exchange.request_body.decode("utf-8", "replace")),
            "headers": request_headers,
        },
        "response": {
            "status": {"code": exchange.status, "message": redactor.scrub(exchange.reason)},
            "headers": response_headers,
            "body": {"string": _scrubbed_response_body(exchange, redactor)},
        },
        "nano_code": dict(extra),
    }


def _recorded_call(action: Action | None) -> RecordedCall | None:
    call = getattr(action, "call", None)
    if call is None:
        return None
    arguments = getattr(action, "arguments", None)
    return RecordedCall(
        call.id, call.name, dict(arguments) if arguments is not None else json.loads(call.arguments)
    )


class Recorder:
    """Observer + exchange sink that appends the session to a `SessionWriter`."""

    def __init__(self, writer: SessionWriter, redactor: Redactor) -> None:
        self.writer = writer
        self.redactor = redactor
        self._started = time.monotonic()
        self._action: Action | None = None
        self._action_started = 0.0
        self._answered: object = None
        """The action whose HTTP exchange was recorded last (each exchange names its action)."""

    def _ms(self, since: float) -> int:
        return round((time.monotonic() - since) * 1000)

    def _journal(self, entry: JournalEntry) -> None:
        record = entry_json(entry)
        record["t_ms"] = self._ms(self._started)
        self.writer.journal(self.redactor.scrub_value(record))

    # -- exchange sink

    def on_exchange(self, exchange: Exchange) -> None:
        action = exchange.action if exchange.action is not None else self._action
        extra: dict[str, Any] = {
            "t_ms": self._ms(self._started),
            "duration_ms": self._ms(self._action_started),
        }
        if isinstance(action, (CallModel, RetryModel)):
            extra.update(step=action.step, attempt=action.attempt)
            if action.purpose is not CallPurpose.STEP:
                extra["purpose"] = action.purpose.value  # a summary call, for readers of the file
        self.writer.interaction(interaction_record(exchange, self.redactor, extra))
        self._answered = action

    # -- observer

    def on_action(self, action: Action, state: State) -> None:
        if isinstance(action, RetryModel):
            self._journal(RetryEntry(action.delay, action.attempt, to_json(action.failure)))
        if isinstance(action, EndTurn):
            self._journal(TurnEndEntry(action))
            self.writer.sync()
        self._action = action
        self._action_started = time.monotonic()

    def on_event(self, event: Event, state: State) -> None:
        action = self._action
        if isinstance(action, (CallModel, RetryModel)) and isinstance(
            event, (ModelReply, ModelFailure, Interrupt)
        ):
            if not _same_call(self._answered, action):
                # No complete HTTP response (transport failure, timeout, Ctrl-C):
                # replay needs the request and what the kernel was told instead.
                self._journal(CallWithoutResponse(dict(action.body), event, self._ms(self._action_started)))
            self._action = None
            self._answered = None
            return
        if not isinstance(event, (ModelReply, ModelFailure)):  # a reply is its exchange, above
            timed = isinstance(event, ToolResult) or (
                isinstance(event, Interrupt) and isinstance(action, RunTool)
            )
            self._journal(
                EventEntry(
                    event,
                    _recorded_call(action) if not isinstance(event, USER_STARTED_EVENTS) else None,
                    self._ms(self._action_started) if timed else None,
                )
            )
            self._action = None

    def on_setting_change(self, change: JournalEntry, state: State) -> None:
        self._journal(change)  # a setting change's own entry (session/changes.py)

    def on_command(self, text: str, state: State) -> None:
        self._journal(CommandEntry(text))

    def on_snapshot(self, info: Mapping[str, Any]) -> None:
        self._journal(SnapshotEntry(info))

    def close(self) -> None:
        self.writer.close()
