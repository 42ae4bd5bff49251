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
from nano_code.kernel.state import State, initial_state
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
    from nano_code.adapters.approval_prompt import refuse_without_terminal
    from nano_code.adapters.config import Settings
    from nano_code.adapters.process_groups import kill_left_running
    from nano_code.adapters.provenance import provenance
    from nano_code.adapters.secrets import Redactor
    from nano_code.session.factory import live_session, open_recorder
    from nano_code.session.settings import kernel_config, read_agents_md, recorded_settings

    root = Path(workspace).resolve()
    recording = Path(record_to) if record_to is not None else None
    settings = Settings(
        api_key=api_key,
        base_url=base_url.rstrip("/"),
        model=model,
        max_steps=max_steps,
        stream=stream,
        auto_approve=approve_all,
    )
    agents_md = read_agents_md(root)
    recorded = recorded_settings(settings, root, stream)
    config = kernel_config(recorded, agents_md)
    recorder = None
    if recording is not None:
        metadata = provenance(config, recorded.to_json(), root, agents_md, origin="nano_code.testing")
        recorder = open_recorder(recording, metadata, Redactor(api_key))
    session = live_session(
        settings,
        initial_state(config),
        root,
        lambda action: refuse_without_terminal(action, lambda text: None),
        recorder=recorder,
        snapshot_beside=recording,
    )
    try:
        end = session.driver.run_turn(task)
    finally:
        kill_left_running()
        session.close()
    return RunResult(end.reason, session.driver.state, recording)


__all__ = ["ReplayReport", "RunResult", "SessionFile", "load_session", "replay", "run"]
