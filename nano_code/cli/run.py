"""Running the agent: one-shot (`-p`) or interactive, live, recorded by default."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nano_code.adapters.config import ConfigError, Settings, load_settings
from nano_code.adapters.endpoint import is_loopback_url
from nano_code.adapters.recording_stopped import RecordingStopped
from nano_code.adapters.sandbox import SandboxUnavailable
from nano_code.adapters.secrets import Redactor, SecretLeakError
from nano_code.adapters.terminal import HumanDisplay, JsonLinesDisplay
from nano_code.cli import exits
from nano_code.cli.approval import approver, describe_call
from nano_code.cli.arguments import sandbox_overrides
from nano_code.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Interrupts, say, usage_error
from nano_code.driver import Driver, Observer
from nano_code.kernel.actions import EndTurn, TurnEnd
from nano_code.kernel.events import FailureKind
from nano_code.kernel.state import State, initial_state
from nano_code.kernel.types import ApprovalMode, SandboxMode
from nano_code.session.factory import choose_sandbox, live_session, open_recorder, sandbox_provenance
from nano_code.session.settings import (
    RecordedSettings,
    SettingsError,
    kernel_config,
    read_agents_md,
    recorded_agents_md,
    recorded_settings,
)

if TYPE_CHECKING:
    from nano_code.adapters.recorder import Recorder

EXIT_BY_REASON = {
    TurnEnd.COMPLETED: EXIT_OK,
    TurnEnd.STEP_BUDGET: EXIT_FAILED,
    TurnEnd.FAILED: EXIT_FAILED,
    TurnEnd.INTERRUPTED: EXIT_INTERRUPTED,
}
FAILURE_HINTS = {FailureKind.AUTH: "set OPENROUTER_API_KEY (in .env or the environment) to a valid key"}


def _overrides(args: argparse.Namespace) -> dict[str, str | None]:
    return {
        "MODEL_NAME": args.model,
        "INFERENCE_BASE_URL": args.base_url,
        "NANO_CODE_MAX_STEPS": str(args.max_steps) if args.max_steps is not None else None,
        "NANO_CODE_STREAM": args.stream,
        "NANO_CODE_YES": "1" if args.yes else None,
        "NANO_CODE_PROMPT_CACHE": args.prompt_cache,
        **sandbox_overrides(args),
    }


def session_path(settings: Settings) -> Path:
    """A new file in the sessions directory, which is made private (0700) if it is not."""
    from nano_code.adapters.session_writer import make_private_dirs  # only a recorded run needs the writer

    stamp = time.strftime("%Y%m%d-%H%M%S")
    directory = settings.home / "sessions"
    make_private_dirs(directory)
    if directory.stat().st_mode & 0o077 and directory.stat().st_uid == os.getuid():
        directory.chmod(0o700)  # made by an older version, or by hand with a loose umask
    return directory / f"{stamp}-{os.urandom(3).hex()}.yaml"


RESUME_FIXED_FLAGS = ("model", "max_steps", "stream", "prompt_cache")
"""Flags a resumed session cannot change (so that the whole file still replays). Approval
is not among them: it is authority, and comes from this command line, never from the file."""


def main(args: argparse.Namespace) -> int:
    interrupts = Interrupts()
    interrupts.install()
    workspace = Path.cwd().resolve()
    try:
        records_to_home = not (args.no_record or args.record or args.resume)
        settings = load_settings(workspace, os.environ, _overrides(args), records_to_home=records_to_home)
    except ConfigError as error:
        return usage_error(f"nano-code: {error}")
    exits.show_tracebacks = settings.debug
    redactor = Redactor(settings.api_key)
    for warning in settings.warnings:
        _warn(warning)
    if settings.api_key and plain_http_to_another_host(settings.base_url):
        hint = "use https:// unless that host is yours"
        _warn(f"warning: the API key goes unencrypted (http://) to {settings.base_url}; {hint}")

    task = args.prompt
    interactive = task is None and sys.stdin.isatty()
    if task is None and not interactive:
        task = sys.stdin.read()
        if not task.strip():
            return usage_error("nano-code: no task: pass -p TASK or pipe the task on stdin")
    elif task is not None and not sys.stdin.isatty() and not args.resume:
        piped = sys.stdin.read()
        if piped.strip():
            task = f"{task}\n\n{piped}"

    try:
        sandbox, sandbox_notice = choose_sandbox(settings.sandbox, settings.sandbox_network, workspace)
    except SandboxUnavailable as error:
        return usage_error(f"nano-code: {error}")
    if sandbox_notice is not None:
        _warn(sandbox_notice)
    stream = settings.stream if (args.stream is not None or not args.json) else False
    agents_md = read_agents_md(workspace, _warn)
    recorded = recorded_settings(settings, workspace, stream, sandbox)
    config = kernel_config(recorded, agents_md)
    parent_state: State | None = None
    resume_file = None
    if args.resume:
        from nano_code.adapters.session_file import SessionFileError, load_session
        from nano_code.session.recording import ResumeError, rebuild_state

        try:
            resume_file = load_session(args.resume)
            recorded = RecordedSettings.from_json(resume_file.metadata.get("settings"))
            agents_md = recorded_agents_md(resume_file.metadata)
            if recorded.workspace != str(workspace):
                there = "cd there to resume it (its tools work on that directory)"
                return usage_error(f"nano-code: {args.resume} ran in {recorded.workspace}; {there}")
            config = kernel_config(recorded, agents_md)
            parent_state = rebuild_state(resume_file, config)
        except SessionFileError as error:
            return usage_error(f"nano-code: {error}")
        except (SettingsError, ResumeError) as error:
            return usage_error(f"nano-code: cannot resume {args.resume}: {error}")
        ignored = [f"--{name.replace('_', '-')}" for name in RESUME_FIXED_FLAGS if getattr(args, name)]
        kept = "a resumed session keeps its recorded settings (so that it still replays)"
        if ignored:
            _warn(f"ignoring {', '.join(ignored)}: {kept}")

    scrub, out = redactor.scrub, sys.stderr if args.json else sys.stdout
    display = HumanDisplay(
        out, sys.stderr, describe_call, redact=scrub, failure_hints=FAILURE_HINTS, holdback=redactor.holdback
    )
    observers: list[Observer] = [display]
    if args.json:
        observers.append(JsonLinesDisplay(sys.stdout, redact=scrub))

    recorder: Recorder | None = None
    snapshot_beside: Path | None = None
    if args.resume or not args.no_record:  # the writer, the journal and the provenance: recorded runs only
        from nano_code.adapters.provenance import provenance
        from nano_code.adapters.session_file import SessionFileError
        from nano_code.adapters.session_lock import SessionLocked

        try:
            if args.resume:
                recorder = open_recorder(Path(args.resume), None, redactor, resume_from=resume_file)
            else:
                path = Path(args.record) if args.record else session_path(settings)
                origin = os.environ.get("NANO_CODE_SESSION_ORIGIN", "").strip() or "live"
                metadata = provenance(config, recorded.to_json(), workspace, agents_md, origin=origin)
                metadata["sandbox"] = sandbox_provenance(settings.sandbox, sandbox, sandbox_notice)
                recorder = open_recorder(path, metadata, redactor)
                snapshot_beside = path
        except FileExistsError:
            return usage_error(f"nano-code: {args.record} already exists; choose another path")
        except SessionLocked as error:  # one writer per session: "S is open in process PID"
            return usage_error(f"nano-code: {error}")
        except (OSError, SecretLeakError, SessionFileError) as error:
            return usage_error(f"nano-code: cannot record the session: {redactor.scrub(str(error))}")

    approve = approver(display, lambda: session.performer.tool_context)
    state = parent_state if parent_state is not None else initial_state(config)
    session = live_session(
        settings,
        state,
        workspace,
        approve,
        recorder=recorder,
        observers=observers,
        on_delta=display.on_delta,
        snapshot_beside=snapshot_beside,
        sandbox=sandbox,
    )
    driver = session.driver
    try:
        if parent_state is not None:
            from nano_code.adapters.journal import ApprovalModeEntry
            from nano_code.session.changes import change_setting

            if driver.interrupt() is not None:  # a crash mid-step left calls unanswered
                display.notice("resumed: the step that was in flight was recorded as interrupted")
            # Approval and sandbox are authority: they come from this command line, never the file.
            approval = ApprovalMode.AUTO if settings.auto_approve else ApprovalMode.ASK
            change_setting(driver, ApprovalModeEntry(approval, sandbox.mode if sandbox else SandboxMode.OFF))
        if task is not None:
            return interrupts.exit_status(EXIT_BY_REASON[_turn(driver, task)])
        return interrupts.exit_status(interactive_loop(driver, display, interrupts, workspace))
    except RecordingStopped:
        return interrupts.exit_status(EXIT_FAILED)  # said below, once the session is closed
    finally:
        from nano_code.adapters.process_groups import kill_left_running  # used at the end only

        kill_left_running()
        with contextlib.suppress(RecordingStopped):  # raised by the last record (the snapshot's)
            session.close()
        if recorder is not None:
            recorder.close()  # closed already, unless session.close() stopped short
            if recorder.writer.stopped is not None:
                _warn(str(recorder.writer.stopped))  # instead of "session recorded"
            elif not args.json:
                display.notice(f"session recorded: {recorder.writer.path}")


def _warn(text: str) -> None:
    say(f"nano-code: {text}", err=True)


def plain_http_to_another_host(url: str) -> bool:
    """Whether `url` is http:// to a host other than this machine's loopback."""
    from urllib.parse import urlsplit

    return urlsplit(url).scheme.lower() == "http" and not is_loopback_url(url)


def _turn(driver: Driver, text: str) -> TurnEnd:
    try:
        end: EndTurn = driver.run_turn(text)
    except KeyboardInterrupt:
        closed = driver.interrupt()
        return closed.reason if closed is not None else TurnEnd.INTERRUPTED
    return end.reason


def interactive_loop(driver: Driver, display: HumanDisplay, interrupts: Interrupts, workspace: Path) -> int:
    from nano_code.cli import commands

    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 - line editing and history for input()
    display.notice(
        f"nano-code · {driver.state.config.model} · /help for commands · empty line or Ctrl-D to quit"
    )
    while True:
        try:
            text = input(display.style.bold("› "))
        except EOFError:
            display.err.write("\n")
            return EXIT_OK
        except KeyboardInterrupt:
            display.err.write("\n")
            return EXIT_INTERRUPTED if interrupts.twice_quickly() else EXIT_OK
        if not text.strip():
            return EXIT_OK
        command = commands.parse(text)
        if command is not None:
            if commands.run(command, driver, workspace, display.notice):
                return EXIT_OK
            continue
        reason = _turn(driver, text)
        if reason is TurnEnd.INTERRUPTED and (interrupts.terminated or interrupts.twice_quickly()):
            return EXIT_INTERRUPTED
