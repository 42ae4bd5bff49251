"""`nano-code eval SUITE --model A [--model B ...] --epochs K --output DIR`: a suite across models
and epochs (nano_code/evals), a progress line on a terminal, the report on stdout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from nano_code.cli.arguments import add_sandbox_arguments
from nano_code.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Interrupts, say, usage_error

if TYPE_CHECKING:
    from nano_code.evals import Progress

EXAMPLES = """\
examples:
  nano-code eval suite.toml --model openai/gpt-5 --model anthropic/claude-sonnet-4.5 --epochs 5 --output runs/cmp
  nano-code eval suite.toml --model m --epochs 10 --output runs/cmp   the same DIR again: only what it lacks
  nano-code eval suite.toml --model m --epochs 3 --output runs/m --jobs 4 --max-cost 2.50
  nano-code eval suite.toml --model m --epochs 50 --output runs/big --engine ray --jobs 64   on a Ray cluster
  nano-code replay runs/cmp                                           every sample replays offline

DIR holds eval.json, samples.jsonl (the record), sessions/, samples.csv, summary.csv, compare.csv.
Exit status: 0 every sample is in DIR, 1 some are not (--max-cost) or DIR could not be written,
2 a bad suite, setting or DIR, 130 interrupted. Guide: docs/evals.md.
"""


def eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nano-code eval",
        description="Run a task suite across models and epochs; every sample is a recorded session.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("suite", metavar="SUITE", help="a TOML file of [[task]] tables, or the same keys as JSON Lines")
    add(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="a model to run (repeat; default MODEL_NAME)",
    )
    add("--epochs", type=int, default=1, metavar="K", help="samples of each task per model (default 1)")
    add("--output", "-o", required=True, metavar="DIR", help="where samples, sessions and tables go")
    add("--base-url", help="OpenAI-compatible base URL (INFERENCE_BASE_URL)")
    add("--jobs", "-j", type=int, default=1, metavar="N", help="samples run at once (default 1)")
    add("--max-steps", type=int, metavar="N", help="model calls per sample, for tasks that set none")
    add(
        "-y", "--yes", action="store_true", help="approve every tool call (else calls needing it are refused)"
    )
    add("--max-cost", type=float, metavar="USD", help="start no sample once DIR's summed cost reaches USD")
    add("--retry-errors", action="store_true", help="run the samples whose outcome was error again")
    add(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="where samples run: local (threads, the default) or ray (Ray tasks; pip install 'nano-code[ray]')",
    )
    add(
        "--ray-address",
        metavar="ADDR",
        help="the Ray cluster for --engine ray (default: RAY_ADDRESS, else one `ray start` began here, else a new local one)",
    )
    add_sandbox_arguments(parser)
    return parser


def eval_main(argv: Sequence[str]) -> int:
    parser = eval_parser()
    args = parser.parse_args(argv)
    if args.ray_address is not None and args.engine != "ray":
        parser.error("--ray-address needs --engine ray")
    from nano_code.adapters.config import ConfigError
    from nano_code.adapters.process_groups import kill_left_running
    from nano_code.evals import EvalError, EvalStopped, RunDirError, SuiteError, run_eval

    interrupts = Interrupts()
    interrupts.install()
    progress = ProgressLine(sys.stderr)
    try:
        result = run_eval(
            args.suite,
            args.model,
            args.epochs,
            args.output,
            base_url=args.base_url,
            jobs=args.jobs,
            max_steps=args.max_steps,
            yes=args.yes,
            max_cost=args.max_cost,
            engine=args.engine,
            engine_options={"address": args.ray_address},
            sandbox=args.sandbox,
            sandbox_network=args.sandbox_network,
            retry_errors=args.retry_errors,
            on_progress=progress.show,
            on_notice=lambda text: progress.say(f"nano-code eval: {text}"),
        )
    except EvalStopped as error:
        progress.clear()
        say(f"nano-code eval: {error}", err=True)
        return EXIT_FAILED
    except (ConfigError, EvalError, RunDirError, SuiteError) as error:
        progress.clear()
        return usage_error(f"nano-code eval: {error}")
    finally:
        kill_left_running()
    progress.clear()
    tables = ", ".join(str(result.output / name) for name in result.tables)
    if result.interrupted:
        say(
            f"nano-code eval: interrupted: {len(result.samples)} of {result.planned} samples are in "
            f"{result.output}; the same command finishes the rest (tables: {tables})",
            err=True,
        )
        return interrupts.exit_status(EXIT_INTERRUPTED)
    sys.stdout.write(result.report.rstrip("\n") + "\n")
    sys.stdout.flush()
    say(f"tables: {tables}", err=True)
    if result.stopped is not None:
        say(
            f"nano-code eval: stopped starting samples: {result.stopped}; {len(result.samples)} of "
            f"{result.planned} samples are in {result.output} (a higher --max-cost finishes them)",
            err=True,
        )
        return EXIT_FAILED
    return EXIT_OK


class ProgressLine:
    """One line on stderr, rewritten after each sample, when stderr is a terminal (never on a pipe)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.shown = False

    def show(self, progress: Progress) -> None:
        if not self.live:
            return
        text = f"eval: {progress.done}/{progress.total} samples · {progress.passed} passed · ${progress.cost:.4f}"
        if progress.seconds_left is not None and progress.done < progress.total:
            text += f" · about {_duration(progress.seconds_left)} left"
        self._write(f"\r\x1b[K{text}")
        self.shown = True

    def say(self, text: str) -> None:
        self.clear()
        say(text, err=True)

    def clear(self) -> None:
        if self.shown:
            self._write("\r\x1b[K")
            self.shown = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
