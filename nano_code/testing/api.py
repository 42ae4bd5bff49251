"""Replaying and reading sessions from Python.

    from nano_code.testing import replay, load_session
    report = replay("cassettes/bugfix.yaml", ignore=["$..id"])
    if report.status != "identical":
        print(report.divergence.render())

`replay` takes the keyword arguments of
`nano_code.session.replay.replay_session`: `ignore` (JSONPath masks),
`config_overrides` (e.g. `{"max_steps": 3}` to try a different budget),
`live_tools`, `rebless_to`, `fork_at`/`fork_to`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nano_code.adapters.session_file import SessionFile, load_session
from nano_code.session.replay import ReplayReport, replay_session


def replay(path: str | Path, **overrides: Any) -> ReplayReport:
    """Replay one recorded session strictly and offline; see `ReplayReport`."""
    return replay_session(path, **overrides)


__all__ = ["ReplayReport", "SessionFile", "load_session", "replay"]
