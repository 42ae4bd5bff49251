"""The live performer: real model calls, real tools, a real person to ask."""

from __future__ import annotations

import time
from collections.abc import Callable

from nano_code.adapters.model_client import ModelClient
from nano_code.adapters.tools import ToolContext, inside_workspace, run_tool
from nano_code.kernel.actions import AskApproval, CallModel, CheckToolCall, RetryModel, RunTool
from nano_code.kernel.events import (
    ApprovalDecision,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolCallFacts,
    ToolResult,
)
from nano_code.kernel.stream import StreamDelta

Approver = Callable[[AskApproval], ApprovalDecision]


class LivePerformer:
    def __init__(
        self,
        client: ModelClient,
        tool_context: ToolContext,
        approver: Approver,
        on_delta: Callable[[StreamDelta], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.tool_context = tool_context
        self.approver = approver
        self.on_delta = on_delta
        self.sleep = sleep

    def call_model(self, action: CallModel | RetryModel) -> ModelReply | ModelFailure | Interrupt:
        try:
            if isinstance(action, RetryModel) and action.delay > 0:
                self.sleep(action.delay)
            return self.client.call(action.body, self.on_delta)
        except KeyboardInterrupt:
            return Interrupt()

    def check_tool_call(self, action: CheckToolCall) -> ToolCallFacts | Interrupt:
        return ToolCallFacts(action.call.id, inside_workspace(action.path, self.tool_context.workspace))

    def ask_approval(self, action: AskApproval) -> ApprovalDecision | Interrupt:
        try:
            return self.approver(action)
        except KeyboardInterrupt:
            return Interrupt()

    def run_tool(self, action: RunTool) -> ToolResult | Interrupt:
        try:
            outcome = run_tool(action.call.name, action.arguments, self.tool_context)
        except KeyboardInterrupt:
            return Interrupt()
        return ToolResult(
            call_id=action.call.id,
            output=outcome.output,
            is_error=outcome.is_error,
            exit_status=outcome.exit_status,
        )
