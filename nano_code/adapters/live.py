"""The live performer: real model calls, real tools, a real person to ask.

A call whose path any check found inside the workspace (CheckToolCall, and just before and
after asking) runs confined (`ToolContext.confined`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from nano_code.adapters.file_access import inside_workspace
from nano_code.adapters.model_client import ModelClient
from nano_code.adapters.tool import ToolContext
from nano_code.adapters.tools import approved_at_prompt, find_tool, run_tool
from nano_code.kernel.actions import AskApproval, CallModel, CheckToolCall, RetryModel, RunTool
from nano_code.kernel.events import (
    ApprovalDecision,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolCallFacts,
    ToolResult,
    Verdict,
)
from nano_code.kernel.stream import StreamDelta

Approver = Callable[[AskApproval], ApprovalDecision]


@attrs.define
class LivePerformer:
    client: ModelClient
    tool_context: ToolContext
    approver: Approver
    on_delta: Callable[[StreamDelta], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    _seen_inside: dict[str, bool] = attrs.field(init=False, factory=dict)
    _approved_at_prompt: set[str] = attrs.field(init=False, factory=set)

    def call_model(self, action: CallModel | RetryModel) -> ModelReply | ModelFailure | Interrupt:
        try:
            if isinstance(action, RetryModel) and action.delay > 0:
                self.sleep(action.delay)
            return self.client.call(action.body, self.on_delta, action=action)
        except KeyboardInterrupt:
            return Interrupt()

    def check_tool_call(self, action: CheckToolCall) -> ToolCallFacts | Interrupt:
        inside = inside_workspace(action.path, self.tool_context.workspace)
        self._seen_inside[action.call.id] = inside
        return ToolCallFacts(action.call.id, inside)

    def ask_approval(self, action: AskApproval) -> ApprovalDecision | Interrupt:
        self._check_path(action)
        try:
            decision = self.approver(action)
        except KeyboardInterrupt:
            self._seen_inside.pop(action.call.id, None)
            return Interrupt()
        if decision.verdict is Verdict.DENY:
            self._seen_inside.pop(action.call.id, None)
        else:
            self._check_path(action)
            self._approved_at_prompt.add(action.call.id)
        return decision

    def _check_path(self, action: AskApproval) -> None:
        tool = find_tool(action.call.name)
        path = action.arguments.get(tool.spec.path_parameter or "") if tool is not None else None
        if isinstance(path, str) and inside_workspace(path, self.tool_context.workspace):
            self._seen_inside[action.call.id] = True

    def run_tool(self, action: RunTool) -> ToolResult | Interrupt:
        confined = self._seen_inside.pop(action.call.id, False)
        context = attrs.evolve(self.tool_context, confined=confined)
        if action.call.id in self._approved_at_prompt:
            self._approved_at_prompt.discard(action.call.id)
            context = approved_at_prompt(action.call.name, context)
        try:
            outcome = run_tool(action.call.name, action.arguments, context)
        except KeyboardInterrupt:
            return Interrupt()
        return ToolResult(action.call.id, outcome.output, outcome.is_error, outcome.exit_status)
