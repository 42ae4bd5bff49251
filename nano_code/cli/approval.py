"""How a tool call is shown and who approves it: a person at this terminal, or nobody."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from nano_code.adapters.approval_prompt import TerminalApprover, refuse_without_terminal
from nano_code.adapters.terminal import HumanDisplay
from nano_code.adapters.tool import ToolContext
from nano_code.adapters.tools import find_tool
from nano_code.kernel.actions import AskApproval


def describe_call(name: str, arguments: Any) -> str:
    """The one-line summary of a call shown in the transcript ("" for an unknown tool)."""
    tool = find_tool(name)
    return tool.summary(arguments) if tool is not None else ""


def preview(action: AskApproval, context: ToolContext) -> str:
    """What approving `action` would do, run in `context` (a diff for an edit, say)."""
    tool = find_tool(action.call.name)
    return tool.preview(action.arguments, context) if tool is not None else action.call.arguments


def approver(display: HumanDisplay, context: Callable[[], ToolContext]) -> Callable[[AskApproval], Any]:
    """Ask at the terminal when stdin is one (previewing each call in `context()`, the
    context it will run in); otherwise refuse every call and tell the model why."""
    if sys.stdin.isatty():
        return TerminalApprover(display, lambda action: preview(action, context()), sys.stdin).ask
    return lambda action: refuse_without_terminal(action, display.notice)
