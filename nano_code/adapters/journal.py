"""The session journal as typed entries: one writer (`entry_json`), one reader (`read_entry`).

A session file's `#nc ` lines record what replay needs beyond HTTP, one entry a
line; nothing else in nano-code spells their keys. A file is data: `read_entry`
turns any line into an entry or raises `JournalError`, never anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from nano_code.kernel.actions import EndTurn
from nano_code.kernel.events import Event
from nano_code.kernel.serialize import from_json, to_json
from nano_code.kernel.types import ApprovalMode, SandboxMode


class JournalError(ValueError):
    """A journal line that is not one of the entries nano-code writes."""


@attrs.frozen
class RecordedCall:
    id: str
    name: str
    arguments: Any  # the parsed arguments, as the tool received them


@attrs.frozen
class EventEntry:
    """An event fed to the kernel, with the tool call it answered and how long it took."""

    event: Event
    call: RecordedCall | None = None
    duration_ms: int | None = None


@attrs.frozen
class CallWithoutResponse:
    """A model call with no complete HTTP response: its request and what the kernel was told."""

    request: Mapping[str, Any]
    event: Event
    duration_ms: int | None = None


@attrs.frozen
class RetryEntry:
    """The kernel retried a model call after `delay` seconds."""

    delay: float
    attempt: int
    failure: Mapping[str, Any]


@attrs.frozen
class TurnEndEntry:
    end: EndTurn


@attrs.frozen
class ApprovalModeEntry:
    """Approval (and the sandbox) switched to the current command line's (resume, fork)."""

    mode: ApprovalMode
    sandbox: SandboxMode | None = None  # from here on (None in files from before sandboxes: unchanged)


@attrs.frozen
class ModelChangeEntry:
    """Requests name another model from here on (a fork with --model)."""

    model: str


@attrs.frozen
class SamplingChangeEntry:
    """Requests sample otherwise from here on (a fork with --temperature/--seed)."""

    temperature: float | None
    seed: int | None = None


@attrs.frozen
class CommandEntry:
    """An interactive command the user typed; what it changed has its own entry."""

    text: str


@attrs.frozen
class SnapshotEntry:
    """The workspace snapshot taken as the session started, or why there is none."""

    info: Mapping[str, Any]  # `SnapshotInfo.to_json()`, or {"error": why} when none could be taken


JournalEntry = (
    EventEntry
    | CallWithoutResponse
    | RetryEntry
    | TurnEndEntry
    | ApprovalModeEntry
    | ModelChangeEntry
    | SamplingChangeEntry
    | CommandEntry
    | SnapshotEntry
)


def entry_json(entry: JournalEntry) -> dict[str, Any]:
    """The one writer: an entry as the JSON object of its journal line (without `t_ms`)."""
    key = _KEYS[type(entry)]
    data: dict[str, Any] = {key: _KINDS[key][1](entry)}
    if isinstance(entry, EventEntry):
        if entry.call is not None:
            data["call"] = {"id": entry.call.id, "name": entry.call.name, "arguments": entry.call.arguments}
        if entry.duration_ms is not None:
            data["duration_ms"] = entry.duration_ms
    elif isinstance(entry, ApprovalModeEntry) and entry.sandbox is not None:
        data["sandbox"] = entry.sandbox.value
    return data


def _read_event(data: Mapping[str, Any]) -> EventEntry:
    call = data.get("call")
    recorded = (
        RecordedCall(str(call["id"]), str(call["name"]), call.get("arguments"))
        if isinstance(call, Mapping)
        else None
    )
    return EventEntry(_event(data["event"]), recorded, _optional_int(data.get("duration_ms")))


def _read_call_without_response(data: Mapping[str, Any]) -> CallWithoutResponse:
    body = data["call_without_response"]
    request = body["request"]
    if not isinstance(request, Mapping):
        raise JournalError("call_without_response: the request is not an object")
    return CallWithoutResponse(request, _event(body["event"]), _optional_int(body.get("duration_ms")))


def _read_retry(data: Mapping[str, Any]) -> RetryEntry:
    retry = data["retry"]
    delay = retry["delay"]
    if not isinstance(delay, (int, float)) or isinstance(delay, bool):
        raise JournalError("retry: the delay is not a number")
    failure = retry.get("failure") or {}
    return RetryEntry(
        float(delay), int(retry.get("attempt", 0)), failure if isinstance(failure, Mapping) else {}
    )


def _read_turn_end(data: Mapping[str, Any]) -> TurnEndEntry:
    end = from_json(data["turn_end"])
    if not isinstance(end, EndTurn):
        raise JournalError("turn_end: not an EndTurn")
    return TurnEndEntry(end)


def _read_approval_mode(data: Mapping[str, Any]) -> ApprovalModeEntry:
    sandbox = data.get("sandbox")
    return ApprovalModeEntry(
        ApprovalMode(data["approval_mode"]), SandboxMode(sandbox) if sandbox is not None else None
    )


def _read_model_change(data: Mapping[str, Any]) -> ModelChangeEntry:
    model = data["model_change"]
    if not isinstance(model, str) or not model:
        raise JournalError("model_change: not a model name")
    return ModelChangeEntry(model)


def _read_sampling_change(data: Mapping[str, Any]) -> SamplingChangeEntry:
    temperature = data["sampling_change"]["temperature"]
    if temperature is not None and (not isinstance(temperature, float) or not 0.0 <= temperature <= 2.0):
        raise JournalError("sampling_change: the temperature is not a number from 0 to 2")
    seed = data["sampling_change"].get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise JournalError("sampling_change: the seed is not a whole number")
    return SamplingChangeEntry(temperature, seed)


def _read_command(data: Mapping[str, Any]) -> CommandEntry:
    if not isinstance(data["command"], str):
        raise JournalError("command: not text")
    return CommandEntry(data["command"])


def _read_snapshot(data: Mapping[str, Any]) -> SnapshotEntry:
    if not isinstance(data["workspace_snapshot"], Mapping):
        raise JournalError("workspace_snapshot: not an object")
    return SnapshotEntry(data["workspace_snapshot"])


_KINDS: dict[str, tuple[type, Callable[[Any], Any], Callable[[Mapping[str, Any]], JournalEntry]]] = {
    "event": (EventEntry, lambda e: to_json(e.event), _read_event),
    "call_without_response": (
        CallWithoutResponse,
        lambda e: {"request": dict(e.request), "event": to_json(e.event), "duration_ms": e.duration_ms},
        _read_call_without_response,
    ),
    "retry": (
        RetryEntry,
        lambda e: {"delay": e.delay, "attempt": e.attempt, "failure": dict(e.failure)},
        _read_retry,
    ),
    "turn_end": (TurnEndEntry, lambda e: to_json(e.end), _read_turn_end),
    "approval_mode": (ApprovalModeEntry, lambda e: e.mode.value, _read_approval_mode),
    "model_change": (ModelChangeEntry, lambda e: e.model, _read_model_change),
    "sampling_change": (
        SamplingChangeEntry,
        lambda e: {"temperature": e.temperature, "seed": e.seed},
        _read_sampling_change,
    ),
    "command": (CommandEntry, lambda e: e.text, _read_command),
    "workspace_snapshot": (SnapshotEntry, lambda e: dict(e.info), _read_snapshot),
}
"""Each entry's key, the value written under it, and its reader: the one place a record's
kind is told from its keys."""
_KEYS = {kind: key for key, (kind, _, _) in _KINDS.items()}
INFORMATIONAL = tuple(kind for kind in _KEYS if kind not in (EventEntry, CallWithoutResponse))
"""Entries that answer no request of the driver's (replay checks or applies them where they stand)."""


def entry_key(data: Mapping[str, Any]) -> str | None:
    """The key a journal record is written under ("event", "turn_end", ...); None when unknown."""
    return next((key for key in _KINDS if key in data), None)


def read_entry(data: Mapping[str, Any]) -> JournalEntry:
    """The one reader: a journal line's JSON object as a typed entry (JournalError if it is none)."""
    key = entry_key(data)
    if key is None:
        raise JournalError(f"an unknown journal record ({', '.join(map(str, list(data)[:3])) or 'empty'})")
    try:
        return _KINDS[key][2](data)
    except JournalError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError, ArithmeticError) as error:
        raise JournalError(
            f"a journal record of an unexpected shape ({type(error).__name__}: {error})"
        ) from None


def usage_totals(entries: Iterable[JournalEntry]) -> tuple[int, float | None]:
    """(tokens, cost) summed over the turn ends among `entries`; cost None when none reported one."""
    tokens, cost = 0, None
    for entry in entries:
        if isinstance(entry, TurnEndEntry):
            tokens += entry.end.usage.total_tokens
            if entry.end.usage.cost is not None:
                cost = (cost or 0.0) + entry.end.usage.cost
    return tokens, cost


def _event(data: Any) -> Event:
    event = from_json(data)
    if not attrs.has(type(event)) or type(event).__module__ != "nano_code.kernel.events":
        raise JournalError("not a kernel event")
    return event  # type: ignore[no-any-return]


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
