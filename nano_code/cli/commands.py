"""The interactive prompt's commands (/help lists them). Each is journalled, and those that change
the conversation go through the kernel or a journalled setting, so a replay makes the same change."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import attrs

from nano_code.adapters import git
from nano_code.adapters.journal import ModelChangeEntry
from nano_code.adapters.safe_text import for_terminal
from nano_code.adapters.terminal import cache_note
from nano_code.driver import Driver
from nano_code.kernel.events import ClearConversation, CompactRequest
from nano_code.kernel.types import AssistantMessage, Usage
from nano_code.session.changes import change_setting

HELP = {
    "/help": "list these commands",
    "/cost": "tokens and cost of the last turn and of the whole session",
    "/clear": "start a new conversation (the session file goes on)",
    "/compact": "replace the older part of the conversation with a summary the model writes",
    "/model NAME": "use model NAME from the next request on (/model alone shows the current one)",
    "/diff": "what this session changed in the workspace (git diff, or the files written)",
    "/exit": "leave (so does an empty line or Ctrl-D)",
}
NAMES = frozenset(key.split()[0] for key in HELP)
DIFF_LIMIT = 200_000
"""Characters of `git diff` shown at most."""
_WRITING_TOOLS = ("write_file", "edit_file")
_PLAIN_DIFF = ("--no-color", "--no-ext-diff", "--no-textconv")


@attrs.frozen
class Command:
    name: str
    argument: str


def parse(line: str) -> Command | None:
    """The command on `line`, or None for a message to the model (which may begin with /etc/hosts)."""
    text = line.strip()
    if not text.startswith("/"):
        return None
    word, _, rest = text.partition(" ")
    if word.lower() in NAMES or word[1:].isalpha():  # an unknown command is said so, never sent
        return Command(word.lower(), rest.strip())
    return None


def usage_line(label: str, usage: Usage) -> str:
    cost = f", ${usage.cost:.4f}" if usage.cost is not None else ""
    return (
        f"{label}: {usage.prompt_tokens:,} tokens in{cache_note(usage)} / {usage.completion_tokens:,} out"
        f" ({usage.total_tokens:,} in all{cost})"
    )


def files_written(driver: Driver) -> list[str]:
    """Paths the model's write and edit calls named, in order, each once."""
    seen: dict[str, None] = {}
    messages = [message for message in driver.state.history if isinstance(message, AssistantMessage)]
    for call in (call for message in messages for call in message.tool_calls):
        if call.name in _WRITING_TOOLS:
            try:
                path = json.loads(call.arguments).get("path")
            except (ValueError, AttributeError):
                continue
            if isinstance(path, str):
                seen.setdefault(path, None)
    return list(seen)


def workspace_diff(workspace: Path, driver: Driver) -> str:
    """`git diff` (with untracked files named) where the workspace is a repository, else the files written."""
    if git.output(("rev-parse", "--is-inside-work-tree"), workspace, timeout=10) == "true":
        diff = git.output(("--no-pager", "diff", *_PLAIN_DIFF, "HEAD"), workspace, timeout=30)
        untracked = git.output(("ls-files", "--others", "--exclude-standard"), workspace, timeout=30)
        if diff and len(diff) > DIFF_LIMIT:
            diff = diff[:DIFF_LIMIT] + "\n[... the diff goes on ...]"
        parts = [diff] if diff else []
        if new := [name for name in (untracked or "").split("\n") if name]:
            parts.append("untracked files:\n" + "\n".join(f"  {name}" for name in new))
        return "\n".join(parts) if parts else "no changes in the workspace (git diff HEAD is empty)"
    written = files_written(driver)
    if not written:
        return "not a git repository, and no file was written in this session"
    return "not a git repository; files the session wrote or edited:\n" + "\n".join(f"  {p}" for p in written)


def run(command: Command, driver: Driver, workspace: Path, show: Callable[[str], None]) -> bool:
    """Carry out `command`; True when the session should end."""
    driver.note_command(f"{command.name} {command.argument}".strip())
    if command.name == "/help":
        width = max(len(key) for key in HELP)
        show("\n".join(f"  {key.ljust(width)}  {text}" for key, text in HELP.items()))
    elif command.name == "/cost":
        state = driver.state
        show(f"{usage_line('last turn', state.turn_usage)}\n{usage_line('session', state.session_usage)}")
    elif command.name == "/model":
        if not command.argument:
            show(f"model: {for_terminal(driver.state.config.model)}")
        elif any(ch.isspace() for ch in command.argument) or len(command.argument) > 200:
            show("/model takes one model name, e.g. /model openai/gpt-4.1")
        else:
            change_setting(driver, ModelChangeEntry(command.argument))
            show(f"model: {for_terminal(command.argument)} from the next request on")
    elif command.name == "/diff":
        show(for_terminal(workspace_diff(workspace, driver)))
    elif command.name in ("/clear", "/compact"):  # a kernel event; /compact starts a summary call
        try:
            driver.run(driver.feed(CompactRequest() if command.name == "/compact" else ClearConversation()))
        except KeyboardInterrupt:
            driver.interrupt()
    elif command.name == "/exit":
        return True
    else:
        show(f"unknown command {for_terminal(command.name)}; /help lists them")
    return False
