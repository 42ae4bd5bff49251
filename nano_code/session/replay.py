"""Strict, offline replay of recorded sessions -- and the tools built on it.

Replay runs the real driver and the real urllib3 model client under vcrpy
(record mode "none": nothing is ever fetched live), with bodies matched as
canonical JSON and every recorded interaction required to be used. Tools are
not run: their recorded results are served, as are user inputs, approvals and
path facts. Before each model call or tool run, the new request or tool call
is compared with the recorded one; the first difference stops the replay with
a `Divergence` naming the step, the JSON paths that differ and both values.

Variants: `rebless` (accept new requests, write an updated copy), `fork_at`
(replay N steps exactly, then go live and record a child session), and
`live_tools` (also run the tools and report where their output differs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from nano_code import __version__
from nano_code.adapters.config import Settings
from nano_code.adapters.journal import (
    INFORMATIONAL,
    SETTING_CHANGES,
    ApprovalModeEntry,
    CallWithoutResponse,
    EventEntry,
    JournalEntry,
    ModelChangeEntry,
    RetryEntry,
    SamplingChangeEntry,
    SnapshotEntry,
    TurnEndEntry,
)
from nano_code.adapters.model_client import ModelClient, encode_body
from nano_code.adapters.recorder import Recorder, nano_code_commit, provenance
from nano_code.adapters.sandbox import Sandbox, SandboxUnavailable
from nano_code.adapters.secrets import Redactor
from nano_code.adapters.session_file import (
    FORMAT_VERSION,
    Record,
    SessionFile,
    SessionFileError,
    load_session,
)
from nano_code.adapters.snapshot import SnapshotError, archive_path
from nano_code.adapters.tools import (
    ToolContext,
    ToolOutcome,
    approved_at_prompt,
    find_tool,
    inside_workspace,
    run_tool,
)
from nano_code.driver import Driver, Observer, Performer, with_approval_mode, with_model, with_sampling
from nano_code.kernel.actions import (
    Action,
    AskApproval,
    CallModel,
    CheckToolCall,
    EndTurn,
    RetryModel,
    RunTool,
)
from nano_code.kernel.errors import DriverMisuseError
from nano_code.kernel.events import (
    ApprovalDecision,
    ClearConversation,
    CompactRequest,
    Event,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolCallFacts,
    ToolResult,
    UserInput,
    Verdict,
)
from nano_code.kernel.jsondiff import Difference, Mask, differences, render
from nano_code.kernel.machine import transition
from nano_code.kernel.policy import Approval, approval_requirement
from nano_code.kernel.request import RequestBody
from nano_code.kernel.serialize import to_json
from nano_code.kernel.state import State, initial_state
from nano_code.kernel.stream import ResponseDecoder, StreamDelta
from nano_code.kernel.types import ApprovalMode, KernelConfig, SandboxMode, Usage
from nano_code.session.factory import choose_sandbox, live_performer, open_recorder, sandbox_provenance


def _informational(record: Record) -> bool:
    """A journal entry that answers no request of the driver's (checked or applied where it stands)."""
    return record.kind == "journal" and isinstance(record.entry, INFORMATIONAL)


def _event_entry(record: Record | None) -> EventEntry | None:
    if record is None or record.kind != "journal":
        return None
    entry = record.entry
    return entry if isinstance(entry, EventEntry) else None


# ---------------------------------------------------------------- reports


@attrs.frozen
class Divergence:
    step: int
    """Model requests made up to the point of divergence, 1-based, retries included
    (so it counts HTTP requests; the kernel's `CallModel.step` counts per turn)."""
    line: int | None
    """Line of the session file holding the recorded side, when there is one."""
    what: str
    """'request', 'tool call', 'approval', 'extra request', 'missing request', ..."""
    summary: str
    differences: tuple[Difference, ...] = ()

    def render(self, verb: str = "diverged") -> str:
        """One line (then the differences): `verb` at where, what, summary; a rebless
        reports each change it accepted with "changed"."""
        where = f"step {self.step}" + (f" (line {self.line})" if self.line else "")
        text = f"{verb} at {where}: {self.what}: {self.summary}"
        if self.differences:
            text += "\n" + render(self.differences)
        return text


@attrs.frozen
class ToolOutputDifference:
    step: int
    tool: str
    recorded: str
    actual: str


@attrs.frozen
class ReplayReport:
    path: str
    status: str
    """'identical', 'diverged', 'error', 'reblessed', 'forked', or 'tool outputs differ'
    (with live tools: the replay itself was identical, the tools' outputs here were not)."""
    steps: int = 0
    tool_calls: int = 0
    usage: Usage = attrs.field(factory=Usage)
    seconds: float = 0.0
    divergence: Divergence | None = None
    error: str | None = None
    masked: tuple[str, ...] = ()
    """--ignore patterns that actually hid a difference."""
    changed_requests: tuple[Divergence, ...] = ()
    tool_output_differences: tuple[ToolOutputDifference, ...] = ()
    output_path: str | None = None
    unused_masks: tuple[str, ...] = ()
    """--ignore patterns that hid nothing (a typo, or a field that did not change)."""
    torn: bool = False
    """The file's last line was cut off while being written (the session was killed):
    it was left out, and whatever it held is missing from the replay."""
    workspace: str | None = None
    """Where live tools (and a fork's live part) ran: a restored snapshot, or the caller's."""
    sandbox_notice: str | None = None
    """Why live tools ran without a sandbox, when the default could not be had."""
    not_rerun: int = 0
    """Recorded calls re-running here would have needed approval, and did not get it
    (no `--rerun-recorded`, nobody at a terminal said yes)."""

    @property
    def ok(self) -> bool:
        return self.status in ("identical", "reblessed", "forked")

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_json_report(self)
        return data


def to_json_report(value: Any) -> Any:
    if attrs.has(type(value)) and not type(value).__module__.startswith("nano_code.kernel"):
        return {f.name: to_json_report(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, Difference):
        return {"path": value.path, "recorded": value.recorded, "new": value.actual}
    if isinstance(value, Usage):
        data = {k: v for k, v in to_json(value).items() if k != "type"}
        if isinstance(data.get("cost"), float):
            data["cost"] = round(data["cost"], 10)  # a sum of server-reported costs, not 0.0272000...02
        return data
    if isinstance(value, (list, tuple)):
        return [to_json_report(v) for v in value]
    return value


class Diverged(Exception):
    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.render())
        self.divergence = divergence


class ReplayError(Exception):
    """The session cannot be replayed (unreadable, or made by an incompatible version)."""


class ResumeError(Exception):
    pass


# ---------------------------------------------------------------- reading records


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
    """Fold the recorded events through the kernel: the state where the session stopped."""
    state = initial_state(config)
    for record in session.records:
        try:
            if record.kind == "journal" and isinstance(record.entry, SETTING_CHANGES):
                state = _changed(state, record.entry)
                continue
            event = record_event(record)
            if event is not None:
                state, _ = transition(state, event)
        except Exception as error:  # a file is data: whatever it holds, one clear line
            raise ResumeError(f"line {record.line}: {error}") from error
    return state


def _changed(state: State, entry: JournalEntry) -> State:
    """`state` after a recorded setting change."""
    if isinstance(entry, ApprovalModeEntry):
        return with_approval_mode(state, entry.mode, entry.sandbox)
    if isinstance(entry, ModelChangeEntry):
        return with_model(state, entry.model)
    if isinstance(entry, SamplingChangeEntry):
        return with_sampling(state, entry.temperature, entry.seed)
    return state


def apply_change(driver: Driver, entry: JournalEntry) -> None:
    """A recorded setting change, made through the driver (so a recorder copies it)."""
    if isinstance(entry, ApprovalModeEntry):
        driver.set_approval_mode(entry.mode, entry.sandbox)
    elif isinstance(entry, ModelChangeEntry):
        driver.set_model(entry.model)
    elif isinstance(entry, SamplingChangeEntry):
        driver.set_sampling(entry.temperature, entry.seed)


def _snapshot_entry(session: SessionFile) -> SnapshotEntry | None:
    """The session's workspace snapshot entry (the last one), if it has one."""
    entries = list(session.readable_entries("workspace_snapshot"))
    entry = entries[-1] if entries else None
    assert entry is None or isinstance(entry, SnapshotEntry)
    return entry


def restore_workspace(path: Path, session: SessionFile) -> Path:
    """A fresh temporary directory holding the workspace as the session found it."""
    from nano_code.adapters.snapshot import SnapshotInfo, restored_workspace

    entry = _snapshot_entry(session)
    if entry is None:
        raise SnapshotError(
            f"{path} has no workspace snapshot (recorded before nano-code took them, or with "
            "NANO_CODE_SNAPSHOT_MAX_BYTES=0): pass --workspace DIR to run its tools in a directory "
            "of your choosing (they will change it)"
        )
    if "error" in entry.info:
        raise SnapshotError(f"{path} has no workspace snapshot: taking it failed ({entry.info['error']})")
    return restored_workspace(path, SnapshotInfo.from_json(entry.info))


def _carry_snapshot(path: Path, session: SessionFile, fork_to: Path, recorder: Recorder) -> None:
    """Give a fork the parent's workspace snapshot (a checked copy beside it), so that the fork,
    which replays the parent's first steps, can itself be replayed with live tools or forked again."""
    from nano_code.adapters.snapshot import SnapshotInfo, read_archive

    entry = _snapshot_entry(session)
    if entry is None:
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


def _describe(record: Record | None) -> str:
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


# ---------------------------------------------------------------- the performer


Approver = Callable[[AskApproval], ApprovalDecision]


def refuse_all(action: AskApproval) -> ApprovalDecision:
    return ApprovalDecision(action.call.id, Verdict.DENY, "no terminal to ask and no --yes")


RERUN_REFUSED = "re-running a session file's own calls beyond the sandbox needs --rerun-recorded"


def refuse_recorded(action: AskApproval) -> ApprovalDecision:
    """Nobody to ask about a recorded call: refused (the file's calls are not ours to approve)."""
    return ApprovalDecision(action.call.id, Verdict.DENY, RERUN_REFUSED)


@attrs.define
class ReplayOptions:
    masks: tuple[Mask, ...] = ()
    rebless: bool = False
    live_tools: ToolContext | None = None
    fork_at: int | None = None
    approval: ApprovalMode = ApprovalMode.ASK
    """How a fork's live part (the live model's calls) is approved: from the current
    command line (`replay --yes`), never from the recording."""
    rerun_approval: ApprovalMode = ApprovalMode.ASK
    """How the file's own recorded calls are approved when re-run here (--live-tools, a
    fork's replayed part): AUTO only with `replay --rerun-recorded`. A received file is
    data; running its commands beyond what the sandbox allows is authority that only
    the command line grants, and `--yes` grants it for the live model alone."""
    approver: Approver = refuse_all
    rerun_approver: Approver = refuse_recorded
    """Who is asked about a recorded call that needs approval to re-run (without
    `--rerun-recorded`): a person at a terminal, or nobody."""
    live_model: str | None = None
    """The model a fork's live part names (`replay --fork-at N --model M`); the replayed
    part keeps the recorded one."""
    live_temperature: float | None = None
    """The temperature a fork's live part asks for (`--temperature`); likewise."""
    live_seed: int | None = None
    """The seed a fork's live part asks for (`--seed`); likewise."""
    sandbox_mode: SandboxMode = SandboxMode.OFF
    """The OS sandbox live tools run in (from the current command line)."""


class ReplayPerformer:
    """Serves a recording to the driver, checking every request and tool call against it."""

    def __init__(self, session: SessionFile, client: ModelClient, options: ReplayOptions) -> None:
        self.session = session
        self.records = session.records
        self.position = 0
        self.client = client
        self.options = options
        self.step = 0
        self.tool_calls = 0
        self.masked: set[str] = set()
        self.changed_requests: list[Divergence] = []
        self.tool_output_differences: list[ToolOutputDifference] = []
        self.forked = False
        """The fork point was reached and the driver handed to a live performer."""
        self.go_live: Callable[[], Performer] | None = None
        """Builds the live performer of a fork and hands the driver to it (see `replay_session`)."""
        self.on_delta: Callable[[StreamDelta], None] | None = None
        self.interactions_taken = 0
        """Interaction records consumed so far; the last one's index is what vcrpy may serve."""
        self._bodies = session.request_bodies()
        self.current_body: str | None = None
        """The request body, whole, of the interaction taken last (format 2 stores deltas)."""
        self.apply_change: Callable[[JournalEntry], None] | None = None
        """Applies a recorded setting change (approval mode, model) to the replayed state."""
        self._changed: dict[str, Any] = {}
        """Config fields a recorded or a fork's change set (model, temperature), and their values."""
        self._applied_up_to = 0
        self._live_always: set[str] = set()
        self.not_rerun = 0
        """Recorded calls that needed approval to re-run here and did not get it."""

    # -- cursor

    def _next_position(self) -> int | None:
        position = self.position
        while position < len(self.records):
            record = self.records[position]
            if _informational(record):
                entry = record.entry
                if position >= self._applied_up_to and isinstance(entry, SETTING_CHANGES):
                    self._applied_up_to = position + 1
                    self._change(entry)
                position += 1
                continue
            return position
        return None

    def peek(self) -> Record | None:
        position = self._next_position()
        return None if position is None else self.records[position]

    def take(self) -> Record | None:
        position = self._next_position()
        if position is None:
            return None
        self.position = position + 1
        record = self.records[position]
        if record.kind == "interaction":
            self.interactions_taken += 1
            self.current_body = next(self._bodies)
        return record

    def take_entry_if(self, kind: type) -> Record | None:
        """The record right at the cursor, taken, when it is a journal entry of `kind`."""
        if self.position < len(self.records):
            record = self.records[self.position]
            if record.kind == "journal" and isinstance(record.entry, kind):
                self.position += 1
                return record
        return None

    def diverge(
        self, what: str, summary: str, record: Record | None, found: Sequence[Difference] = ()
    ) -> Diverged:
        return Diverged(
            Divergence(
                step=max(self.step, 1),
                line=record.line if record else None,
                what=what,
                summary=summary,
                differences=tuple(found),
            )
        )

    def compare(self, recorded: Any, actual: Any) -> list[Difference]:
        found, used = differences(recorded, actual, self.options.masks)
        self.masked.update(used)
        return found

    def _interrupt_if_recorded(self) -> Interrupt | None:
        entry = _event_entry(self.peek())
        if entry is not None and isinstance(entry.event, Interrupt):
            self.take()
            return Interrupt()
        return None

    # -- Performer

    def call_model(self, action: CallModel | RetryModel) -> ModelReply | ModelFailure | Interrupt:
        if self.options.fork_at is not None and self.step >= self.options.fork_at:
            return self._go_live(action)
        self.step += 1
        if isinstance(action, RetryModel):
            retry = self.take_entry_if(RetryEntry)
            if retry is None:
                raise self.diverge(
                    "retry", "the new run retries a model call; the recording did not", self.peek()
                )
            assert isinstance(retry.entry, RetryEntry)
            found = self.compare(retry.entry.delay, action.delay)
            if found:
                # numbered as the request it retries (attempt 2 of step N is N's first retry)
                retried = self.step - (action.attempt - 1)
                raise Diverged(
                    Divergence(
                        max(retried, 1),
                        retry.line,
                        "retry delay",
                        f"the retry policy waits differently before retry {action.attempt - 1} of this step",
                        tuple(found),
                    )
                )
        interrupted = self._interrupt_if_recorded()
        if interrupted is not None:
            # The process died during this call (kill -9); `--resume` recorded it as interrupted.
            return interrupted
        record = self.take()
        if record is None:
            raise self.diverge(
                "extra request", "the new run sends a request the recording does not have", None
            )
        action = self._current_config(action)
        payload = encode_body(action.body)
        unanswered = record.entry if record.kind == "journal" else None
        if record.kind == "interaction":
            recorded_body: Any = self.current_body
        elif isinstance(unanswered, CallWithoutResponse):
            recorded_body = unanswered.request
        else:
            raise self.diverge(
                "extra request",
                f"the new run calls the model where the recording has {_describe(record)}",
                record,
            )
        if isinstance(recorded_body, str) and recorded_body.encode("utf-8") == payload:
            found = []  # byte-identical, the common case: no need to parse and walk both
        else:
            found = self.compare(_json_body(recorded_body), json.loads(payload))
        if found:
            if not self.options.rebless:
                raise self.diverge(
                    "request", f"{len(found)} difference(s) in the request body", record, found
                )
            self.changed_requests.append(
                Divergence(self.step, record.line, "request", f"{len(found)} difference(s)", tuple(found))
            )
        if isinstance(unanswered, CallWithoutResponse):
            return unanswered.event  # type: ignore[return-value]
        # One route for every replay, rebless included: the real client, under vcrpy.
        return self.client.call(action.body, self.on_delta, payload=payload, action=action)

    def _expect_event(self, kind: type, action: Action, call_name: str, arguments: Any) -> Event:
        """The recorded event of `kind` answering this call (Interrupt if one was recorded)."""
        interrupted = self._interrupt_if_recorded()
        if interrupted is not None:
            return interrupted
        record = self.take()
        entry = _event_entry(record)
        if entry is None or not isinstance(entry.event, kind):
            name = kind.__name__
            raise self.diverge(
                "tool call" if kind is ToolResult else name,
                f"the new run asks for {name} of {call_name}; the recording has {_describe(record)}",
                record,
            )
        recorded_call = entry.call
        found = self.compare(
            {
                "name": recorded_call.name if recorded_call else None,
                "arguments": recorded_call.arguments if recorded_call else None,
            },
            {"name": call_name, "arguments": json.loads(json.dumps(arguments))},
        )
        if found:
            raise self.diverge("tool call", f"{call_name} is called differently", record, found)
        return entry.event

    def check_tool_call(self, action: CheckToolCall) -> ToolCallFacts | Interrupt:
        event = self._expect_event(ToolCallFacts, action, action.call.name, json.loads(action.call.arguments))
        if isinstance(event, Interrupt):
            return event
        assert isinstance(event, ToolCallFacts)
        return attrs.evolve(event, call_id=action.call.id)

    def ask_approval(self, action: AskApproval) -> ApprovalDecision | Interrupt:
        event = self._expect_event(ApprovalDecision, action, action.call.name, action.arguments)
        if isinstance(event, Interrupt):
            return event
        assert isinstance(event, ApprovalDecision)
        return attrs.evolve(event, call_id=action.call.id)

    def run_tool(self, action: RunTool) -> ToolResult | Interrupt:
        self.tool_calls += 1
        recorded = self._expect_event(ToolResult, action, action.call.name, action.arguments)
        if isinstance(recorded, Interrupt):
            return recorded
        assert isinstance(recorded, ToolResult)
        if self.options.live_tools is not None:
            outcome = self._run_live_tool(action, self.options.live_tools)
            if outcome.output != recorded.output or outcome.exit_status != recorded.exit_status:
                self.tool_output_differences.append(
                    ToolOutputDifference(self.step, action.call.name, recorded.output, outcome.output)
                )
        return attrs.evolve(recorded, call_id=action.call.id)

    def _run_live_tool(self, action: RunTool, context: ToolContext) -> ToolOutcome:
        """Run a recorded tool call here, as a live session would: the recording's
        approvals and path facts count for nothing; paths are checked here, at use,
        and what needs approval is asked for (or refused without a terminal), unless
        `--rerun-recorded` approved the file's calls (`--yes` does not)."""
        tool = find_tool(action.call.name)
        if tool is None:
            return run_tool(action.call.name, action.arguments, context)
        inside: bool | None = None
        path = tool.spec.path_parameter
        if path is not None and isinstance(action.arguments.get(path), str):
            inside = inside_workspace(action.arguments[path], context.workspace)
        always = frozenset(self._live_always)
        mode = context.sandbox.mode if context.sandbox is not None else SandboxMode.OFF
        need = approval_requirement(tool.spec, self.options.rerun_approval, always, inside, mode)
        run_in = attrs.evolve(context, confined=inside is True)
        if need is not Approval.RUN:
            what = "it changes files or runs commands" if tool.spec.mutates else "its path is outside"
            decision = self.options.rerun_approver(AskApproval(action.call, action.arguments, what))
            if decision.verdict is Verdict.ALWAYS:
                self._live_always.add(tool.spec.name)
            elif decision.verdict is Verdict.DENY:
                self.not_rerun += 1
                reason = decision.reason or "not approved"
                return ToolOutcome(f"[recorded call not run here: {reason}]", is_error=True)
            run_in = approved_at_prompt(action.call.name, run_in)
        return run_tool(action.call.name, action.arguments, run_in)

    def _change(self, entry: JournalEntry) -> None:
        if isinstance(entry, ModelChangeEntry):
            self._changed["model"] = entry.model
        elif isinstance(entry, SamplingChangeEntry):
            self._changed["temperature"] = entry.temperature
            self._changed["seed"] = entry.seed
        if self.apply_change is not None:
            self.apply_change(entry)

    def _current_config(self, action: CallModel | RetryModel) -> CallModel | RetryModel:
        """`action` with the settings a change just before it switched to.

        The kernel builds a request as soon as the event before it is fed; a
        change journalled between that event and the request (a fork's
        `--model` or `--temperature` at the fork point) applies to that
        request too.
        """
        body = action.body
        if not self._changed or not isinstance(body, RequestBody):
            return action
        if all(getattr(body.config, name) == value for name, value in self._changed.items()):
            return action
        config = attrs.evolve(body.config, **self._changed)
        return attrs.evolve(action, body=RequestBody(config, body.history))

    def _go_live(self, action: CallModel | RetryModel) -> ModelReply | ModelFailure | Interrupt:
        """The fork point: from here a live performer carries out every action."""
        if self.go_live is None:
            raise ReplayError("no live model configured for --fork-at")
        live = self.go_live()
        self.forked = True
        # the command line's approval and sandbox, not the file's
        self._change(ApprovalModeEntry(self.options.approval, self.options.sandbox_mode))
        if self.options.live_model is not None:
            self._change(ModelChangeEntry(self.options.live_model))
        if self.options.live_temperature is not None or self.options.live_seed is not None:
            config = self.options
            self._change(SamplingChangeEntry(config.live_temperature, config.live_seed))
        return live.call_model(self._current_config(action))


def _json_body(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body) if isinstance(body, str) else body
    except ValueError:
        return body


class CallCounter:
    """Observer: model requests made, replayed or live (a fork's steps go on after the fork
    point), and whether the live part was interrupted (the recording's interrupts are its past)."""

    def __init__(self, performer: ReplayPerformer) -> None:
        self.calls = 0
        self.performer = performer
        self.live_interrupt = False

    def on_event(self, event: Event, state: State) -> None:
        if isinstance(event, Interrupt) and self.performer.forked:
            self.live_interrupt = True

    def on_action(self, action: Action, state: State) -> None:
        if isinstance(action, (CallModel, RetryModel)):
            self.calls += 1


class TurnEndChecker:
    """Observer: the new run must end each turn the way the recording did."""

    def __init__(self, performer: ReplayPerformer) -> None:
        self.performer = performer

    def on_event(self, event: Event, state: State) -> None:
        pass

    def on_action(self, action: Action, state: State) -> None:
        if not isinstance(action, EndTurn) or self.performer.forked:
            return
        record = self.performer.take_entry_if(TurnEndEntry)
        if record is None:
            return
        assert isinstance(record.entry, TurnEndEntry)
        recorded = record.entry.end.reason.value
        if recorded != action.reason.value:
            raise self.performer.diverge(
                "turn end",
                f"the turn ended {action.reason.value!r}; the recording ended it {recorded!r}",
                record,
                [Difference("$.reason", recorded, action.reason.value)],
            )


# ---------------------------------------------------------------- vcrpy


def _body_matcher(masks: tuple[Mask, ...]) -> Callable[[Any, Any], None]:
    def match(r1: Any, r2: Any) -> None:
        if r1.body == r2.body:
            return  # byte-identical: canonical JSON is equal too
        a, b = _json_body(r1.body), _json_body(r2.body)
        found, _ = differences(a, b, masks, limit=1)
        if found:
            raise AssertionError(f"bodies differ at {found[0].path}")

    return match


@contextlib.contextmanager
def offline_cassette(
    path: Path,
    masks: tuple[Mask, ...],
    session: SessionFile,
    expected: Callable[[], tuple[int, str | None]],
    match_body: bool = True,
) -> Iterator[Any]:
    """vcrpy with no recording, canonical-JSON body matching, no repeats.

    Host and port are not matched: a resumed session may have continued
    against a server on another port, and what a replay must hold fixed is
    what nano-code sent, not where the server happened to listen.

    vcrpy looks for a matching interaction by scanning the whole cassette
    several times per request, which makes long replays quadratic. Replay is
    strictly ordered anyway -- the performer has already checked the request
    against the one recorded interaction that may answer it -- so vcrpy is
    pointed at exactly that interaction (`expected`: its index and whole body),
    and still matches it, serves it, and counts it as played.

    The file is parsed once: vcrpy gets the interactions already loaded
    (`_LoadedPersister`), without their request bodies; the expected one's is
    put in place just before matching and taken out at the next, so only one
    body is ever held twice. The cassette is opened with `Cassette.use`, not
    through a `VCR` config: a config wraps every request hook in a deep copy
    of the request (body included) and nothing here filters requests, and the
    loaded responses are marked immutable, so vcrpy does not copy those either.
    """
    import vcr  # noqa: F401 - heavy (~100 ms): only replay pays for it
    from vcr.cassette import Cassette
    from vcr.matchers import method, query, requests_match
    from vcr.matchers import path as url_path
    from vcr.record_mode import RecordMode

    # A rebless accepts changed requests: the body is compared (and each change
    # reported) by the performer, not matched here.
    match_on = (method, url_path, query, *((_body_matcher(masks),) if match_body else ()))
    # vcrpy never reads the path (the persister hands over the parsed session) but builds
    # names from it, which fails on an undecodable file name: give it a clean spelling.
    shown_path = os.fsencode(path).decode("utf-8", "replace")
    with Cassette.use(
        path=shown_path,
        persister=_LoadedPersister(session),
        record_mode=RecordMode.NONE,
        match_on=match_on,
        allow_playback_repeats=False,
    ) as cassette:
        holding: list[Any] = []

        def only_the_expected_interaction(request: Any) -> Iterator[tuple[int, Any]]:
            index, body = expected()
            if 0 <= index < len(cassette.data):
                stored_request, response = cassette.data[index]
                if not holding or holding[-1] is not stored_request:
                    for earlier in holding:
                        earlier.body = None
                    holding[:] = [stored_request]
                    stored_request.body = body
                if requests_match(request, stored_request, cassette._match_on):
                    yield index, response

        cassette._responses = only_the_expected_interaction
        yield cassette


class _RecordedResponse(dict[str, Any]):
    """A recorded response as vcrpy plays it. Nothing changes it once loaded, so
    vcrpy's defensive deep copy of each response would only cost time."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _RecordedResponse:
        return self


class _LoadedPersister:
    """Hands vcrpy the session already parsed, so the file is opened once (a file
    swapped for a named pipe after loading cannot hang the replay) and read once.

    It builds vcrpy's requests (without their bodies: see `offline_cassette`)
    and responses (their bodies as bytes, as vcrpy's own loading leaves them)
    from the records, without touching the records themselves.
    """

    def __init__(self, session: SessionFile) -> None:
        self._session = session

    def load_cassette(self, cassette_path: str, serializer: Any) -> tuple[list[Any], list[Any]]:
        from vcr.request import Request

        requests: list[Any] = []
        responses: list[Any] = []
        for record in self._session.records:
            if record.kind != "interaction":
                continue
            request, response = record.data["request"], record.data["response"]
            requests.append(Request(request["method"], request["uri"], None, request["headers"]))
            body = response["body"]["string"]
            responses.append(
                _RecordedResponse(
                    status=response["status"],
                    headers=response["headers"],
                    body={"string": body.encode("utf-8") if isinstance(body, str) else body},
                )
            )
        return requests, responses

    @staticmethod
    def save_cassette(cassette_path: str, cassette_dict: Any, serializer: Any) -> None:
        raise SessionFileError("replay never writes through vcrpy")


# ---------------------------------------------------------------- running a replay


def replay_session(
    path: str | Path,
    *,
    ignore: Sequence[str] = (),
    rebless_to: Path | None = None,
    live_tools: bool | Path = False,
    fork_at: int | None = None,
    fork_to: Path | None = None,
    live_settings: Settings | None = None,
    live_model: str | None = None,
    live_temperature: float | None = None,
    live_seed: int | None = None,
    workspace: Path | None = None,
    sandbox: str | None = None,
    sandbox_network: bool = False,
    keep_workspace: bool = True,
    observers: Sequence[Observer] = (),
    on_delta: Callable[[StreamDelta], None] | None = None,
    config_overrides: Mapping[str, Any] | None = None,
    redactor: Redactor | None = None,
    approval: ApprovalMode = ApprovalMode.ASK,
    approver: Approver = refuse_all,
    rerun_recorded: bool = False,
    rerun_approver: Approver = refuse_recorded,
) -> ReplayReport:
    """Replay one session; never raises for a bad or diverging session (see the report).

    `live_tools` also runs each recorded tool call here and reports where its
    output differs; a fork (`fork_at`) does so up to the fork point, so its
    live part starts from the files the recorded tools left. They run in
    `workspace`, or by default in a fresh temporary directory holding the
    session's workspace snapshot (the user's own files are never touched unless
    they pass their directory as `workspace`); the report names it. Their
    commands run in the OS sandbox `sandbox` names (None: the default,
    workspace-write where it works), bounded to that directory.

    `approval` governs the live part of a fork (the live model's calls);
    `rerun_recorded` approves re-running the file's own recorded calls
    (`live_tools`, a fork's replayed part) where the sandbox alone would not
    let them run; what neither approves goes to `approver` (the live model's
    calls) or `rerun_approver` (the file's). All come from the
    caller's command line, never from the file. A fork's
    live part talks to the server `live_settings` name (with its key), and
    names `live_model`, `live_temperature` and `live_seed` in its requests when given (the
    replayed part keeps the recorded ones, and the switch is journalled). The
    recording's own approval mode and answers only reproduce its past.
    Output files (`rebless_to`, `fork_to`) are written beside the target
    and renamed into place only when the replay got that far, so a failed
    run leaves nothing behind. Interrupted (Ctrl-C, or SIGTERM raised as
    KeyboardInterrupt), in the replayed part or the live one, it removes its
    partial output, the fork's snapshot copy and the workspace it restored,
    then raises KeyboardInterrupt.
    """
    from nano_code.session.settings import (  # needs tool specs
        RecordedSettings,
        kernel_config,
        recorded_agents_md,
    )

    started = time.perf_counter()
    path = Path(path)
    masks = tuple(Mask.parse(pattern) for pattern in ignore)
    try:
        session = load_session(path)
        settings = RecordedSettings.from_json(session.metadata.get("settings"))
        settings = settings.with_overrides(config_overrides or {})
        config = kernel_config(settings, recorded_agents_md(session.metadata))
    except (SessionFileError, KeyError, TypeError, ValueError, AttributeError) as unreadable:
        return ReplayReport(str(path), "error", error=str(unreadable), seconds=time.perf_counter() - started)
    if isinstance(live_tools, Path) and workspace is None:
        workspace = live_tools  # the older spelling: live_tools=DIR
    where: Path | None = None
    restored = False
    live_sandbox: Sandbox | None = None
    sandbox_notice: str | None = None
    if live_tools or fork_at is not None:
        try:
            restored = workspace is None
            where = workspace.resolve() if workspace is not None else restore_workspace(path, session)
        except SnapshotError as no_workspace:
            return ReplayReport(
                str(path), "error", error=str(no_workspace), seconds=time.perf_counter() - started
            )
    leftovers: list[Path] = []  # what this run has written so far, and an interrupt removes
    try:
        if where is not None:
            try:
                live_sandbox, sandbox_notice = choose_sandbox(sandbox, sandbox_network, where)
            except SandboxUnavailable as unavailable:
                _discard(leftovers, where if restored else None)
                return ReplayReport(
                    str(path), "error", error=str(unavailable), seconds=time.perf_counter() - started
                )
        client = ModelClient(settings.base_url.rstrip("/") + "/chat/completions", api_key=None)
        options = ReplayOptions(
            masks=masks,
            rebless=rebless_to is not None,
            live_tools=ToolContext(
                workspace=where, shell_timeout=settings.shell_timeout, sandbox=live_sandbox
            )
            if where
            else None,
            fork_at=fork_at,
            approval=approval,
            rerun_approval=ApprovalMode.AUTO if rerun_recorded else ApprovalMode.ASK,
            approver=approver,
            rerun_approver=rerun_approver,
            live_model=live_model,
            live_temperature=live_temperature,
            live_seed=live_seed,
            sandbox_mode=live_sandbox.mode if live_sandbox is not None else SandboxMode.OFF,
        )
        performer = ReplayPerformer(session, client, options)
        performer.on_delta = on_delta
        counter = CallCounter(performer)
        all_observers: list[Observer] = [TurnEndChecker(performer), counter, *observers]
        closers: list[Callable[[], None]] = []
        recorder: Recorder | None = None
        output_path = rebless_to or fork_to
        if output_path is not None:
            metadata = {**session.metadata, "format_version": FORMAT_VERSION}
            if rebless_to is not None:
                metadata["reblessed_from"] = {"path": str(path), "session_id": metadata.get("session_id")}
                # the copy's requests are this version's: its provenance must say so
                metadata["nano_code_version"] = __version__
                metadata["nano_code_commit"] = nano_code_commit()
            else:
                # The fork's tools work in `where`: fingerprint it, never a directory a file names.
                assert where is not None
                fresh = provenance(config, settings.to_json(), where, metadata.get("agents_md"), "fork")
                fresh["parent"] = {
                    "path": str(path),
                    "session_id": metadata.get("session_id"),
                    "fork_at": fork_at,
                }
                fresh["sandbox"] = sandbox_provenance(sandbox, live_sandbox, sandbox_notice)
                metadata = fresh
            metadata["tool_schemas"] = [to_json(spec) for spec in config.tools]
            # The copy's requests carry this version's system prompt: its provenance must say so.
            metadata["system_prompt_sha256"] = hashlib.sha256(config.system_prompt.encode()).hexdigest()
            scrubber = redactor if redactor is not None else Redactor(None)
            partial_path = output_path.with_name(f".{output_path.name}.partial")
            partial_path.unlink(missing_ok=True)
            leftovers.append(partial_path)
            recorder = open_recorder(partial_path, metadata, scrubber)
            if fork_to is not None:
                leftovers.append(archive_path(fork_to))
                _carry_snapshot(path, session, fork_to, recorder)
            all_observers.append(recorder)
            client.exchange_sinks.append(recorder.on_exchange)
            closers.append(recorder.close)

        driver = Driver(initial_state(config), performer, all_observers)
        performer.apply_change = lambda entry: apply_change(driver, entry)
        divergence: Divergence | None = None
        error: str | None = None
        try:
            with contextlib.ExitStack() as stack:
                cassette = stack.enter_context(
                    offline_cassette(
                        path,
                        masks,
                        session,
                        lambda: (performer.interactions_taken - 1, performer.current_body),
                        match_body=rebless_to is None,
                    )
                )
                if live_settings is not None and fork_at is not None:
                    fork_settings = live_settings

                    def go_live() -> Performer:
                        stack.close()  # vcrpy lets go of HTTP: the live part talks to a real server
                        sinks = [recorder.on_exchange] if recorder is not None else []
                        assert where is not None
                        live = live_performer(
                            fork_settings,
                            where,
                            approver,
                            on_delta=on_delta,
                            exchange_sinks=sinks,
                            sandbox=live_sandbox,
                        )
                        closers.insert(0, live.client.close)
                        driver.hand_over(live)
                        return live

                    performer.go_live = go_live
                divergence = _drive(driver, performer)
                if divergence is None and not performer.forked and not cassette.all_played:
                    divergence = Divergence(
                        performer.step,
                        None,
                        "unused interactions",
                        "recorded interactions were never requested",
                    )
                if divergence is None and fork_at is not None and not performer.forked:
                    raise ReplayError(
                        f"--fork-at {fork_at} is past the recording's end "
                        f"(it has {performer.step} model call(s); fork at fewer)"
                    )
        except Diverged as diverged:
            divergence = diverged.divergence
        except (ReplayError, DriverMisuseError, KeyError, TypeError, ValueError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        except Exception as failure:  # vcrpy refusing an unmatched request, etc.
            error = f"{type(failure).__name__}: {failure}"
        finally:
            client.close()
            for close in closers:
                close()
        if counter.live_interrupt:
            # Ctrl-C in the live part ended its turn (the live performer makes it an event):
            # the fork did not get as far as it was asked to, and goes like any interrupted run.
            raise KeyboardInterrupt

        if error is not None:
            status = "error"
        elif divergence is not None:
            status = "diverged"
        elif rebless_to is not None:
            status = "reblessed"
        elif fork_at is not None and performer.forked:
            status = "forked"
        elif performer.tool_output_differences:
            status = "tool outputs differ"
        else:
            status = "identical"
        if output_path is not None:
            partial = output_path.with_name(f".{output_path.name}.partial")
            if status in ("reblessed", "forked"):
                partial.replace(output_path)
                leftovers.clear()  # a finished fork (and its snapshot copy) stays, come what may
            else:
                partial.unlink(missing_ok=True)
                if fork_to is not None:
                    archive_path(fork_to).unlink(missing_ok=True)
                output_path = None
        if restored and where is not None and not keep_workspace:
            shutil.rmtree(where, ignore_errors=True)
        return ReplayReport(
            path=str(path),
            status=status,
            steps=counter.calls if performer.forked else performer.step,
            tool_calls=performer.tool_calls,
            usage=driver.state.session_usage,
            seconds=time.perf_counter() - started,
            divergence=divergence,
            error=error,
            masked=tuple(sorted(performer.masked)),
            unused_masks=tuple(pattern for pattern in ignore if pattern not in performer.masked),
            torn=session.torn_tail,
            changed_requests=tuple(performer.changed_requests),
            tool_output_differences=tuple(performer.tool_output_differences),
            output_path=str(output_path) if output_path else None,
            workspace=str(where) if where is not None else None,
            sandbox_notice=sandbox_notice,
            not_rerun=performer.not_rerun,
        )
    except KeyboardInterrupt:
        _discard(leftovers, where if restored else None)
        raise


def _discard(written: Sequence[Path], restored: Path | None) -> None:
    """Remove what an interrupted replay wrote (its partial output, a fork's snapshot copy)
    and the workspace it restored."""
    try:
        for path in written:
            path.unlink(missing_ok=True)
    finally:
        if restored is not None:
            shutil.rmtree(restored, ignore_errors=True)


def _drive(driver: Driver, performer: ReplayPerformer) -> Divergence | None:
    """Feed recorded user inputs turn by turn until the recording is used up."""
    while True:
        record = performer.peek()
        if record is None:
            return None
        entry = _event_entry(record)
        if entry is not None and isinstance(entry.event, UserInput):
            performer.take()
            driver.run_turn(entry.event.text)
            if performer.forked:
                return None  # forked: the live continuation ends with its turn
            continue
        if entry is not None and isinstance(entry.event, (CompactRequest, ClearConversation)):
            performer.take()  # /compact or /clear between turns: the same event, the same turn
            driver.run(driver.feed(entry.event))
            continue
        if entry is not None and isinstance(entry.event, Interrupt):
            performer.take()
            continue
        return Divergence(
            max(performer.step, 1),
            record.line,
            "missing request",
            f"the new run's turn ended, but the recording continues with {_describe(record)}",
        )
