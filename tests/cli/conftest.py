"""Fixtures for the end-to-end tests of the `nano-code` executable (helpers: cli_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import Agent


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    """A workspace, a NANO_CODE_HOME and fake servers stopped (and their requests checked) at the end."""
    runner = Agent(tmp_path)
    try:
        yield runner
        runner.check_requests()
    finally:
        runner.close()
