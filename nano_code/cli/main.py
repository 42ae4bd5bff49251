"""`nano-code`: parse the command line and dispatch to a run or a subcommand (exit statuses: cli/exits.py)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import import_module

from nano_code import __version__
from nano_code.cli import exits
from nano_code.cli.arguments import add_sandbox_arguments
from nano_code.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, say

EXAMPLES = """\
examples:
  nano-code                                   work interactively in this directory
  nano-code -p "make the tests pass" --yes    one task, approve every tool call
  git diff | nano-code -p "review this"       task text plus stdin
  echo "add a README" | nano-code --yes       the task read from stdin
  nano-code --record fix.yaml -p "fix bug"    record the session to fix.yaml
  nano-code --sandbox off -p "run the app"    commands with your full rights
  nano-code replay cassettes/*.yaml           replay sessions offline, strictly
  nano-code sessions                          list recorded sessions
  nano-code export s.yaml --full              a cassette with every body whole
  nano-code export runs/ --to steps.csv       one row per model call of every session under runs/
  nano-code eval suite.toml --model A --model B --epochs 3 --output runs/ab
                                              a task suite across models, with pass@k and a comparison
  nano-code view runs/ab -o ab.html           an eval run or sessions as one offline HTML page

settings (later wins): .env in this directory, then the environment, then flags.
  OPENROUTER_API_KEY    API key (not needed for local servers)
  INFERENCE_BASE_URL    default https://openrouter.ai/api/v1 (/chat/completions is appended)
  MODEL_NAME            the model to use
see .env.example for every setting.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nano-code",
        description="A small coding agent for the terminal. Every session is recorded and replays exactly.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("-p", "--prompt", metavar="TASK", help="run one task non-interactively, then exit")
    add("-y", "--yes", action="store_true", help="approve every tool call without asking")
    add("--model", help="model name (MODEL_NAME)")
    add("--base-url", help="OpenAI-compatible base URL (INFERENCE_BASE_URL)")
    add("--max-steps", type=int, metavar="N", help="model calls allowed per turn")
    add(
        "--prompt-cache",
        choices=("auto", "on", "off"),
        help="prompt-cache markers (NANO_CODE_PROMPT_CACHE): auto (default) for the models that want them, "
        "on for every model, off for none",
    )
    stream = parser.add_mutually_exclusive_group().add_argument
    stream("--stream", dest="stream", action="store_const", const="1", help="always stream replies")
    stream(
        "--no-stream", dest="stream", action="store_const", const="0", help="never stream (one JSON reply)"
    )
    add(
        "--json",
        action="store_true",
        help="JSON Lines of every kernel event/action on stdout; text to stderr",
    )
    add_sandbox_arguments(parser)
    record = parser.add_mutually_exclusive_group().add_argument
    record("--record", metavar="PATH", help="record the session to PATH (a vcrpy cassette)")
    record("--no-record", action="store_true", help="do not record this session")
    record("--resume", metavar="PATH", help="continue a recorded session (appends to it)")
    add("--version", action="version", version=f"nano-code {__version__}")
    return parser


SUBCOMMANDS = ("replay", "diff", "sessions", "export", "eval", "view")


def subcommand(name: str) -> Callable[[Sequence[str]], int]:
    """The entry point of `nano-code NAME ...` (cli/NAME_cmd.py), imported only when it is asked for."""
    entry: Callable[[Sequence[str]], int] = getattr(
        import_module(f"nano_code.cli.{name}_cmd"), f"{name}_main"
    )
    return entry


def _start_early(args: argparse.Namespace) -> None:
    """Start git (a new recording's provenance) and bwrap's trial run (unless the sandbox is
    off) now, so they run while the rest is imported (adapters/early.py). git's config is read
    first and used after the sandbox's import, so nothing here waits for a command."""
    from pathlib import Path

    workspace = Path.cwd().resolve()
    recording = not args.no_record and not args.resume
    if recording:
        from nano_code.adapters import git

        git.start_provenance_config(workspace)
    requested = args.sandbox or os.environ.get("NANO_CODE_SANDBOX", "").strip().lower()
    if requested != "off":
        from nano_code.adapters import sandbox

        sandbox.start_probe()
    if recording:
        git.start_provenance(workspace)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("NANO_CODE_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        if args and args[0] in SUBCOMMANDS:
            return subcommand(args[0])(args[1:])
        parsed = build_parser().parse_args(args)  # --help and --version exit here, before heavy imports
        _start_early(parsed)
        from nano_code.cli import run

        return run.main(parsed)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as error:  # the one place that turns a crash into one line
        if debug or exits.show_tracebacks:
            traceback.print_exc()
        else:
            hint = "(set NANO_CODE_DEBUG=1 for the traceback)"
            say(f"nano-code: internal error: {type(error).__name__}: {error} {hint}", err=True)
        return EXIT_FAILED
    finally:
        if "nano_code.adapters.early" in sys.modules:
            from nano_code.adapters import early

            early.forget()  # commands started early and never asked for (the run ended first)
