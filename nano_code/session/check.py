"""A check: a shell command run in a finished workspace, in the sandbox its tools had, bounded by
a timeout; exit status 0 passes. An eval task's outcome and a `replay --samples` fork's both come
from here, so the two judge and explain a check alike."""

from __future__ import annotations

from pathlib import Path

import attrs

from nano_code.adapters.safe_text import for_terminal
from nano_code.adapters.sandbox import Sandbox
from nano_code.adapters.shell import Ending, run_command
from nano_code.session.table_cells import first_line

SHOWN_OUTPUT_CHARS = 200
"""How much of the check's last output line a failure's one-line reason keeps."""


@attrs.frozen
class CheckResult:
    passed: bool
    reason: str
    """One line: why it failed ("" when it passed)."""


def run_check(command: str, workspace: Path, timeout: float, sandbox: Sandbox | None) -> CheckResult:
    """Run `command` with the shell in `workspace` (inside `sandbox`), killed after `timeout`
    seconds with all it started. Raises OSError when the shell cannot start."""
    done = run_command(command, workspace, timeout=timeout, sandbox=sandbox, head_bytes=4096, tail_bytes=4096)
    if done.ending is Ending.TIMED_OUT:
        return CheckResult(False, f"the check ran over its timeout of {timeout:g} s and was killed")
    if done.exit_status == 0:
        return CheckResult(True, "")
    last = next((line for line in reversed(done.output.splitlines()) if line.strip()), "")
    shown = for_terminal(first_line(last))[:SHOWN_OUTPUT_CHARS]
    return CheckResult(False, f"the check exited {done.exit_status}" + (f": {shown}" if shown else ""))
