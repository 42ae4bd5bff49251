"""The `Recorder`: a driver observer and exchange sink writing a session as it happens.

HTTP exchanges become interactions, everything else replay needs journal entries.
The API key never reaches the file: auth headers are dropped, the key is scrubbed
(even split across streamed pieces), and the writer refuses any line still holding it.
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
from nano_code.adapters.reply_scrub import scrubbed_response_body
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


def _recordable_headers(headers: Mapping[str, str], redactor: Redactor) -> dict[str, list[str]]:
    """Headers without credentials; a header whose *name* holds the key is dropped whole."""
    return {
        name: [redactor.scrub(value)]
        for name, value in headers.items()
        if name.lower() not in SECRET_HEADERS and redactor.scrub(name) == name
    }


def _same_call(answered: object, action: CallModel | RetryModel) -> bool:
    """Whether the exchange recorded last answered `action`: the very action, or the
    same call sent with a rebuilt body (a fork's first live request under `--model`)."""
    return answered is action or (
        isinstance(answered, type(action))
        and answered.step == action.step
        and answered.attempt == action.attempt
        and answered.purpose is action.purpose  # a summary call shares its step's numbers
    )


def interaction_record(exchange: Exchange, redactor: Redactor, extra: Mapping[str, Any]) -> dict[str, Any]:
    """An exchange in vcrpy's cassette shape (request/response dicts), scrubbed."""
    return {
        "request": {
            "method": exchange.method,
            "uri": redactor.scrub(exchange.uri),
            "body": redactor.scrub(exchange.request_body.decode("utf-8", "replace")),
            "headers": _recordable_headers(exchange.request_headers, redactor),
        },
        "response": {
            "status": {"code": exchange.status, "message": redactor.scrub(exchange.reason)},
            "headers": _recordable_headers(exchange.response_headers, redactor),
            "body": {"string": scrubbed_response_body(exchange, redactor)},
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

    @staticmethod
    def _ms(since: float) -> int:
        return round((time.monotonic() - since) * 1000)

    def _journal(self, entry: JournalEntry) -> None:
        record = entry_json(entry)
        record["t_ms"] = self._ms(self._started)
        self.writer.journal(self.redactor.scrub_value(record))

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
            call = _recorded_call(action) if not isinstance(event, USER_STARTED_EVENTS) else None
            self._journal(EventEntry(event, call, self._ms(self._action_started) if timed else None))
            self._action = None

    def on_setting_change(self, change: JournalEntry, state: State) -> None:
        self._journal(change)  # a setting change's own entry (session/changes.py)

    def on_command(self, text: str, state: State) -> None:
        self._journal(CommandEntry(text))

    def on_snapshot(self, info: Mapping[str, Any]) -> None:
        self._journal(SnapshotEntry(info))

    def close(self) -> None:
        self.writer.close()
