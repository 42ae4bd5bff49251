"""The replaying performer: serves a recording's results, approvals and path facts to the driver.

Each new request or tool call is compared with the recorded one; the first difference raises `Diverged`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from nano_code.adapters.body_encoder import encode_body
from nano_code.adapters.file_access import inside_workspace
from nano_code.adapters.journal import CallWithoutResponse, RetryEntry, TurnEndEntry
from nano_code.adapters.live import Approver
from nano_code.adapters.model_client import ModelClient
from nano_code.adapters.session_file import Record, SessionFile
from nano_code.adapters.tool import ToolContext, ToolOutcome
from nano_code.adapters.tools import approved_at_prompt, find_tool, run_tool
from nano_code.driver import Performer
from nano_code.kernel.actions import (
    Action,
    AskApproval,
    CallModel,
    CheckToolCall,
    EndTurn,
    RetryModel,
    RunTool,
)
from nano_code.kernel.events import (
    ApprovalDecision,
    Event,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolCallFacts,
    ToolResult,
    Verdict,
)
from nano_code.kernel.jsondiff import Difference, Mask, differences
from nano_code.kernel.policy import Approval, approval_requirement
from nano_code.kernel.request import RequestBody
from nano_code.kernel.state import State
from nano_code.kernel.stream import StreamDelta
from nano_code.kernel.types import ApprovalMode, SandboxMode, ToolCall
from nano_code.session.cassette import json_body
from nano_code.session.changes import SettingChange, config_fields, is_setting_change
from nano_code.session.divergence import Diverged, Divergence, Masks, ReplayError, ToolOutputDifference
from nano_code.session.recording import describe, event_entry, informational

_E = TypeVar("_E", ToolCallFacts, ApprovalDecision, ToolResult)


def refuse_all(action: AskApproval) -> ApprovalDecision:
    return ApprovalDecision(action.call.id, Verdict.DENY, "no terminal to ask and no --yes")


RERUN_REFUSED = "re-running a session file's own calls beyond the sandbox needs --rerun-recorded"


def refuse_recorded(action: AskApproval) -> ApprovalDecision:
    """Nobody to ask about a recorded call: refused (the file's calls are not ours to approve)."""
    return ApprovalDecision(action.call.id, Verdict.DENY, RERUN_REFUSED)


@attrs.define
class ReplayOptions:
    """How to replay, all from the current command line, never from the recording."""

    masks: Masks = attrs.field(factory=Masks)
    rebless: bool = False
    live_tools: ToolContext | None = None
    fork_at: int | None = None
    live_changes: list[SettingChange] = attrs.field(factory=list)
    """Made at the fork point: the command line's approval, sandbox, model and sampling, not the file's."""
    rerun_approval: ApprovalMode = ApprovalMode.ASK
    """For the file's own calls re-run here: AUTO only with `--rerun-recorded`."""
    rerun_approver: Approver = refuse_recorded


class ReplayPerformer:
    """Serves a recording to the driver, checking every request and tool call against it; it
    observes the run too (`calls`, `live_interrupt`: a Ctrl-C in a fork's live part)."""

    def __init__(self, session: SessionFile, client: ModelClient, options: ReplayOptions) -> None:
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
        self.go_live: Callable[[], Performer] | None = None
        self.on_delta: Callable[[StreamDelta], None] | None = None
        self.interactions_taken = 0
        self._bodies = session.request_bodies()
        self.current_body: str | None = None
        """The whole request body of the interaction taken last."""
        self.apply_change: Callable[[SettingChange], None] | None = None
        self._changed: dict[str, Any] = {}  # config fields set by setting changes so far
        self._applied_up_to = 0
        self._live_always: frozenset[str] = frozenset()
        self.not_rerun = 0
        self.calls = 0
        self.live_interrupt = False

    def _next_position(self) -> int | None:
        position = self.position
        while position < len(self.records) and informational(self.records[position]):
            entry = self.records[position].entry
            if position >= self._applied_up_to and is_setting_change(entry):
                self._applied_up_to = position + 1
                self._change(entry)  # type: ignore[arg-type]
            position += 1
        return position if position < len(self.records) else None

    def peek(self) -> Record | None:
        position = self._next_position()
        return None if position is None else self.records[position]

    def take(self) -> Record | None:
        if (position := self._next_position()) is None:
            return None
        self.position = position + 1
        record = self.records[position]
        if record.kind == "interaction":
            self.interactions_taken += 1
            self.current_body = next(self._bodies)
        return record

    def expected(self) -> tuple[int, str | None]:
        """The interaction taken last, the one vcrpy may serve: its index and whole request body."""
        return self.interactions_taken - 1, self.current_body

    def take_entry_if(self, kind: type) -> Record | None:
        """The record right at the cursor, taken, when it is a journal entry of `kind`."""
        record = self.records[self.position] if self.position < len(self.records) else None
        if record is None or record.kind != "journal" or not isinstance(record.entry, kind):
            return None
        self.position += 1
        return record

    def diverge(
        self, what: str, summary: str, record: Record | None, found: Sequence[Difference] = ()
    ) -> Diverged:
        line = record.line if record else None
        return Diverged(Divergence(max(self.step, 1), line, what, summary, tuple(found)))

    def compare(self, recorded: Any, actual: Any, masks: tuple[Mask, ...]) -> list[Difference]:
        found, used = differences(recorded, actual, masks)
        self.masked.update(used)
        return found

    def _recorded_interrupt(self) -> Interrupt | None:
        entry = event_entry(self.peek())
        if entry is not None and isinstance(entry.event, Interrupt):
            self.take()
            return Interrupt()
        return None

    def call_model(self, action: CallModel | RetryModel) -> ModelReply | ModelFailure | Interrupt:
        if self.options.fork_at is not None and self.step >= self.options.fork_at:
            return self._go_live(action)
        self.step += 1
        if isinstance(action, RetryModel):
            if (retry := self.take_entry_if(RetryEntry)) is None:
                summary = "the new run retries a model call; the recording did not"
                raise self.diverge("retry", summary, self.peek())
            assert isinstance(retry.entry, RetryEntry)
            found = self.compare(retry.entry.delay, action.delay, self.options.masks.other)
            if found:
                # numbered as the request it retries (attempt 2 of step N is N's first retry)
                retried = self.step - (action.attempt - 1)
                summary = f"the retry policy waits differently before retry {action.attempt - 1} of this step"
                raise Diverged(Divergence(max(retried, 1), retry.line, "retry delay", summary, tuple(found)))
        if (interrupted := self._recorded_interrupt()) is not None:
            return interrupted  # the process died during this call (kill -9); `--resume` recorded that
        record = self.take()
        action = self._current_config(action)
        payload = encode_body(action.body)
        unanswered = record.entry if record is not None and record.kind == "journal" else None
        if record is None or not (
            record.kind == "interaction" or isinstance(unanswered, CallWithoutResponse)
        ):
            summary = f"the new run calls the model where the recording has {describe(record)}"
            raise self.diverge("extra request", summary, record)
        recorded_body = (
            unanswered.request if isinstance(unanswered, CallWithoutResponse) else self.current_body
        )
        if isinstance(recorded_body, str) and recorded_body.encode("utf-8") == payload:
            found = []  # byte-identical, the common case: no need to parse and walk both
        else:
            found = self.compare(json_body(recorded_body), json.loads(payload), self.options.masks.request)
        if found:
            differ = f"{len(found)} difference(s)"
            if not self.options.rebless:
                raise self.diverge("request", f"{differ} in the request body", record, found)
            self.changed_requests.append(Divergence(self.step, record.line, "request", differ, tuple(found)))
        if isinstance(unanswered, CallWithoutResponse):
            return unanswered.event  # type: ignore[return-value]
        # One route for every replay, rebless included: the real client, under vcrpy.
        return self.client.call(action.body, self.on_delta, payload=payload, action=action)

    def _expect_event(self, kind: type[_E], call: ToolCall, arguments: Any) -> _E | Interrupt:
        """The recorded event of `kind` answering `call`, or the Interrupt recorded instead."""
        if (interrupted := self._recorded_interrupt()) is not None:
            return interrupted
        record = self.take()
        entry = event_entry(record)
        if entry is None or not isinstance(entry.event, kind):
            name = kind.__name__
            summary = f"the new run asks for {name} of {call.name}; the recording has {describe(record)}"
            raise self.diverge("tool call" if kind is ToolResult else name, summary, record)
        was = {key: getattr(entry.call, key, None) for key in ("name", "arguments")}
        now = {"name": call.name, "arguments": json.loads(json.dumps(arguments))}
        if found := self.compare(was, now, self.options.masks.other):
            raise self.diverge("tool call", f"{call.name} is called differently", record, found)
        return attrs.evolve(entry.event, call_id=call.id)

    def check_tool_call(self, action: CheckToolCall) -> ToolCallFacts | Interrupt:
        return self._expect_event(ToolCallFacts, action.call, json.loads(action.call.arguments))

    def ask_approval(self, action: AskApproval) -> ApprovalDecision | Interrupt:
        return self._expect_event(ApprovalDecision, action.call, action.arguments)

    def run_tool(self, action: RunTool) -> ToolResult | Interrupt:
        self.tool_calls += 1
        recorded = self._expect_event(ToolResult, action.call, action.arguments)
        if self.options.live_tools is not None and not isinstance(recorded, Interrupt):
            outcome = self._run_live_tool(action, self.options.live_tools)
            if outcome.output != recorded.output or outcome.exit_status != recorded.exit_status:
                differs = ToolOutputDifference(self.step, action.call.name, recorded.output, outcome.output)
                self.tool_output_differences.append(differs)
        return recorded

    def _run_live_tool(self, action: RunTool, context: ToolContext) -> ToolOutcome:
        """Run a recorded call as a live session would: the recording's approvals and path
        facts count for nothing; only `--rerun-recorded` approves the file's calls."""
        if (tool := find_tool(action.call.name)) is None:
            return run_tool(action.call.name, action.arguments, context)
        path = action.arguments.get(tool.spec.path_parameter or "")
        inside = inside_workspace(path, context.workspace) if isinstance(path, str) else None
        mode = context.sandbox.mode if context.sandbox is not None else SandboxMode.OFF
        need = approval_requirement(tool.spec, self.options.rerun_approval, self._live_always, inside, mode)
        run_in = attrs.evolve(context, confined=inside is True)
        if need is not Approval.RUN:
            what = "it changes files or runs commands" if tool.spec.mutates else "its path is outside"
            decision = self.options.rerun_approver(AskApproval(action.call, action.arguments, what))
            if decision.verdict is Verdict.ALWAYS:
                self._live_always |= {tool.spec.name}
            elif decision.verdict is Verdict.DENY:
                self.not_rerun += 1
                reason = decision.reason or "not approved"
                return ToolOutcome(f"[recorded call not run here: {reason}]", is_error=True)
            run_in = approved_at_prompt(action.call.name, run_in)
        return run_tool(action.call.name, action.arguments, run_in)

    def _change(self, entry: SettingChange) -> None:
        self._changed.update(config_fields(entry))
        if self.apply_change is not None:
            self.apply_change(entry)

    def _current_config(self, action: CallModel | RetryModel) -> CallModel | RetryModel:
        """`action` with the settings changed since: a change journalled after the event that
        built this request (a fork's `--model` at the fork point) applies to it too."""
        body, changed = action.body, self._changed.items()
        if not isinstance(body, RequestBody) or all(getattr(body.config, k) == v for k, v in changed):
            return action
        config = attrs.evolve(body.config, **self._changed)
        return attrs.evolve(action, body=RequestBody(config, body.history))

    def _go_live(self, action: CallModel | RetryModel) -> ModelReply | ModelFailure | Interrupt:
        """The fork point: from here a live performer carries out every action."""
        if self.go_live is None:
            raise ReplayError("no live model configured for --fork-at")
        live = self.go_live()
        self.forked = True
        for change in self.options.live_changes:
            self._change(change)
        return live.call_model(self._current_config(action))

    def on_event(self, event: Event, state: State) -> None:
        if isinstance(event, Interrupt) and self.forked:
            self.live_interrupt = True

    def on_action(self, action: Action, state: State) -> None:
        """As an observer: count model requests, replayed or live, and check that each replayed
        turn ends the way the recording did."""
        if isinstance(action, (CallModel, RetryModel)):
            self.calls += 1
        if not isinstance(action, EndTurn) or self.forked:
            return
        if (record := self.take_entry_if(TurnEndEntry)) is None:
            return
        assert isinstance(record.entry, TurnEndEntry)
        recorded, ended = record.entry.end.reason.value, action.reason.value
        if recorded != ended:
            summary = f"the turn ended {ended!r}; the recording ended it {recorded!r}"
            raise self.diverge("turn end", summary, record, [Difference("$.reason", recorded, ended)])
