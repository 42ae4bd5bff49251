"""What a tool is: its schema and implementation side by side, what it is given and what it returns.

Whatever a tool gets wrong comes back as a `ToolOutcome` with `is_error=True` and a message for
the model; only KeyboardInterrupt escapes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import validators as v

from nano_code.adapters.sandbox import Sandbox
from nano_code.kernel.policy import check_argument_values
from nano_code.kernel.types import ToolSpec

SUMMARY_CHARS = 80


@attrs.frozen
class ToolOutcome:
    output: str
    is_error: bool = False
    exit_status: int | None = None
    """The shell's exit status; None for the file tools and after a timeout."""


@attrs.frozen
class ToolContext:
    workspace: Path
    """Absolute, resolved directory that relative paths and commands start from."""
    shell_timeout: float = attrs.field(default=120.0, validator=v.gt(0))
    output_head_bytes: int = attrs.field(default=65536, validator=v.ge(0))
    output_tail_bytes: int = attrs.field(default=65536, validator=v.ge(0))
    confined: bool = False
    """The call runs because its path was found inside `workspace`: the file tools open only what
    is inside it at the moment of use (`file_access`)."""
    sandbox: Sandbox | None = None
    """The OS sandbox the shell runs in; the file tools keep to its write boundary too."""


class ToolFailure(Exception):
    """A tool could not do what was asked; the message is for the model."""


Arguments = Mapping[str, Any]


@attrs.frozen
class Tool:
    spec: ToolSpec
    execute: Callable[[Arguments, ToolContext], ToolOutcome]
    """Runs with arguments already checked against `spec`; may raise ToolFailure or OSError."""
    describe: Callable[[Arguments, ToolContext], str]
    """Text of the approval prompt, from checked arguments."""
    key_argument: str
    """The argument the transcript shows."""

    def run(self, arguments: Arguments, context: ToolContext) -> ToolOutcome:
        problem = check_arguments(self.spec, arguments)
        if problem is not None:
            return ToolOutcome(problem, is_error=True)
        try:
            return self.execute(arguments, context)
        except ToolFailure as failure:
            return ToolOutcome(f"Error: {failure}", is_error=True)
        except OSError as error:
            return ToolOutcome(f"Error: {self.spec.name} failed: {_describe_os_error(error)}", is_error=True)

    def preview(self, arguments: Arguments, context: ToolContext) -> str:
        problem = check_arguments(self.spec, arguments)
        if problem is not None:
            return problem
        try:
            return self.describe(arguments, context)
        except (ToolFailure, OSError, ValueError) as error:
            return f"{self.summary(arguments)}\n(cannot preview: {error})"

    def summary(self, arguments: Arguments) -> str:
        """One short line: the key argument (a command's first line, or a path), cut to fit."""
        value = arguments.get(self.key_argument) if isinstance(arguments, Mapping) else None
        if not isinstance(value, str):
            return "(invalid arguments)"
        lines = value.strip().splitlines() or [""]
        first = lines[0]
        if len(first) > SUMMARY_CHARS:
            return first[: SUMMARY_CHARS - 1] + "…"
        return first + (" …" if len(lines) > 1 else "")


def check_arguments(spec: ToolSpec, arguments: object) -> str | None:
    """Why `arguments` do not fit `spec.parameters`, or None when they do (the kernel's check)."""
    if not isinstance(arguments, Mapping):
        return f"Error: the arguments of {spec.name} must be a JSON object; the call was not run."
    return check_argument_values(spec, arguments)


def _describe_os_error(error: OSError) -> str:
    reason = error.strerror or str(error)
    return f"{reason}: {error.filename}" if error.filename else reason
