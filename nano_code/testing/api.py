"""Running, replaying and reading sessions from Python.

report = replay("cassettes/bugfix.yaml", ignore=["$..id"])   # keyword arguments of replay_session
with FakeServer([reply(content="done")]) as server:
    result = run("say done", base_url=server.base_url, workspace=tmp, record_to=tmp / "s.yaml")
"""

from __future__ import annotations

from pathlib import Path

import attrs

from nano_code.adapters.session_file import SessionFile, load_session
from nano_code.kernel.actions import TurnEnd
from nano_code.kernel.state import State
from nano_code.session.divergence import ReplayReport
from nano_code.session.replay import replay_session

replay = replay_session
"""Replay one recorded session strictly and offline; see `ReplayReport`."""


@attrs.frozen
class RunResult:
    """How a `run` ended: the turn's end, the kernel's final state, and the recording."""

    reason: TurnEnd
    state: State
    recording: Path | None


def run(
    task: str,
    *,
    base_url: str,
    workspace: str | Path,
    record_to: str | Path | None = None,
    model: str = "fake/scripted-model",
    approve_all: bool = True,
    max_steps: int = 50,
    stream: bool = False,
    api_key: str | None = None,
) -> RunResult:
    """One live turn of the real agent (built as a CLI run is) against `base_url`, its tools working
    in `workspace`, recorded to `record_to`; calls needing approval run only when `approve_all`."""
    from nano_code.adapters.config import Settings
    from nano_code.adapters.process_groups import kill_left_running
    from nano_code.evals.live_task import run_task_live

    settings = Settings(
        api_key=api_key,
        base_url=base_url.rstrip("/"),
        model=model,
        max_steps=max_steps,
        stream=stream,
        auto_approve=approve_all,
    )
    recording = Path(record_to) if record_to is not None else None
    try:
        done = run_task_live(
            task, settings, Path(workspace), sandbox=None, record_to=recording, origin="nano_code.testing"
        )
    finally:
        kill_left_running()
    return RunResult(done.end.reason, done.state, recording)


__all__ = ["ReplayReport", "RunResult", "SessionFile", "load_session", "replay", "run"]
