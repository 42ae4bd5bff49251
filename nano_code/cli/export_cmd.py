"""`nano-code export`: a session as a cassette with every body whole, or sessions as corpus tables."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from nano_code.cli.exits import EXIT_FAILED, EXIT_OK, say, usage_error


def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nano-code export",
        description=(
            "Write a session as a cassette with every request body whole, for tools that read\n"
            "cassettes without nano-code; or, with --to, recorded sessions as a table: one row per\n"
            "session, model call or tool call (CSV), or one JSON object per session (.jsonl)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  nano-code export s.yaml --full                 s.full.yaml, every body whole\n"
            "  nano-code export runs/ --to steps.csv          one row per model call (or sessions, tool_calls)\n"
            "  nano-code export a.yaml b.yaml --to corpus.jsonl --replay\n"
            "\n"
            "The --to name (a prefix like run1- allowed) or .jsonl chooses the table; its columns are\n"
            "in nano_code/session/corpus.py. The file is created 0600, its CSV cells spreadsheet-safe."
        ),
    )
    add = parser.add_argument
    add("paths", nargs="+", metavar="PATH", help="session file; with --to, files or directories of them")
    add("--full", action="store_true", help="every body whole (the only kind, for now)")
    add("--output", "-o", metavar="OUT", help="where to write (default: PATH.full.yaml)")
    add("--to", metavar="TABLE", help="write a table: sessions.csv, steps.csv, tool_calls.csv or NAME.jsonl")
    add("--replay", action="store_true", help="with --to: replay each session first (replay columns)")
    add("--force", action="store_true", help="with --to: replace an existing file")
    return parser


def export_main(argv: Sequence[str]) -> int:
    args = export_parser().parse_args(argv)
    if args.to is not None:
        if args.full or args.output:
            return usage_error("nano-code export: --to writes a table; --full and --output write a cassette")
        return _export_table(args)
    if args.replay or args.force:
        return usage_error("nano-code export: --replay and --force go with --to")
    if len(args.paths) != 1:
        return usage_error("nano-code export: give one session (or pass --to to write a table of many)")
    return _export_full(Path(args.paths[0]), args.output)


def _export_full(source: Path, output: str | None) -> int:
    from nano_code.adapters.session_file import SessionFileError, load_session
    from nano_code.adapters.session_writer import export_full

    target = Path(output) if output else source.with_suffix(".full.yaml")
    try:
        export_full(load_session(source), target)
    except FileExistsError:
        return usage_error(f"nano-code export: {target} exists; pass --output")
    except (SessionFileError, OSError) as error:
        return usage_error(f"nano-code export: {error}")
    say(f"{source}: exported with every body whole -> {target}")
    return EXIT_OK


def _export_table(args: argparse.Namespace) -> int:
    from nano_code.adapters.session_file import SessionFileError
    from nano_code.cli.sessions_cmd import expand_paths
    from nano_code.session.corpus_files import corpus_tables, table_for, write_table

    target = Path(args.to)
    try:
        table = table_for(target)
    except ValueError as error:
        return usage_error(f"nano-code export: {error}")
    if target.exists() and not args.force:
        return usage_error(f"nano-code export: {target} exists; pass --force to replace it")
    if not (paths := expand_paths(args.paths)):
        return usage_error("nano-code export: no session files found")
    reports = None
    if args.replay:
        from nano_code.session.replay import replay_session

        reports = {str(path): replay_session(path) for path in paths}
    skipped: list[Path] = []

    def skip(path: Path, error: SessionFileError) -> None:
        skipped.append(path)
        say(f"skipped {error}", err=True)

    try:
        rows = write_table(corpus_tables(paths, reports, on_error=skip), target, table, overwrite=args.force)
    except OSError as error:
        return usage_error(f"nano-code export: {error}")
    if table == "jsonl":
        summary = f"{rows} session(s), one JSON object each"
    else:
        summary = f"{rows} row(s) of {table} from {len(paths) - len(skipped)} session(s)"
    say(f"{target}: {summary}" + (f"; {len(skipped)} file(s) skipped" if skipped else ""))
    return EXIT_FAILED if skipped else EXIT_OK
