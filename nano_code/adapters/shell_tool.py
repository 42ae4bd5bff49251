"""The shell tool: one command run for the model, its result and notes worded for the model."""

from __future__ import annotations

from nano_code.adapters.tool import Arguments, Tool, ToolContext, ToolOutcome
from nano_code.kernel.types import ToolSpec


def _run_shell(arguments: Arguments, context: ToolContext) -> ToolOutcome:
    from nano_code.adapters.shell import Ending, run_command  # a command's, not the first request's

    command: str = arguments["command"]
    if not command.strip():
        return ToolOutcome("Error: the command is empty; nothing was run.", is_error=True)
    result = run_command(
        command,
        context.workspace,
        timeout=context.shell_timeout,
        head_bytes=context.output_head_bytes,
        tail_bytes=context.output_tail_bytes,
        sandbox=context.sandbox,
    )
    if result.ending is Ending.TIMED_OUT:
        limit = f"{context.shell_timeout:g}"
        advice = (
            "For a server or other long-running program, start it in the background with its output "
            "redirected to a file (cmd > out.log 2>&1 &)."
            if context.sandbox is None
            else "Commands run in a sandbox where background processes end with the command, so start "
            "a server and what uses it in the same command (server & sleep 1; client; kill %1)."
        )
        return ToolOutcome(
            f"Error: the command did not finish within {limit} s, so it and every process it started "
            f"were killed. {advice}\n"
            f"Output before it was killed:\n{result.output}",
            is_error=True,
        )
    output = result.output
    notes = []
    if result.signal_name is not None:
        notes.append(f"[the shell was terminated by {result.signal_name}]")
    if result.ending is Ending.LEFT_RUNNING:
        notes.append(
            "[the command finished but left a background process attached to its output; that "
            "process keeps running until nano-code exits, and its further output is not captured. "
            "Redirect a background process's output to a file (cmd > out.log 2>&1 &) to keep it.]"
        )
    if result.created_repositories:
        notes.append(
            "[this command created git repositories at "
            + ", ".join(result.created_repositories)
            + ": a repository's config can name programs git runs, so the user should check them "
            "before running git there; nano-code's own git calls run none of them]"
        )
    if notes:
        output = "\n".join([output.rstrip("\n"), *notes]) if output else "\n".join(notes)
    return ToolOutcome(output, exit_status=result.exit_status)


def _preview_shell(arguments: Arguments, context: ToolContext) -> str:
    return str(arguments["command"])


SHELL_TOOL = Tool(
    spec=ToolSpec(
        name="shell",
        description=(
            "Run a shell command (bash -c) in the workspace directory and get its combined stdout and "
            "stderr plus the exit status. Use it to build, run tests, search (grep, find), inspect "
            "git, and the like. It is non-interactive: stdin is closed and there is no terminal, so "
            "pass flags that avoid prompts and pagers. Each call starts a fresh shell (cd and "
            "variables do not carry over). Commands are killed after a time limit (120 seconds by "
            "default). Long output is cut to its beginning and end, so filter it (grep, head, tail) "
            "when you can. Use read_file, write_file and edit_file rather than the shell for files."
        ),
        parameters={
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command line to run, e.g. 'pytest -q'."}
            },
            "required": ["command"],
            "additionalProperties": False,
        },
        mutates=True,
        path_parameter=None,
        sandboxed=True,
    ),
    execute=_run_shell,
    describe=_preview_shell,
    key_argument="command",
)
