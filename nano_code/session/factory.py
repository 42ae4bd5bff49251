"""The one place a session is put together: client, tools, performer, recorder, driver.

A fork's live part is a `live_performer` too, so it runs as a live session does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from nano_code.adapters.config import Settings
from nano_code.adapters.live import Approver, LivePerformer
from nano_code.adapters.model_client import Exchange, ModelClient
from nano_code.adapters.sandbox import Sandbox, choose
from nano_code.adapters.secrets import Redactor
from nano_code.adapters.threads import background_thread
from nano_code.adapters.tool import ToolContext
from nano_code.driver import Driver, Observer
from nano_code.kernel.actions import AskApproval, CallModel, CheckToolCall, RetryModel, RunTool
from nano_code.kernel.events import (
    ApprovalDecision,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolCallFacts,
    ToolResult,
)
from nano_code.kernel.state import State
from nano_code.kernel.stream import StreamDelta
from nano_code.kernel.types import SandboxMode

if TYPE_CHECKING:
    from nano_code.adapters.recorder import Recorder
    from nano_code.adapters.session_file import SessionFile


def live_performer(
    settings: Settings,
    workspace: Path,
    approve: Approver,
    *,
    on_delta: Callable[[StreamDelta], None] | None = None,
    exchange_sinks: Iterable[Callable[[Exchange], None]] = (),
    sandbox: Sandbox | None = None,
) -> LivePerformer:
    """Real model calls to the server `settings` name, real tools in `workspace` (inside
    `sandbox` when given), and `approve` for what needs a person's yes."""
    client = ModelClient.for_settings(settings)
    client.exchange_sinks.extend(exchange_sinks)
    context = ToolContext(workspace=workspace, shell_timeout=settings.shell_timeout, sandbox=sandbox)
    return LivePerformer(client, context, approve, on_delta=on_delta)


def choose_sandbox(
    requested: str | None, network: bool, workspace: Path
) -> tuple[Sandbox | None, str | None]:
    """The sandbox `requested` names (None: the default), and a notice when the default cannot
    be had; SandboxUnavailable when a named mode cannot: never a silent fallback."""
    mode = SandboxMode(requested) if requested is not None else None
    return choose(mode, network=network, workspace=workspace)


def sandbox_provenance(requested: str | None, sandbox: Sandbox | None, notice: str | None) -> dict[str, Any]:
    """What a session records about its sandbox: asked for, and really in force."""
    mechanism = None if sandbox is None else "sandbox-exec" if sandbox.platform == "darwin" else "bwrap"
    return {
        "requested": requested or "default",
        "mode": sandbox.mode.value if sandbox is not None else "off",
        "network": sandbox.network if sandbox is not None else True,
        "in_force": sandbox is not None,
        "mechanism": mechanism,
        "notice": notice,
    }


def open_recorder(
    path: Path, metadata: Mapping[str, Any] | None, redactor: Redactor, resume_from: SessionFile | None = None
) -> Recorder:
    """A recorder appending to `path`: a new file headed by `metadata`, or `resume_from`'s."""
    from nano_code.adapters.recorder import Recorder  # imported by recorded runs only
    from nano_code.adapters.session_writer import SessionWriter

    return Recorder(SessionWriter(path, metadata, redactor.check, resume_from=resume_from), redactor)


class WorkspaceSnapshot:
    """Takes the workspace snapshot in a thread while the first request waits on the model;
    the first tool waits for it, and the driving thread journals it."""

    def __init__(self, workspace: Path, session_path: Path, max_bytes: int, recorder: Recorder) -> None:
        self.recorder = recorder
        self.info: dict[str, Any] | None = None
        self._journalled = False
        self._workspace, self._session_path, self._max_bytes = workspace, session_path, max_bytes
        self._thread: threading.Thread | None = None
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            thread = background_thread(self._take, "nano-code-snapshot")
            try:
                thread.start()
            except RuntimeError:  # no thread to be had: `finish` takes it in this one
                return
            self._thread = thread

    def _take(self) -> None:
        from nano_code.adapters import snapshot

        try:
            self.info = snapshot.take(self._workspace, self._session_path, self._max_bytes).to_json()
        except (OSError, snapshot.SnapshotError, ValueError) as error:
            self.info = {"error": f"{type(error).__name__}: {error}"}

    def finish(self) -> None:
        """Wait for the snapshot and journal it (once)."""
        if self._journalled:
            return
        self.start()
        if self._thread is None:
            self._take()
        else:
            self._thread.join()
        self._journalled = True
        self.recorder.on_snapshot(self.info or {"error": "no snapshot was taken"})


class SnapshotFirst:
    """A performer whose first tool run waits for the workspace snapshot."""

    def __init__(self, performer: LivePerformer, snapshot: WorkspaceSnapshot) -> None:
        self.performer = performer
        self.snapshot = snapshot

    def call_model(self, action: CallModel | RetryModel) -> ModelReply | ModelFailure | Interrupt:
        self.snapshot.start()  # taken while the model thinks
        return self.performer.call_model(action)

    def check_tool_call(self, action: CheckToolCall) -> ToolCallFacts | Interrupt:
        return self.performer.check_tool_call(action)

    def ask_approval(self, action: AskApproval) -> ApprovalDecision | Interrupt:
        return self.performer.ask_approval(action)

    def run_tool(self, action: RunTool) -> ToolResult | Interrupt:
        self.snapshot.finish()
        return self.performer.run_tool(action)


@attrs.define
class Session:
    """A live session, wired: drive it with `driver`, then `close` it."""

    driver: Driver
    performer: LivePerformer
    recorder: Recorder | None
    snapshot: WorkspaceSnapshot | None = None

    def close(self) -> None:
        """Close the connection pool and the recording (the file stays loadable)."""
        self.performer.client.close()
        if self.snapshot is not None:
            self.snapshot.finish()
        if self.recorder is not None:
            self.recorder.close()


def live_session(
    settings: Settings,
    state: State,
    workspace: Path,
    approve: Approver,
    *,
    recorder: Recorder | None = None,
    observers: Sequence[Observer] = (),
    on_delta: Callable[[StreamDelta], None] | None = None,
    snapshot_beside: Path | None = None,
    sandbox: Sandbox | None = None,
) -> Session:
    """A live session from `state` (new or resumed), recorded by `recorder` when given: every
    event, action and HTTP exchange. With `snapshot_beside` (the new session file's path) the
    workspace is snapshotted beside it for forks, up to `settings.snapshot_max_bytes` (0: none)."""
    sinks = [recorder.on_exchange] if recorder is not None else []
    performer = live_performer(
        settings, workspace, approve, on_delta=on_delta, exchange_sinks=sinks, sandbox=sandbox
    )
    watchers: list[Observer] = [*observers, *([recorder] if recorder is not None else [])]
    snapshot = None
    if recorder is not None and snapshot_beside is not None and settings.snapshot_max_bytes > 0:
        snapshot = WorkspaceSnapshot(workspace, snapshot_beside, settings.snapshot_max_bytes, recorder)
    driver = Driver(state, performer if snapshot is None else SnapshotFirst(performer, snapshot), watchers)
    return Session(driver, performer, recorder, snapshot)
