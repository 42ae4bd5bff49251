"""`nano-code replay`: its options, the checks on them, and a batch of quiet replays."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import time
from collections.abc import Sequence

from nano_code.adapters.safe_text import json_text
from nano_code.cli.arguments import add_sandbox_arguments, replay_options, sandbox_overrides
from nano_code.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Interrupts, say, usage_error
from nano_code.cli.replay_report import print_report, status_line, summary
from nano_code.cli.sessions_cmd import command_settings, expand_paths


def replay_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nano-code replay",
        description=(
            "Replay recorded sessions strictly and offline, reporting the first difference in a request "
            "or tool call. Exit 0 only when every session replays identically."
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
    add = parser.add_argument
    add("paths", nargs="+", metavar="PATH", help="session files or directories of them")
    add("--json", action="store_true", help="one JSON report per session on stdout")
    add("--ignore", action="append", default=[], metavar="JSONPATH", help="mask a volatile field (repeated)")
    add("--jobs", "-j", type=int, default=1, metavar="N", help="replay in N processes (0: one per core)")
    add("--quiet", "-q", action="store_true", help="do not show the session transcript")
    add("--rebless", action="store_true", help="accept new requests; write an updated copy")
    add("--output", metavar="PATH", help="where --rebless/--fork-at write (--samples: a directory)")
    add("--live-tools", action="store_true", help="also run the tools here and compare outputs")
    add("--fork-at", type=int, metavar="N", help="replay N model calls, then continue live")
    add("--workspace", metavar="DIR", help="run live tools in DIR (default: a fresh copy of the snapshot)")
    add("-y", "--yes", action="store_true", help="approve every call the live model of a fork makes")
    add("--rerun-recorded", action="store_true", help="approve re-running recorded calls beyond the sandbox")
    add_sandbox_arguments(parser)
    add("--model", help="model for the live continuation of --fork-at")
    add("--temperature", type=float, metavar="T", help="sampling temperature of the live part (0-2)")
    add("--seed", type=int, metavar="N", help="repeatable sampling in the live continuation")
    add("--samples", type=int, metavar="K", help="with --fork-at: K independent forks, and a table of them")
    add("--check", metavar="CMD", help="with --samples: a command run in each fork's workspace; 0 passes")
    add("--base-url", help="server for the live continuation of --fork-at")
    return parser


def replay_main(argv: Sequence[str]) -> int:
    args = replay_parser().parse_args(argv)
    if not (args.live_tools or args.fork_at is not None or args.rebless):
        return _replay_main(args)
    from nano_code.adapters.process_groups import kill_left_running

    # Ctrl-C and SIGTERM end one session's replay alike (a batch's pool workers get Ctrl-C).
    args.interrupts = Interrupts()
    try:
        return _replay_main(args)
    except KeyboardInterrupt:
        say("nano-code replay: interrupted; its partial output and restored workspace are removed", err=True)
        return int(args.interrupts.exit_status(EXIT_INTERRUPTED))
    finally:
        kill_left_running()  # what live tools left running ends with the replay, as in a live session


LIVE_ONLY = ("model", "base_url", "temperature", "seed")
"""Options that shape only a fork's live part."""


def _misuse(args: argparse.Namespace) -> str | None:
    """What is wrong with this combination of options, or None."""
    live = args.live_tools or args.fork_at is not None
    live_only = [f"--{name.replace('_', '-')}" for name in LIVE_ONLY if getattr(args, name) is not None]
    if args.temperature is not None and not 0.0 <= args.temperature <= 2.0:
        return "nano-code replay: --temperature takes a number from 0 to 2"
    if args.rerun_recorded and not live:
        return "nano-code replay: --rerun-recorded approves re-run tools: add --live-tools or --fork-at N"
    if live_only and args.fork_at is None:
        return f"nano-code replay: {', '.join(live_only)} shape a fork's live part: add --fork-at N"
    if args.workspace and not live:
        return "nano-code replay: --workspace is where live tools run: add --live-tools or --fork-at N"
    if args.samples is not None and args.workspace:
        return "nano-code replay: --samples restores a fresh workspace for each fork; drop --workspace"
    if (args.samples is not None or args.check is not None) and (
        args.samples is None or args.fork_at is None or args.samples < 1
    ):
        return "nano-code replay: --samples K (K >= 1) goes with --fork-at N; --check with --samples"
    return None


def _replay_main(args: argparse.Namespace) -> int:
    from nano_code.kernel.jsondiff import MaskError
    from nano_code.session.divergence import Masks, ReplayReport
    from nano_code.session.replay import replay_session
    from nano_code.session.samples import MAX_SAMPLES, max_jobs

    try:
        Masks.parse(args.ignore)
    except MaskError as error:
        return usage_error(f"nano-code replay: {error}")
    if not (paths := expand_paths(args.paths)):
        return usage_error("nano-code replay: no session files found")
    single = len(paths) == 1
    if (args.rebless or args.fork_at is not None) and not single:
        return usage_error("nano-code replay: --rebless and --fork-at take exactly one session")
    if single and getattr(args, "interrupts", None) is not None:
        args.interrupts.install()
    args.jobs = args.jobs or os.cpu_count() or 1  # 0: one per core
    for name, cap, why in (("jobs", max_jobs(), " (4 per CPU, at most 64)"), ("samples", MAX_SAMPLES, "")):
        if (getattr(args, name) or 0) > cap:
            say(f"nano-code replay: --{name} {getattr(args, name)} capped at {cap}{why}", err=True)
            setattr(args, name, cap)
    if (misuse := _misuse(args)) is not None:
        return usage_error(misuse)
    if args.live_tools or args.fork_at is not None:
        settings = command_settings("nano-code replay", sandbox_overrides(args))
        args.sandbox, args.sandbox_network = settings.sandbox, settings.sandbox_network
    if args.samples is not None:
        from nano_code.cli.replay_live import samples

        return samples(paths[0], args)
    started = time.perf_counter()
    reports: list[ReplayReport] = []
    if single and (not args.quiet or args.rebless or args.fork_at is not None):
        from nano_code.cli.replay_live import replay_one

        reports.append(replay_one(paths[0], args))
        if not args.json:
            print_report(reports[0])
    else:
        # A batch of --live-tools replays: each restored copy goes after use.
        quiet = functools.partial(replay_session, keep_workspace=False, **replay_options(args))
        with contextlib.ExitStack() as stack:
            if args.jobs > 1:
                from concurrent.futures import ProcessPoolExecutor

                pool = stack.enter_context(ProcessPoolExecutor(max_workers=args.jobs))
                done = pool.map(quiet, map(str, paths), chunksize=max(1, len(paths) // (args.jobs * 4)))
            else:
                done = map(quiet, map(str, paths))
            for report in done:
                reports.append(report)
                if not args.json:
                    say(status_line(report), err=report.status == "error")
    if args.json:
        for report in reports:
            say(json_text(report.as_json()))
    elif not single:
        say(summary(reports, time.perf_counter() - started))
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED
