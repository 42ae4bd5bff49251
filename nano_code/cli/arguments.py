"""The options more than one command takes: where shell commands run (the sandbox)."""

from __future__ import annotations

import argparse


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
