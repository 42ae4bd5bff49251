"""Reading a recording: the events its records stand for, the state where it stopped, its snapshot."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nano_code.adapters.journal import INFORMATIONAL, CallWithoutResponse, EventEntry, SnapshotEntry
from nano_code.adapters.recorder import Recorder
from nano_code.adapters.session_file import Record, SessionFile
from nano_code.adapters.snapshot import SnapshotError, SnapshotInfo, archive_path
from nano_code.adapters.snapshot_restore import read_archive, restored_workspace
from nano_code.kernel.events import Event, ModelFailure, ModelReply
from nano_code.kernel.machine import transition
from nano_code.kernel.state import State, initial_state
from nano_code.kernel.stream import ResponseDecoder
from nano_code.kernel.types import KernelConfig
from nano_code.session.changes import applied, is_setting_change


class ResumeError(Exception):
    """A recorded session's events do not rebuild a state to resume from."""


def response_event(interaction: Mapping[str, Any]) -> ModelReply | ModelFailure:
    """Decode a recorded response exactly as the live client decodes a live one."""
    response = interaction["response"]
    headers = {k: (v[0] if isinstance(v, list) and v else str(v)) for k, v in response["headers"].items()}
    decoder = ResponseDecoder(int(response["status"]["code"]), headers)
    decoder.feed(response["body"]["string"].encode("utf-8"))
    return decoder.finish()


def record_event(record: Record) -> Event | None:
    """The kernel event a record stands for; None for informational records."""
    if record.kind == "interaction":
        return response_event(record.data)
    entry = record.entry
    if isinstance(entry, (EventEntry, CallWithoutResponse)):
        return entry.event
    return None


def rebuild_state(session: SessionFile, config: KernelConfig) -> State:
    """Fold the recorded events and setting changes through the kernel: the state where it stopped."""
    state = initial_state(config)
    for record in session.records:
        try:
            if record.kind == "journal" and is_setting_change(record.entry):
                state = applied(state, record.entry)  # type: ignore[arg-type]
            elif (event := record_event(record)) is not None:
                state, _ = transition(state, event)
        except Exception as error:  # a file is data: whatever it holds, one clear line
            raise ResumeError(f"line {record.line}: {error}") from error
    return state


def informational(record: Record) -> bool:
    """A journal entry that answers no request of the driver's."""
    return record.kind == "journal" and isinstance(record.entry, INFORMATIONAL)


def event_entry(record: Record | None) -> EventEntry | None:
    entry = record.entry if record is not None and record.kind == "journal" else None
    return entry if isinstance(entry, EventEntry) else None


def describe(record: Record | None) -> str:
    """What a record is, for a divergence's summary."""
    if record is None:
        return "the end of the recording"
    if record.kind == "interaction":
        return "a model request"
    entry = record.entry
    if isinstance(entry, CallWithoutResponse):
        return "a model request (without response)"
    if isinstance(entry, EventEntry):
        kind = type(entry.event).__name__
        return kind + (f" for {entry.call.name}" if entry.call else "")
    return type(entry).__name__


def _snapshot_entry(session: SessionFile) -> SnapshotEntry | None:
    """The session's workspace snapshot entry (the last one), if it has one."""
    entries = list(session.readable_entries("workspace_snapshot"))
    entry = entries[-1] if entries else None
    assert entry is None or isinstance(entry, SnapshotEntry)
    return entry


def restore_workspace(path: Path, session: SessionFile) -> Path:
    """A fresh temporary directory holding the workspace as the session found it."""
    if (entry := _snapshot_entry(session)) is None:
        raise SnapshotError(
            f"{path} has no workspace snapshot (recorded before nano-code took them, or with "
            "NANO_CODE_SNAPSHOT_MAX_BYTES=0): pass --workspace DIR to run its tools in a directory "
            "of your choosing (they will change it)"
        )
    if "error" in entry.info:
        raise SnapshotError(f"{path} has no workspace snapshot: taking it failed ({entry.info['error']})")
    return restored_workspace(path, SnapshotInfo.from_json(entry.info))


def carry_snapshot(path: Path, session: SessionFile, fork_to: Path, recorder: Recorder) -> None:
    """Give a fork a checked copy of the parent's snapshot, so it can be re-run or forked again."""
    if (entry := _snapshot_entry(session)) is None:
        return
    if "error" in entry.info:
        recorder.on_snapshot(dict(entry.info))
        return
    try:
        info = SnapshotInfo.from_json(entry.info)
        data = read_archive(path, info)
        target = archive_path(fork_to)
        target.unlink(missing_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        recorder.on_snapshot({**info.to_json(), "file": target.name})
    except (SnapshotError, OSError) as error:
        recorder.on_snapshot({"error": f"the parent's snapshot could not be copied: {error}"})
