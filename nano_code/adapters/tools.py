"""The tools the model can call, by name: adding a tool is adding its `Tool(...)` to `TOOLS`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from nano_code.adapters.file_tools import EDIT_FILE_TOOL, READ_FILE_TOOL, WRITE_FILE_TOOL
from nano_code.adapters.shell_tool import SHELL_TOOL
from nano_code.adapters.tool import Tool, ToolContext, ToolOutcome
from nano_code.kernel.types import ToolSpec

TOOLS: tuple[Tool, ...] = (SHELL_TOOL, READ_FILE_TOOL, WRITE_FILE_TOOL, EDIT_FILE_TOOL)


def tool_specs() -> tuple[ToolSpec, ...]:
    return tuple(tool.spec for tool in TOOLS)


def find_tool(name: str) -> Tool | None:
    for tool in TOOLS:
        if tool.spec.name == name:
            return tool
    return None


def approved_at_prompt(name: str, context: ToolContext) -> ToolContext:
    """The context of a call the user approved at the prompt: it may leave the sandbox's file boundary,
    unless the tool runs inside the OS sandbox whatever is approved (the shell)."""
    tool = find_tool(name)
    if tool is not None and tool.spec.sandboxed:
        return context
    return attrs.evolve(context, sandbox=None)


def run_tool(name: str, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutcome:
    """Run a tool by name. Errors come back as outcomes; KeyboardInterrupt propagates."""
    tool = find_tool(name)
    if tool is None:
        known = ", ".join(tool.spec.name for tool in TOOLS)
        return ToolOutcome(f"Error: there is no tool named {name!r}; the tools are {known}.", is_error=True)
    try:
        return tool.run(arguments, context)
    except Exception as error:  # a bug must not end the session; the model and the user see it
        return ToolOutcome(
            f"Error: {name} failed unexpectedly: {type(error).__name__}: {error}", is_error=True
        )
