"""One task run live and non-interactively, recorded, in a given workspace and sandbox.

The session is built as `nano-code -p` builds it (settings -> recorded settings -> kernel
config -> provenance -> recorder -> `live_session`), so an eval sample replays like any
recorded run. Nothing is ever asked: a call that needs approval is refused unless the
settings approve everything (`--yes`). A `stop` event ends the turn at its next step.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters.approval_prompt import refuse_without_terminal
from nano_code.adapters.config import Settings
from nano_code.adapters.sandbox import Sandbox
from nano_code.adapters.secrets import Redactor
from nano_code.driver import Performer
from nano_code.kernel.actions import AskApproval, CallModel, CheckToolCall, EndTurn, RetryModel, RunTool
from nano_code.kernel.events import (
    ApprovalDecision,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolCallFacts,
    ToolResult,
)
from nano_code.kernel.state import State, initial_state
from nano_code.session.factory import live_session, open_recorder, sandbox_provenance
from nano_code.session.settings import kernel_config, read_agents_md, recorded_settings


@attrs.frozen
class LiveRun:
    """How the turn ended, the kernel's final state (steps, usage), and the recording."""

    end: EndTurn
    state: State
    recording: Path | None


class Stoppable:
    """A performer that answers Interrupt instead of starting the next model call or tool once
    `stop` is set, so a run asked to stop ends at a step boundary, its recording closed."""

    def __init__(self, performer: Performer, stop: threading.Event) -> None:
        self.performer = performer
        self.stop = stop

    def call_model(self, action: CallModel | RetryModel) -> ModelReply | ModelFailure | Interrupt:
        return Interrupt() if self.stop.is_set() else self.performer.call_model(action)

    def check_tool_call(self, action: CheckToolCall) -> ToolCallFacts | Interrupt:
        return self.performer.check_tool_call(action)

    def ask_approval(self, action: AskApproval) -> ApprovalDecision | Interrupt:
        return self.performer.ask_approval(action)

    def run_tool(self, action: RunTool) -> ToolResult | Interrupt:
        return Interrupt() if self.stop.is_set() else self.performer.run_tool(action)


def run_task_live(
    task: str,
    settings: Settings,
    workspace: Path,
    *,
    sandbox: Sandbox | None,
    sandbox_notice: str | None = None,
    record_to: Path | None,
    origin: str,
    metadata: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
) -> LiveRun:
    """One turn of the real agent on `task` against the server `settings` name, its tools in
    `workspace` inside `sandbox` (None: no sandbox), recorded to `record_to` (a new file) with
    `metadata` added to the provenance, and a workspace snapshot beside it for later forks.
    Raises what opening the recording raises (FileExistsError, OSError, SecretLeakError)."""
    from nano_code.adapters.provenance import provenance

    root = workspace.resolve()
    agents_md = read_agents_md(root)
    recorded = recorded_settings(settings, root, settings.stream, sandbox)
    config = kernel_config(recorded, agents_md)
    recorder = None
    if record_to is not None:
        head = provenance(config, recorded.to_json(), root, agents_md, origin=origin)
        head["sandbox"] = sandbox_provenance(settings.sandbox, sandbox, sandbox_notice)
        head.update(metadata or {})
        recorder = open_recorder(record_to, head, Redactor(settings.api_key))
    session = live_session(
        settings,
        initial_state(config),
        root,
        lambda action: refuse_without_terminal(action, lambda text: None),
        recorder=recorder,
        snapshot_beside=record_to,
        sandbox=sandbox,
    )
    if stop is not None:
        session.driver.performer = Stoppable(session.driver.performer, stop)
    try:
        end = session.driver.run_turn(task)
    finally:
        session.close()
    return LiveRun(end, session.driver.state, record_to)
