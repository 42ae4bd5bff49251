"""`nano-code sessions` lists the recorded sessions; every command finds its files and settings here."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nano_code.adapters.safe_text import json_text
from nano_code.cli.exits import EXIT_OK, say, usage_error


def expand_paths(paths: Sequence[str]) -> list[Path]:
    """Each path given, a directory replaced by the *.yaml files below it."""
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


def command_settings(command: str, overrides: dict[str, str | None]) -> Any:
    """Settings from the environment and `overrides` (this command line's options); a usage error
    that ends `command` when they do not load."""
    from nano_code.adapters.config import ConfigError, load_settings

    try:
        return load_settings(Path.cwd(), os.environ, overrides)
    except ConfigError as error:
        raise SystemExit(usage_error(f"{command}: {error}")) from None


def sessions_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="nano-code sessions", description="List recorded sessions.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from nano_code.adapters.session_file import SessionFileError
    from nano_code.adapters.session_summary import summarize

    directory = command_settings("nano-code", {}).home / "sessions"
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
    line = "{:20} {:28} {:>5} {:>8} {:>8}  {}".format  # the heading's columns and each session's
    say(line("when", "model", "steps", "tokens", "cost", "task / path"))
    for row in rows:
        cost = f"${row['cost']:.4f}" if row["cost"] is not None else "-"
        say(line(row["created"], row["model"][:28], row["steps"], row["tokens"], cost, row["task"][:50]))
        say(f"{'':76}{row['path']}")
    return EXIT_OK


def _session_row(summary: Any) -> dict[str, Any]:
    row = {key: str(summary.metadata.get(key, "?")) for key in ("created", "model")}
    row |= {key: getattr(summary, key) for key in ("task", "steps", "tokens", "cost")}
    return {**row, "path": str(summary.path)}
