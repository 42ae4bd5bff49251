"""A recorded session as the viewer's timeline: what happened, in order.

Records become kernel events as replay reads them (`record_event`), and the events are folded
through the kernel's own `transition` from the recorded settings, so the notices a live run
showed (retries, compaction, refused cache markers, empty replies), the calls it asked approval
for and the summaries it requested come from the kernel, not from guesses. Step numbers, tokens,
cost and durations are the corpus tables' (`session_tables`): the viewer and `nano-code export`
agree. A file is data: an odd record becomes a note on the page, never an exception.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

import attrs

from nano_code.adapters.journal import (
    ApprovalModeEntry,
    CallWithoutResponse,
    CommandEntry,
    EventEntry,
    JournalError,
    ModelChangeEntry,
    RetryEntry,
    SamplingChangeEntry,
    SnapshotEntry,
    TurnEndEntry,
)
from nano_code.adapters.session_file import Record, SessionFile
from nano_code.adapters.tools import tool_specs
from nano_code.kernel.actions import (
    Action,
    AskApproval,
    CallModel,
    CallPurpose,
    EndTurn,
    RetryModel,
    RunTool,
    ShowText,
    TextKind,
)
from nano_code.kernel.events import (
    ApprovalDecision,
    ClearConversation,
    CompactRequest,
    Event,
    Interrupt,
    ModelFailure,
    ModelReply,
    ReplyToolCall,
    ToolCallFacts,
    ToolResult,
    UserInput,
)
from nano_code.kernel.machine import transition
from nano_code.kernel.policy import parse_arguments
from nano_code.kernel.state import State, initial_state
from nano_code.kernel.types import ApprovalMode, AssistantMessage, SandboxMode, ToolSpec
from nano_code.session.changes import applied
from nano_code.session.corpus import session_tables
from nano_code.session.recording import response_event
from nano_code.session.settings import kernel_config, recorded_agents_md


@attrs.define
class Prompt:
    """What the user started a turn with: a task, or /compact or /clear."""

    text: str
    kind: str  # "prompt", "compact" or "clear"
    line: int


@attrs.define
class Notice:
    """A line the run showed or the file says: kind "notice", "warning", "error" or "setting"."""

    text: str
    kind: str
    line: int


@attrs.define
class CallView:
    """One tool call the model asked for, and what became of it."""

    call_id: str
    name: str
    arguments: Any  # the parsed arguments (a dict), or the raw text when they did not parse
    refused: str | None = None  # the kernel's answer to unusable arguments: never run
    asked: str | None = None  # why the kernel asked for approval (None: it did not ask)
    verdict: str | None = None
    verdict_reason: str = ""
    ran: bool = False  # the kernel asked the driver to run it
    unasked_because: str = ""  # why it ran without asking
    inside_workspace: bool | None = None
    output: str | None = None
    is_error: bool = False
    exit_status: int | None = None
    duration_ms: int | None = None
    interrupted: bool = False


@attrs.define
class Step:
    """One model call (a retry is a step of its own) with its reply or failure and its tool calls."""

    row: Mapping[str, Any]  # its row of the corpus `steps` table
    line: int
    reply: ModelReply | None = None
    failure: ModelFailure | None = None
    interrupted: bool = False
    unreadable: str = ""
    summary: bool = False  # compaction's summary request, not a step of the conversation
    forked_here: bool = False  # the first step of a fork's live part
    calls: list[CallView] = attrs.Factory(list)


@attrs.define
class TurnEnded:
    end: EndTurn
    line: int


Item = Prompt | Notice | Step | TurnEnded


@attrs.frozen
class Timeline:
    session: SessionFile
    overview: Mapping[str, Any]  # its row of the corpus `sessions` table
    items: tuple[Item, ...]


def session_timeline(session: SessionFile) -> Timeline:
    """`session` as a timeline of prompts, steps (with their tool calls), notices and turn ends."""
    tables = session_tables(session)
    walker = _Walker(session, tables.steps)
    for record in session.records:
        walker.record(record)
    return Timeline(session, tables.session, tuple(walker.items))


def _fold_start(metadata: Mapping[str, Any]) -> tuple[State | None, str]:
    try:
        return initial_state(kernel_config(metadata.get("settings") or {}, recorded_agents_md(metadata))), ""
    except Exception as error:  # a file is data: any odd setting only turns the fold off
        return None, f"{type(error).__name__}: {error}"


class _Walker:
    """Walks the records in order, building the items and folding events through the kernel."""

    def __init__(self, session: SessionFile, steps: tuple[Mapping[str, Any], ...]) -> None:
        self.items: list[Item] = []
        self.rows = {row["line"]: row for row in steps}
        self.specs: dict[str, ToolSpec] = {spec.name: spec for spec in tool_specs()}
        self.step: Step | None = None
        self.next_is_summary = False
        parent = session.metadata.get("parent")
        fork_at = parent.get("fork_at") if isinstance(parent, Mapping) else None
        self.fork_at = fork_at if isinstance(fork_at, int) else None
        self.state, why = _fold_start(session.metadata)
        if self.state is None:
            self._note(0, f"the recorded settings are not usable ({why}): kernel notices are not shown")
        sandbox = session.metadata.get("sandbox")
        if isinstance(sandbox, Mapping) and sandbox.get("notice"):
            self._note(0, f"sandbox: {sandbox['notice']}", "warning")

    def _note(self, line: int, text: str, kind: str = "notice") -> None:
        self.items.append(Notice(text, kind, line))

    def record(self, record: Record) -> None:
        if record.kind == "interaction":
            try:
                event: ModelReply | ModelFailure = response_event(record.data)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                step = self._new_step(record.line)
                step.unreadable = f"the response record has an odd shape ({type(error).__name__})"
                return
            self._model_event(self._new_step(record.line), event, record.line)
            return
        try:
            entry = record.entry
        except JournalError as error:
            self._note(record.line, f"line {record.line}: an unreadable journal record ({error})", "error")
            return
        if isinstance(entry, EventEntry):
            self._event_entry(entry, record.line)
        elif isinstance(entry, CallWithoutResponse):
            self._model_event(self._new_step(record.line), entry.event, record.line)
        else:
            self._informational(entry, record.line)

    def _new_step(self, line: int) -> Step:
        row = self.rows.get(line, {})
        step = Step(row=row, line=line, summary=self.next_is_summary)
        step.forked_here = self.fork_at is not None and row.get("step") == self.fork_at + 1
        self.next_is_summary = False
        self.step = step
        self.items.append(step)
        return step

    def _model_event(self, step: Step, event: Event, line: int) -> None:
        if isinstance(event, ModelReply):
            step.reply = event
        elif isinstance(event, ModelFailure):
            step.failure = event
        elif isinstance(event, Interrupt):
            step.interrupted = True
        actions = self._kernel(event, line)
        if isinstance(event, ModelReply) and event.tool_calls:
            ids = self._kernel_ids(len(event.tool_calls))
            step.calls = [
                self._call(raw, ids[n] if ids else raw.id) for n, raw in enumerate(event.tool_calls)
            ]
        self._actions(actions, line)

    def _kernel_ids(self, count: int) -> list[str]:
        """The ids the kernel gave the reply's calls (it renames empty or repeated ones)."""
        last = self.state.history[-1] if self.state is not None and self.state.history else None
        if isinstance(last, AssistantMessage) and len(last.tool_calls) == count:
            return [call.id for call in last.tool_calls]
        return []

    def _call(self, raw: ReplyToolCall, call_id: str) -> CallView:
        parsed = parse_arguments(self.specs.get(raw.name), raw.name, raw.arguments)
        if isinstance(parsed, str):
            arguments: Any = raw.arguments or ""
            with contextlib.suppress(ValueError, RecursionError):
                arguments = json.loads(arguments) if arguments else {}
            return CallView(call_id, raw.name, arguments, refused=parsed)
        return CallView(call_id, raw.name, parsed)

    def _event_entry(self, entry: EventEntry, line: int) -> None:
        event = entry.event
        if entry.call is not None:
            view = self._call_view(entry.call.id, entry.call.name, entry.call.arguments)
            if isinstance(event, ToolCallFacts):
                view.inside_workspace = event.inside_workspace
            elif isinstance(event, ApprovalDecision):
                view.verdict, view.verdict_reason = event.verdict.value, event.reason
            elif isinstance(event, ToolResult):
                view.output, view.is_error, view.exit_status = event.output, event.is_error, event.exit_status
                view.duration_ms = entry.duration_ms
            elif isinstance(event, Interrupt):
                view.interrupted, view.duration_ms = True, entry.duration_ms
        elif isinstance(event, UserInput):
            self.items.append(Prompt(event.text, "prompt", line))
        elif isinstance(event, CompactRequest):
            self.items.append(Prompt("/compact", "compact", line))
        elif isinstance(event, ClearConversation):
            self.items.append(Prompt("/clear", "clear", line))
        elif isinstance(event, Interrupt):
            self._note(line, "interrupted (Ctrl-C)", "warning")
        elif isinstance(event, (ModelReply, ModelFailure)):
            self._model_event(self._new_step(line), event, line)
            return
        self._actions(self._kernel(event, line), line)

    def _call_view(self, call_id: str, name: str, arguments: Any) -> CallView:
        """The current step's call with this id; a new one when the reply did not name it."""
        if self.step is None:
            self.step = self._new_step(0)
        for view in self.step.calls:
            if view.call_id == call_id:
                return view
        view = CallView(call_id, name, arguments)
        self.step.calls.append(view)
        return view

    def _informational(self, entry: object, line: int) -> None:
        if isinstance(entry, TurnEndEntry):
            self.items.append(TurnEnded(entry.end, line))
        elif isinstance(entry, RetryEntry):
            if self.state is None:  # the kernel's own retry notice says it otherwise
                message = entry.failure.get("message", "")
                self._note(
                    line, f"retry, attempt {entry.attempt} after {entry.delay:.1f}s: {message}", "warning"
                )
        elif isinstance(entry, ApprovalModeEntry):
            sandbox = f", sandbox {entry.sandbox.value}" if entry.sandbox is not None else ""
            self._setting(entry, line, f"from here on: approval {entry.mode.value}{sandbox}")
        elif isinstance(entry, ModelChangeEntry):
            self._setting(entry, line, f"from here on the requests name the model {entry.model}")
        elif isinstance(entry, SamplingChangeEntry):
            self._setting(entry, line, f"from here on: temperature {entry.temperature}, seed {entry.seed}")
        elif isinstance(entry, CommandEntry):
            self._note(line, f"the user typed {entry.text}", "setting")
        elif isinstance(entry, SnapshotEntry):
            self._note(line, _snapshot_text(entry.info), "setting")

    def _setting(
        self, entry: ApprovalModeEntry | ModelChangeEntry | SamplingChangeEntry, line: int, text: str
    ) -> None:
        self._note(line, text, "setting")
        if self.state is not None:
            try:
                self.state = applied(self.state, entry)
            except Exception as error:  # a file's odd value: only the fold stops
                self._stop_fold(line, error)

    def _kernel(self, event: Event, line: int) -> list[Action]:
        if self.state is None:
            return []
        try:
            self.state, actions = transition(self.state, event)
        except Exception as error:  # a file is data: the fold stops, the page goes on
            self._stop_fold(line, error)
            return []
        return actions

    def _stop_fold(self, line: int, error: Exception) -> None:
        self.state = None
        self._note(
            line,
            f"line {line}: the kernel does not take this record here ({type(error).__name__}: {error}); "
            "its notices and approval reasons are not shown from here on",
            "warning",
        )

    def _actions(self, actions: list[Action], line: int) -> None:
        for action in actions:
            if isinstance(action, ShowText) and action.kind is not TextKind.ASSISTANT:
                self._note(line, action.text, action.kind.value)
            elif isinstance(action, (CallModel, RetryModel)):
                self.next_is_summary = action.purpose is CallPurpose.SUMMARY
            elif isinstance(action, AskApproval) and self.step is not None:
                self._call_view(
                    action.call.id, action.call.name, dict(action.arguments)
                ).asked = action.reason
            elif isinstance(action, RunTool) and self.step is not None:
                view = self._call_view(action.call.id, action.call.name, dict(action.arguments))
                view.ran = True
                if view.asked is None and self.state is not None:
                    view.unasked_because = _why_unasked(self.state, self.specs.get(view.name))


def _why_unasked(state: State, spec: ToolSpec | None) -> str:
    """Why the approval policy let a call run without asking (kernel/policy.py's cases)."""
    config = state.config
    if config.approval is ApprovalMode.AUTO:
        return "every call is approved: --yes"
    if spec is None:
        return ""
    if spec.name in state.always_approved:
        return "the user approved this tool for the session"
    if config.sandbox is not SandboxMode.OFF and spec.sandboxed:
        return f"it runs inside the {config.sandbox.value} sandbox"
    if spec.mutates:
        return f"a write inside the workspace, which the {config.sandbox.value} sandbox confines"
    return "it only reads, inside the workspace"


def _snapshot_text(info: Mapping[str, Any]) -> str:
    if "error" in info:
        return f"no workspace snapshot: {info['error']}"
    files, size = info.get("files"), info.get("bytes")
    return f"workspace snapshot taken: {files} file(s), {size} bytes"
