"""`nano-code export`: a session as a cassette with every body whole."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from nano_code.cli.main import EXIT_OK, EXIT_USAGE, say


def export_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nano-code export",
        description=(
            "Write a session as a cassette with every request body whole (format 2 stores a body "
            "that extends the previous one as what it adds), for tools that read cassettes "
            "without nano-code."
        ),
    )
    parser.add_argument("path", metavar="PATH")
    parser.add_argument("--full", action="store_true", help="every body whole (the only kind, for now)")
    parser.add_argument("--output", "-o", metavar="OUT", help="where to write (default: PATH.full.yaml)")
    args = parser.parse_args(argv)
    from nano_code.adapters.session_file import SessionFileError, export_full, load_session

    source = Path(args.path)
    target = Path(args.output) if args.output else source.with_suffix(".full.yaml")
    try:
        export_full(load_session(source), target)
    except FileExistsError:
        say(f"nano-code export: {target} exists; pass --output", err=True)
        return EXIT_USAGE
    except (SessionFileError, OSError) as error:
        say(f"nano-code export: {error}", err=True)
        return EXIT_USAGE
    say(f"{source}: exported with every body whole -> {target}")
    return EXIT_OK
