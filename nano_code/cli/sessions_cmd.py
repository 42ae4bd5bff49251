"""`nano-code replay`, `nano-code diff` and `nano-code sessions`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nano_code.adapters.safe_text import json_text
from nano_code.cli.main import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_sandbox_arguments,
    say,
)


def replay_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nano-code replay",
        description=(
            "Replay recorded sessions strictly and offline: the real driver and HTTP client run under "
            "vcrpy, tools are served from the recording, and the first difference in a request or tool "
            "call is reported. Exit 0 only when every session replays identically."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  nano-code replay cassettes/bugfix.yaml\n"
            "  nano-code replay cassettes/ --jobs 2\n"
            "  nano-code replay s.yaml --ignore '$.messages[0].content'\n"
            "  nano-code replay s.yaml --rebless          # accept changed requests, write s.reblessed.yaml\n"
            "  nano-code replay s.yaml --fork-at 2 --model other/model\n"
            "  nano-code replay s.yaml --fork-at 2 --samples 5 --check 'python3 -m pytest -q' --yes\n"
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="session files or directories of them")
    parser.add_argument("--json", action="store_true", help="one JSON report per session on stdout")
    parser.add_argument(
        "--ignore", action="append", default=[], metavar="JSONPATH", help="mask a volatile field (repeatable)"
    )
    parser.add_argument(
        "--jobs", "-j", type=int, default=1, metavar="N", help="replay in N processes (0: one per core)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="do not show the session transcript")
    parser.add_argument("--rebless", action="store_true", help="accept new requests; write an updated copy")
    parser.add_argument(
        "--output",
        metavar="PATH",
        help="where --rebless/--fork-at write (default: beside the session); with --samples, a directory",
    )
    parser.add_argument(
        "--live-tools", action="store_true", help="also run the tools here and compare outputs"
    )
    parser.add_argument("--fork-at", type=int, metavar="N", help="replay N model calls, then continue live")
    parser.add_argument(
        "--workspace",
        metavar="DIR",
        help="run live tools (--live-tools, --fork-at) in DIR, which they change; default: a fresh "
        "temporary directory holding the session's workspace snapshot",
    )
    parser.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="approve every tool call the live model makes in a fork's live part; without it they "
        "are asked on a terminal and refused elsewhere -- never approved because the recording "
        "was. It does not approve re-running the file's own recorded calls (see --rerun-recorded)",
    )
    parser.add_argument(
        "--rerun-recorded",
        action="store_true",
        help="approve re-running the session file's own recorded tool calls (--live-tools, and "
        "--fork-at's replayed part) where the sandbox alone would not let them run: with "
        "--sandbox off, every write and command the file holds, with your rights. A received "
        "file is data; without this flag those calls are asked on a terminal and refused elsewhere",
    )
    add_sandbox_arguments(parser)
    parser.add_argument("--model", help="model for the live continuation of --fork-at")
    parser.add_argument(
        "--temperature", type=float, metavar="T", help="sampling temperature of the live continuation (0-2)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="ask the server for repeatable sampling in the live continuation",
    )
    parser.add_argument(
        "--samples", type=int, metavar="K", help="with --fork-at: K independent forks, and a table of them"
    )
    parser.add_argument(
        "--check",
        metavar="CMD",
        help="with --samples: a shell command run in each fork's final workspace; exit 0 is a pass",
    )
    parser.add_argument("--base-url", help="server for the live continuation of --fork-at")
    return parser


def expand_paths(paths: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for entry in sorted(path.rglob("*.yaml")):
                if entry.is_file():
                    found.append(entry)
                elif not entry.is_dir():
                    say(f"skipped {entry}: not a regular file (a pipe, device or dangling link)", err=True)
        else:
            found.append(path)
    return found


def _resolve_sandbox(args: argparse.Namespace) -> None:
    """Set `args.sandbox` and `args.sandbox_network` to what this command line and the
    environment ask for live tools, read and checked as a live run reads them (never
    from .env); a bad value is a usage error."""
    from nano_code.adapters.config import ConfigError, load_settings

    overrides = {
        "NANO_CODE_SANDBOX": args.sandbox,
        "NANO_CODE_SANDBOX_NETWORK": "1" if args.sandbox_network else None,
    }
    try:
        settings = load_settings(Path.cwd(), os.environ, overrides)
    except ConfigError as error:
        say(f"nano-code replay: {error}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    args.sandbox, args.sandbox_network = settings.sandbox, settings.sandbox_network


def _replay_quiet(job: tuple[str, list[str], bool, bool, str | None, str | None, bool]) -> Any:
    from nano_code.session.replay import replay_session

    path, ignore, live_tools, rerun_recorded, workspace, sandbox, network = job
    return replay_session(
        path,
        ignore=ignore,
        live_tools=live_tools,
        workspace=Path(workspace) if workspace else None,
        rerun_recorded=rerun_recorded,
        sandbox=sandbox,
        sandbox_network=network,
        keep_workspace=False,  # a batch of --live-tools replays: each restored copy goes after use
    )


TORN_NOTE = (
    "the file's last line was cut off while being written (the session was killed mid-write); "
    "the replay stops where the file does"
)


def _notes(report: Any) -> list[str]:
    """What a user should know beside the status: a torn file, masks that hid nothing."""
    notes = []
    if report.torn:
        notes.append(f"  note: {TORN_NOTE}")
    for pattern in report.unused_masks:
        notes.append(f"  note: --ignore {pattern} hid nothing (a typo, or a field that did not change?)")
    if report.not_rerun:
        notes.append(
            f"  note: {report.not_rerun} recorded call(s) were not re-run here: they need approval, "
            "and the file's own calls get it only from --rerun-recorded (or your yes at a terminal)"
        )
    return notes


def _status_line(report: Any) -> str:
    return "\n".join([_status(report), *_notes(report)])


def _sandbox_notice(report: Any) -> None:
    if report.sandbox_notice:
        say(f"nano-code replay: {report.sandbox_notice} (live tools ran unsandboxed)", err=True)


def _status(report: Any) -> str:
    if report.status == "identical":
        masked = f", masked {', '.join(report.masked)}" if report.masked else ""
        return f"{report.path}: identical ({report.steps} steps, {report.tool_calls} tool calls{masked})"
    if report.status == "diverged":
        return f"{report.path}: {report.divergence.render()}"
    if report.status == "error":
        first_line = (report.error or "").strip().splitlines()[0] if report.error else ""
        return f"{report.path}: error: {first_line}"
    if report.status == "tool outputs differ":
        count = len(report.tool_output_differences)
        return f"{report.path}: replayed identically, but {count} tool output(s) differ here"
    return f"{report.path}: {report.status} -> {report.output_path}"


def replay_main(argv: Sequence[str]) -> int:
    args = replay_parser().parse_args(argv)
    if not (args.live_tools or args.fork_at is not None or args.rebless):
        return _replay_main(args)
    from nano_code.adapters.shell import kill_left_running
    from nano_code.cli.run import Interrupts

    # Ctrl-C and SIGTERM both end the replay of one session the same way: what it was
    # writing and the workspace it restored are removed (replay_session, sample_forks),
    # exit 130 or 143. A batch keeps the default handlers (its pool's workers get Ctrl-C).
    args.interrupts = Interrupts()
    try:
        return _replay_main(args)
    except KeyboardInterrupt:
        say("nano-code replay: interrupted; its partial output and restored workspace are removed", err=True)
        return int(args.interrupts.exit_status(EXIT_INTERRUPTED))
    finally:
        kill_left_running()  # what live tools left running ends with the replay, as in a live session


def _replay_main(args: argparse.Namespace) -> int:
    from nano_code.kernel.jsondiff import Mask, MaskError
    from nano_code.session.replay import ReplayReport

    try:
        for pattern in args.ignore:
            Mask.parse(pattern)
    except MaskError as error:
        say(f"nano-code replay: {error}", err=True)
        return EXIT_USAGE
    paths = expand_paths(args.paths)
    if not paths:
        say("nano-code replay: no session files found", err=True)
        return EXIT_USAGE
    single = len(paths) == 1
    if (args.rebless or args.fork_at is not None) and not single:
        say("nano-code replay: --rebless and --fork-at take exactly one session", err=True)
        return EXIT_USAGE
    if single and getattr(args, "interrupts", None) is not None:
        args.interrupts.install()
    if args.jobs == 0:
        args.jobs = os.cpu_count() or 1
    from nano_code.session.samples import MAX_SAMPLES, max_jobs

    if args.jobs > max_jobs():
        say(f"nano-code replay: --jobs {args.jobs} capped at {max_jobs()} (4 per CPU, at most 64)", err=True)
        args.jobs = max_jobs()
    if args.samples is not None and args.samples > MAX_SAMPLES:
        say(f"nano-code replay: --samples {args.samples} capped at {MAX_SAMPLES}", err=True)
        args.samples = MAX_SAMPLES
    if args.temperature is not None and not 0.0 <= args.temperature <= 2.0:
        say("nano-code replay: --temperature takes a number from 0 to 2", err=True)
        return EXIT_USAGE
    live_only = [
        flag
        for flag, given in (
            ("--model", args.model),
            ("--base-url", args.base_url),
            ("--temperature", args.temperature is not None),
            ("--seed", args.seed is not None),
        )
        if given
    ]
    if args.rerun_recorded and not (args.live_tools or args.fork_at is not None):
        say(
            "nano-code replay: --rerun-recorded approves re-run tools: add --live-tools or --fork-at N",
            err=True,
        )
        return EXIT_USAGE
    if live_only and args.fork_at is None:
        say(f"nano-code replay: {', '.join(live_only)} shape a fork's live part: add --fork-at N", err=True)
        return EXIT_USAGE
    if args.workspace and not (args.live_tools or args.fork_at is not None):
        say(
            "nano-code replay: --workspace is where live tools run: add --live-tools or --fork-at N", err=True
        )
        return EXIT_USAGE
    if args.samples is not None and args.workspace:
        say(
            "nano-code replay: --samples restores a fresh workspace for each fork; drop --workspace", err=True
        )
        return EXIT_USAGE
    if args.live_tools or args.fork_at is not None:
        _resolve_sandbox(args)
    if args.samples is not None or args.check is not None:
        if args.samples is None or args.fork_at is None or args.samples < 1:
            say(
                "nano-code replay: --samples K (K >= 1) goes with --fork-at N; --check with --samples",
                err=True,
            )
            return EXIT_USAGE
        return _samples(paths[0], args)
    started = time.perf_counter()
    reports: list[ReplayReport] = []
    if single and (not args.quiet or args.rebless or args.fork_at is not None):
        reports.append(_replay_one(paths[0], args))
        if not args.json:
            _print_report(reports[0])
    else:
        jobs = [
            (
                str(p),
                args.ignore,
                args.live_tools,
                args.rerun_recorded,
                args.workspace,
                args.sandbox,
                args.sandbox_network,
            )
            for p in paths
        ]
        with contextlib.ExitStack() as stack:
            if args.jobs > 1:
                from concurrent.futures import ProcessPoolExecutor

                pool = stack.enter_context(ProcessPoolExecutor(max_workers=args.jobs))
                done = pool.map(_replay_quiet, jobs, chunksize=max(1, len(jobs) // (args.jobs * 4)))
            else:
                done = map(_replay_quiet, jobs)
            for report in done:
                reports.append(report)
                if not args.json:
                    say(_status_line(report), err=report.status == "error")
    elapsed = time.perf_counter() - started
    if args.json:
        for report in reports:
            say(json_text(report.as_json()))
    elif not single:
        counts = {s: sum(r.status == s for r in reports) for s in ("identical", "diverged", "error")}
        rate = len(reports) / elapsed if elapsed > 0 else 0.0
        steps = sum(r.steps for r in reports)
        say(
            f"\nsessions {len(reports)} | identical {counts['identical']} | diverged {counts['diverged']} | "
            f"errors {counts['error']} | {rate:.1f} sessions/s | {steps / elapsed if elapsed else 0:.0f} steps/s"
        )
        failed = [report for report in reports if not report.ok]
        if failed:
            say("failed:")
            for report in failed:
                say(f"  {report.path}: {report.status}")
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED


def _live_settings(args: argparse.Namespace) -> Any:
    """The server, key and limits of a fork's live part: this command line's and environment's."""
    from nano_code.adapters.config import ConfigError, load_settings

    try:
        settings = load_settings(
            Path.cwd(), os.environ, {"MODEL_NAME": args.model, "INFERENCE_BASE_URL": args.base_url}
        )
    except ConfigError as error:
        say(f"nano-code replay: {error}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    for warning in settings.warnings:  # e.g. the host a .env's base URL sends the key to
        say(f"nano-code replay: {warning}", err=True)
    return settings


def _samples(path: Path, args: argparse.Namespace) -> int:
    from nano_code.kernel.types import ApprovalMode
    from nano_code.session.samples import sample_forks

    try:
        report = sample_forks(
            path,
            args.fork_at,
            args.samples,
            _live_settings(args),
            check=args.check,
            jobs=args.jobs,
            live_model=args.model,
            temperature=args.temperature,
            seed=args.seed,
            approval=ApprovalMode.AUTO if args.yes else ApprovalMode.ASK,
            rerun_recorded=args.rerun_recorded,
            out_dir=Path(args.output) if args.output else None,
            sandbox=args.sandbox,
            sandbox_network=args.sandbox_network,
        )
    except FileExistsError as error:
        say(f"nano-code replay: {error}", err=True)
        return EXIT_USAGE
    say(json_text(report.as_json()) if args.json else report.table())
    if report.interrupted:
        say(
            "nano-code replay: interrupted; the forks that finished are kept, the others' partial "
            "files and restored workspaces are removed",
            err=True,
        )
        return int(args.interrupts.exit_status(EXIT_INTERRUPTED))
    return EXIT_OK if all(sample.report.ok for sample in report.samples) else EXIT_FAILED


def _replay_one(path: Path, args: argparse.Namespace) -> Any:
    from nano_code.adapters.secrets import Redactor
    from nano_code.adapters.terminal import HumanDisplay
    from nano_code.cli.run import describe_call
    from nano_code.kernel.types import ApprovalMode
    from nano_code.session.replay import replay_session

    live_settings = _live_settings(args) if args.fork_at is not None else None
    # The live continuation uses the real key: keep it off the screen and out of the fork.
    shown = Redactor(live_settings.api_key if live_settings else None)
    observers = []
    on_delta = None
    if not args.quiet and not args.json:
        display = HumanDisplay(
            sys.stdout,
            sys.stdout,
            describe_call,
            redact=shown.scrub,
            holdback=shown.holdback,
            live=False,
            echo_input=True,
        )
        observers.append(display)
        on_delta = display.on_delta
    approver, rerun_approver = _approvers(shown.scrub)
    rebless_to = None
    if args.rebless:
        rebless_to = Path(args.output) if args.output else path.with_suffix(".reblessed.yaml")
    fork_to = None
    if live_settings is not None:
        fork_to = Path(args.output) if args.output else path.with_suffix(f".fork{args.fork_at}.yaml")
    for target in (rebless_to, fork_to):
        if target is not None and target.exists():
            fix = "choose another --output, or remove it" if args.output else "pass --output"
            say(f"nano-code replay: {target} exists; {fix}", err=True)
            raise SystemExit(EXIT_USAGE)
    return replay_session(
        path,
        ignore=args.ignore,
        rebless_to=rebless_to,
        live_tools=args.live_tools,
        workspace=Path(args.workspace) if args.workspace else None,
        fork_at=args.fork_at,
        fork_to=fork_to,
        live_settings=live_settings,
        observers=observers,
        on_delta=on_delta,
        live_model=args.model,
        live_temperature=args.temperature,
        live_seed=args.seed,
        sandbox=args.sandbox,
        sandbox_network=args.sandbox_network,
        redactor=shown,
        approval=ApprovalMode.AUTO if args.yes else ApprovalMode.ASK,
        rerun_recorded=args.rerun_recorded,
        approver=approver,
        rerun_approver=rerun_approver,
    )


def _approvers(redact: Any = None) -> tuple[Any, Any]:
    """Who approves, in a replay, the live model's tool calls and the file's recorded ones
    (when they need it): a person at this terminal, or nobody (each refusal says why)."""
    from nano_code.adapters.terminal import HumanDisplay, TerminalApprover, refuse_without_terminal
    from nano_code.adapters.tools import ToolContext
    from nano_code.cli.run import describe_call, preview
    from nano_code.session.replay import RERUN_REFUSED, refuse_recorded

    display = HumanDisplay(
        sys.stderr, sys.stderr, describe_call, redact=redact or (lambda text: text), live=False
    )
    if sys.stdin.isatty():
        context = ToolContext(workspace=Path.cwd().resolve())
        ask = TerminalApprover(display, lambda action: preview(action, context), sys.stdin).ask
        return ask, ask

    def refuse(action: Any) -> Any:
        display.notice(f"refused recorded {action.call.name}: {RERUN_REFUSED}")
        return refuse_recorded(action)

    return (lambda action: refuse_without_terminal(action, display.notice)), refuse


def _print_report(report: Any) -> None:
    _sandbox_notice(report)
    say(_status_line(report), err=report.status == "error")
    for change in report.changed_requests:
        say(f"  {change.render('accepted a change')}")
    if report.workspace is not None:
        say(f"  tools ran in {report.workspace}")
    for difference in report.tool_output_differences:
        say(f"  step {difference.step}: {difference.tool} output differs from the recording")
    if report.status in ("identical", "reblessed", "forked"):
        usage = report.usage
        cost = f", ${usage.cost:.4f}" if usage.cost is not None else ""
        say(f"  {usage.total_tokens:,} tokens{cost}, replayed in {report.seconds * 1000:.0f} ms")


def sessions_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="nano-code sessions", description="List recorded sessions.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from nano_code.adapters.config import ConfigError, load_settings
    from nano_code.adapters.session_file import SessionFileError
    from nano_code.adapters.session_summary import summarize

    try:
        settings = load_settings(Path.cwd(), os.environ, {})
    except ConfigError as error:
        say(f"nano-code: {error}", err=True)
        return EXIT_USAGE
    directory = settings.home / "sessions"
    rows = []
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        try:
            rows.append(_session_row(summarize(path)))  # its records are not held, only counted
        except SessionFileError as error:
            say(f"skipped {error}", err=True)
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            say(f"skipped {path}: a record has an unexpected shape ({type(error).__name__})", err=True)
    if args.json:
        for row in rows:
            say(json_text(row))
        return EXIT_OK
    if not rows:
        say(f"no sessions in {directory}")
        return EXIT_OK
    say(f"{'when':20} {'model':28} {'steps':>5} {'tokens':>8} {'cost':>8}  task / path")
    for row in rows:
        cost = f"${row['cost']:.4f}" if row["cost"] is not None else "-"
        say(
            f"{row['created']:20} {row['model'][:28]:28} {row['steps']:>5} {row['tokens']:>8} {cost:>8}  {row['task'][:50]}"
        )
        say(f"{'':76}{row['path']}")
    return EXIT_OK


def _session_row(summary: Any) -> dict[str, Any]:
    return {
        "created": str(summary.metadata.get("created", "?")),
        "model": str(summary.metadata.get("model", "?")),
        "task": summary.task,
        "steps": summary.steps,
        "tokens": summary.tokens,
        "cost": summary.cost,
        "path": str(summary.path),
    }


def main(command: str, argv: Sequence[str]) -> int:
    if command == "export":
        from nano_code.cli.export_cmd import export_main

        return export_main(argv)
    if command == "replay":
        return replay_main(argv)
    if command == "sessions":
        return sessions_main(argv)
    from nano_code.cli.diff_cmd import diff_main

    return diff_main(argv)
