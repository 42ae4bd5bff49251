"""Fixtures for the trust-boundary tests (issue 7): the real `nano-code` executable against
local servers on 127.0.0.1 (helpers: trust_helpers.py, and tests/cli/cli_helpers.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _folder in (_HERE, _HERE.parent / "cli"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from cli_helpers import Agent  # noqa: E402


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    """A workspace, a NANO_CODE_HOME and fake servers stopped (and their requests checked) at the end."""
    runner = Agent(tmp_path)
    try:
        yield runner
        runner.check_requests()
    finally:
        runner.close()
