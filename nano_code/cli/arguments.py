"""The options more than one command takes: where shell commands run (the sandbox), and what
every `nano-code replay` passes on to a replay."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sandbox",
        choices=("workspace-write", "read-only", "off"),
        help="run shell commands in an OS sandbox (NANO_CODE_SANDBOX): workspace-write (the default "
        "where bwrap works) lets them write the workspace and a private /tmp, read-only only the "
        "private /tmp; no network, background processes end with their command",
    )
    parser.add_argument(
        "--sandbox-network",
        action="store_true",
        help="let sandboxed commands use the network (package installs)",
    )


def sandbox_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    """The settings these options override (None: not given here)."""
    return {
        "NANO_CODE_SANDBOX": args.sandbox,
        "NANO_CODE_SANDBOX_NETWORK": "1" if args.sandbox_network else None,
    }


PASSED_ON = ("ignore", "live_tools", "rerun_recorded", "sandbox", "sandbox_network")


def replay_options(args: argparse.Namespace) -> dict[str, Any]:
    """What `replay_session` takes from this command line, quiet or shown."""
    options = {name: getattr(args, name) for name in PASSED_ON}
    return {**options, "workspace": Path(args.workspace) if args.workspace else None}
