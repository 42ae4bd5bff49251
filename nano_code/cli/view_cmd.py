"""`nano-code view`: a session, a folder of sessions or an eval folder as one HTML page that opens
offline (nano_code/view/ builds it; this module finds the files and writes the page)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from nano_code.cli.exits import EXIT_FAILED, EXIT_OK, say, usage_error

OUTPUT_NAME = "view.html"
"""The page's default name inside a folder viewed (the sessions' or the eval's)."""


def view_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nano-code view",
        description=(
            "Write one self-contained HTML page of recorded sessions or of an eval: it opens in any\n"
            "browser, offline, fetches nothing and runs nothing from the sessions (everything they\n"
            "hold is shown as text). A session shows step by step what the user asked, what the\n"
            "model said, each tool call with its output, approvals, retries, compaction, tokens\n"
            "and cost; an eval folder shows its tables with each sample linked to its session."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  nano-code view s.yaml                      s.html beside it\n"
            "  nano-code view runs/ -o runs.html          an index of every session under runs/\n"
            "  nano-code view evals/run1                  evals/run1/view.html: tables and samples\n"
        ),
    )
    add = parser.add_argument
    add(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a session file, a folder of them, or an eval's output folder",
    )
    add(
        "--output",
        "-o",
        metavar="FILE",
        help=f"the page to write (default: SESSION.html, or FOLDER/{OUTPUT_NAME})",
    )
    add("--force", action="store_true", help="replace FILE even when it is not a page nano-code view wrote")
    add(
        "--max-sessions",
        type=int,
        default=None,
        metavar="N",
        help="render at most N sessions (default 500); the rest are listed, not rendered",
    )
    return parser


def view_main(argv: Sequence[str]) -> int:
    args = view_parser().parse_args(argv)
    from nano_code.view.build import DEFAULT_MAX_SESSIONS, eval_view, sessions_view
    from nano_code.view.eval_html import is_eval_dir

    limit = DEFAULT_MAX_SESSIONS if args.max_sessions is None else args.max_sessions
    if limit < 1:
        return usage_error("nano-code view: --max-sessions takes a number of at least 1")
    paths = [Path(raw) for raw in args.paths]
    for path in paths:
        if not path.exists():
            return usage_error(f"nano-code view: {path}: no such file or folder")
    evals = [path for path in paths if is_eval_dir(path)]
    if evals and len(paths) > 1:
        return usage_error(f"nano-code view: {evals[0]} is an eval folder: view it on its own")
    if evals:
        built = eval_view(evals[0], limit)
        default = evals[0] / OUTPUT_NAME
    else:
        from nano_code.cli.sessions_cmd import expand_paths

        files = expand_paths(args.paths)
        if not files:
            return usage_error("nano-code view: no session files found")
        folder = len(paths) == 1 and paths[0].is_dir()
        title = f"{len(files)} session(s) under {paths[0]}" if folder else ""
        built = sessions_view(files, title, limit)
        default = paths[0] / OUTPUT_NAME if folder else paths[0].with_suffix(".html")
    target = Path(args.output) if args.output else default
    refusal = _refusal(target, args.force)
    if refusal:
        return usage_error(f"nano-code view: {refusal}")
    try:
        _write_page(target, built.html)
    except OSError as error:
        return usage_error(f"nano-code view: cannot write {target}: {error.strerror or error}")
    for problem in built.problems:
        say(f"not shown: {problem}", err=True)
    size = len(built.html.encode("utf-8"))
    say(
        f"{target}: {built.sessions} session(s), {size / 1024:,.0f} KiB; open it in a browser (works offline)"
    )
    return EXIT_FAILED if built.problems else EXIT_OK


def _refusal(target: Path, force: bool) -> str:
    """Why `target` may not be written ("" when it may): only a page this command wrote is replaced."""
    from nano_code.view.page import GENERATOR

    if target.is_dir():
        return f"{target} is a folder: give a file name with --output"
    if force or not (target.exists() or target.is_symlink()):
        return ""
    from nano_code.adapters.regular_files import open_regular

    try:
        with os.fdopen(open_regular(target), "rb") as existing:
            start = existing.read(2048)
    except OSError:  # a pipe, a device, unreadable: not a page of ours
        start = b""
    if f'<meta name="generator" content="{GENERATOR}">'.encode() in start:
        return ""
    return f"{target} exists and is not a page nano-code view wrote; pass --force to replace it"


def _write_page(target: Path, html: str) -> None:
    """The page, private (0600: it holds the sessions), appearing whole: written aside, then renamed."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(html)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
