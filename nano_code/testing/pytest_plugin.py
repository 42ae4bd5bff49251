"""pytest plugin (the `pytest11` entry point): the `nano_replay` fixture replays sessions in your tests.

    def test_bugfix_session_still_replays(nano_replay):
        report = nano_replay("cassettes/bugfix.yaml", ignore=["$.messages[0].content"])  # fails on divergence
        assert report.tool_calls == 3

`nano_replay(path, expect="identical", **overrides)` returns the `ReplayReport`; `expect=None` never fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def nano_replay() -> Callable[..., Any]:
    from nano_code.testing.api import replay

    def run(path: str | Path, expect: str | None = "identical", **overrides: Any) -> Any:
        report = replay(path, **overrides)
        if expect is not None and report.status != expect:
            detail = report.divergence.render() if report.divergence else report.error
            from nano_code.adapters.safe_text import for_terminal  # the file's text is data

            message = for_terminal(f"{path}: expected {expect}, got {report.status}: {detail}")
            pytest.fail(message, pytrace=False)
        return report

    return run
