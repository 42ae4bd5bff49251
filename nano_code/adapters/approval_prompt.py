"""The approval prompt: what a tool call would do, and the user's y / n / a.

The call is shown through `safe_text.for_command` (escapes said aloud), long calls cut in the
middle with the cut said, so nothing can scroll the real command out of sight unnoticed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TextIO

from nano_code.adapters.safe_text import for_command, for_terminal
from nano_code.adapters.terminal import HumanDisplay
from nano_code.kernel.actions import AskApproval
from nano_code.kernel.events import ApprovalDecision, Verdict

ESCAPES_WARNING = (
    "warning: this call contains control or invisible characters, shown above as "
    "\\x.. / \\u.... escapes; they are part of what would run"
)


class TerminalApprover:
    """Asks y / n / a on the terminal, showing what the call would do."""

    def __init__(self, display: HumanDisplay, preview: Callable[[AskApproval], str], tty_in: TextIO) -> None:
        self._display = display
        self._preview = preview
        self._in = tty_in

    def ask(self, action: AskApproval) -> ApprovalDecision:
        style = self._display.style
        err = self._display.err
        self._display.notice("")
        name = for_terminal(action.call.name)
        err.write(style.yellow(f"{name} wants to run ({action.reason}):") + "\n")
        shown, escaped = for_command(self._display.redact(self._preview(action)).rstrip("\n"))
        lines = shown.split("\n")
        for line in _visible_lines(lines):
            err.write(style.dim("│ ") + line + "\n")
        if len(lines) > 1:
            err.write(style.dim(f"({len(lines)} lines, {len(shown)} characters)") + "\n")
        if escaped:
            err.write(style.red(ESCAPES_WARNING) + "\n")
        while True:
            err.write(style.bold("Allow? [y]es / [n]o / [a]lways for this tool: "))
            err.flush()
            answer = self._in.readline()
            if not answer:
                return ApprovalDecision(action.call.id, Verdict.DENY, "no answer (end of input)")
            choice = answer.strip().lower()
            if choice in ("y", "yes"):
                return ApprovalDecision(action.call.id, Verdict.APPROVE)
            if choice in ("a", "always"):
                return ApprovalDecision(action.call.id, Verdict.ALWAYS)
            if choice in ("n", "no"):
                err.write("Tell the model why, or press Enter: ")
                err.flush()
                why = self._in.readline().strip()
                return ApprovalDecision(action.call.id, Verdict.DENY, why or "the user said no")


PROMPT_HEAD_LINES = 40
PROMPT_TAIL_LINES = 10


def _visible_lines(lines: list[str]) -> list[str]:
    """What the prompt prints of a call: blank runs folded, a very long call cut in the middle."""
    folded: list[str] = []
    for blank, group in itertools.groupby(lines, key=lambda line: not line.strip()):
        run = list(group)
        folded += run if not blank else ["" if len(run) == 1 else f"[{len(run)} blank lines]"]
    if len(folded) > PROMPT_HEAD_LINES + PROMPT_TAIL_LINES:
        hidden = len(folded) - PROMPT_HEAD_LINES - PROMPT_TAIL_LINES
        folded = [
            *folded[:PROMPT_HEAD_LINES],
            f"[... {hidden} more lines not shown: this call is long; answer n if unsure ...]",
            *folded[-PROMPT_TAIL_LINES:],
        ]
    return folded


def refuse_without_terminal(action: AskApproval, warn: Callable[[str], None]) -> ApprovalDecision:
    warn(f"refused {action.call.name}: no terminal to ask for approval (use --yes to allow tool calls)")
    return ApprovalDecision(
        action.call.id,
        Verdict.DENY,
        "nano-code has no terminal to ask the user for approval; it runs without --yes, "
        "so calls that change files or run commands are refused",
    )
