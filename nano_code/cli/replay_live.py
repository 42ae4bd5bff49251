"""A replay that shows its transcript and may go live: one session (rebless, fork) or K forks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nano_code.adapters.safe_text import json_text
from nano_code.adapters.secrets import Redactor
from nano_code.adapters.terminal import HumanDisplay
from nano_code.adapters.tool import ToolContext
from nano_code.cli.approval import approver, describe_call
from nano_code.cli.arguments import replay_options
from nano_code.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, say, usage_error
from nano_code.cli.sessions_cmd import command_settings
from nano_code.kernel.types import ApprovalMode


def _fork_settings(args: argparse.Namespace) -> Any:
    settings = command_settings(
        "nano-code replay", {"MODEL_NAME": args.model, "INFERENCE_BASE_URL": args.base_url}
    )
    for warning in settings.warnings:  # e.g. the host a .env's base URL sends the key to
        say(f"nano-code replay: {warning}", err=True)
    return settings


def samples(path: Path, args: argparse.Namespace) -> int:
    """`--fork-at N --samples K`: K forks of one session, and their table."""
    from nano_code.session.samples import sample_forks

    try:
        report = sample_forks(
            path,
            args.fork_at,
            args.samples,
            _fork_settings(args),
            check=args.check,
            jobs=args.jobs,
            seed=args.seed,
            out_dir=Path(args.output) if args.output else None,
            **_live_options(args),
        )
    except FileExistsError as error:
        return usage_error(f"nano-code replay: {error}")
    say(json_text(report.as_json()) if args.json else report.table())
    if report.interrupted:
        kept = "the finished forks are kept, the others' partial files and restored workspaces removed"
        say(f"nano-code replay: interrupted; {kept}", err=True)
        return int(args.interrupts.exit_status(EXIT_INTERRUPTED))
    return EXIT_OK if all(sample.report.ok for sample in report.samples) else EXIT_FAILED


def replay_one(path: Path, args: argparse.Namespace) -> Any:
    """One session replayed with its transcript shown; reblessed or forked when asked."""
    from nano_code.session.replay import replay_session

    live_settings = _fork_settings(args) if args.fork_at is not None else None
    # The live continuation uses the real key: keep it off the screen and out of the fork.
    shown = Redactor(live_settings.api_key if live_settings else None)
    display = None
    if not args.quiet and not args.json:
        out = sys.stdout
        display = HumanDisplay(
            out, out, describe_call, redact=shown.scrub, holdback=shown.holdback, live=False, echo_input=True
        )
    output = Path(args.output) if args.output else None
    rebless_to = (output or path.with_suffix(".reblessed.yaml")) if args.rebless else None
    fork_to = (output or path.with_suffix(f".fork{args.fork_at}.yaml")) if live_settings is not None else None
    for target in (rebless_to, fork_to):
        if target is not None and target.exists():
            fix = "choose another --output, or remove it" if output else "pass --output"
            raise SystemExit(usage_error(f"nano-code replay: {target} exists; {fix}"))
    return replay_session(
        path,
        rebless_to=rebless_to,
        fork_at=args.fork_at,
        fork_to=fork_to,
        live_settings=live_settings,
        observers=[display] if display else [],
        on_delta=display.on_delta if display else None,
        live_seed=args.seed,
        redactor=shown,
        **_approvers(shown.scrub),
        **_live_options(args),
    )


def _live_options(args: argparse.Namespace) -> dict[str, Any]:
    """What one fork or K forks take from this command line, besides the seed."""
    live = {"live_model": args.model, "live_temperature": args.temperature}
    return {**live, "approval": ApprovalMode.AUTO if args.yes else ApprovalMode.ASK, **replay_options(args)}


def _approvers(redact: Any) -> dict[str, Any]:
    """Who approves the live model's calls (`approver`) and the file's recorded ones (`rerun_approver`)
    in a replay, when they need it: a person at this terminal, or nobody (each refusal says why)."""
    from nano_code.session.performer import RERUN_REFUSED, refuse_recorded

    display = HumanDisplay(sys.stderr, sys.stderr, describe_call, redact=redact, live=False)
    context = ToolContext(workspace=Path.cwd().resolve())
    live = approver(display, lambda: context)
    if sys.stdin.isatty():
        return {"approver": live, "rerun_approver": live}

    def refuse(action: Any) -> Any:
        display.notice(f"refused recorded {action.call.name}: {RERUN_REFUSED}")
        return refuse_recorded(action)

    return {"approver": live, "rerun_approver": refuse}
