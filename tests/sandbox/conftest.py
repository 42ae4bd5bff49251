"""Fixtures for the sandbox tests: a workspace, and the `agent` fixture of tests/cli for the end-to-end ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_CLI = Path(__file__).resolve().parent.parent / "cli"
if str(_CLI) not in sys.path:
    sys.path.insert(0, str(_CLI))

from cli_helpers import agent  # noqa: E402, F401 - the fixture, defined once in cli_helpers.py


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace under /tmp: the case where the sandbox's private /tmp must not hide it."""
    root = tmp_path / "ws"
    root.mkdir()
    return root.resolve()
