"""The one factory: live runs, `nano_code.testing.run`, replay and forks are wired by
`nano_code.session.factory`, and a fork hands the driver to a live performer once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from replay_helpers import TASK, record_inproc, three_step_script

from nano_code.adapters.config import Settings
from nano_code.adapters.live import LivePerformer
from nano_code.adapters.session_file import load_session
from nano_code.driver import Driver
from nano_code.kernel.actions import TurnEnd
from nano_code.kernel.types import ApprovalMode, ToolMessage
from nano_code.session import factory
from nano_code.session.performer import ReplayPerformer
from nano_code.session.replay import replay_session
from nano_code.testing import RunResult, replay, run
from nano_code.testing.fake_server import FakeServer


def test_testing_run_records_a_session_that_replays_identically(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with FakeServer(three_step_script()) as server:
        result = run(TASK, base_url=server.base_url, workspace=workspace, record_to=tmp_path / "s.yaml")
    assert isinstance(result, RunResult)
    assert result.reason is TurnEnd.COMPLETED
    assert (workspace / "hello.py").read_text() == "print('hi there')\n"
    assert result.recording == tmp_path / "s.yaml"
    session = load_session(tmp_path / "s.yaml")
    assert session.metadata["origin"] == "nano_code.testing"
    assert session.interaction_count == 3
    report = replay(tmp_path / "s.yaml")
    assert report.status == "identical", report
    assert (report.steps, report.tool_calls) == (3, 2)


def test_testing_run_without_approval_refuses_what_needs_it(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with FakeServer(three_step_script()) as server:
        result = run(TASK, base_url=server.base_url, workspace=workspace, approve_all=False)
    assert result.recording is None
    assert not (workspace / "hello.py").exists()
    refusals = [m for m in result.state.history if isinstance(m, ToolMessage) and "refused" in m.content]
    assert len(refusals) == 2


def test_live_session_wires_one_client_for_the_performer_and_the_recorder(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    seen: list[Any] = []
    with FakeServer(three_step_script()) as server:
        from nano_code.kernel.state import initial_state
        from nano_code.kernel.types import KernelConfig

        settings = Settings(base_url=server.base_url, auto_approve=True)
        config = KernelConfig(model="m", system_prompt="s", approval=ApprovalMode.AUTO)
        performer = factory.live_performer(
            settings, workspace, lambda action: pytest.fail("nothing asks"), exchange_sinks=[seen.append]
        )
        driver = Driver(initial_state(config), performer)
        try:
            driver.run_turn("hi")
        finally:
            performer.client.close()
    assert len(seen) == 3
    assert all(exchange.reply is not None and exchange.action is not None for exchange in seen)
    assert performer.tool_context.workspace == workspace


def test_a_fork_hands_the_driver_over_once_and_the_replayer_is_not_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = tmp_path / "parent.yaml"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with FakeServer(three_step_script()) as server:
        record_inproc(parent, workspace, server.base_url)
    handovers: list[Any] = []
    original = Driver.hand_over

    def counting(self: Driver, performer: Any) -> None:
        handovers.append(performer)
        original(self, performer)

    replayed_after_fork: list[str] = []
    for name in ("check_tool_call", "ask_approval", "run_tool"):
        method = getattr(ReplayPerformer, name)

        def watch(self: ReplayPerformer, action: Any, _method: Any = method, _name: str = name) -> Any:
            if self.forked:
                replayed_after_fork.append(_name)
            return _method(self, action)

        monkeypatch.setattr(ReplayPerformer, name, watch)
    monkeypatch.setattr(Driver, "hand_over", counting)
    fork_ws = tmp_path / "fork-ws"
    fork_ws.mkdir()
    with FakeServer(three_step_script(greeting="forked")[1:]) as server:
        report = replay_session(
            parent,
            fork_at=1,
            fork_to=tmp_path / "fork.yaml",
            live_settings=Settings(base_url=server.base_url),
            workspace=fork_ws,
            approval=ApprovalMode.AUTO,
        )
    assert report.status == "forked", report
    assert len(handovers) == 1 and isinstance(handovers[0], LivePerformer)
    assert handovers[0].tool_context.workspace == fork_ws.resolve()
    assert replayed_after_fork == []
    assert replay_session(tmp_path / "fork.yaml").status == "identical"


def test_fork_past_the_end_of_the_recording_is_an_error_not_identical(tmp_path: Path) -> None:
    parent = tmp_path / "parent.yaml"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with FakeServer(three_step_script()) as server:
        record_inproc(parent, workspace, server.base_url)
        report = replay_session(
            parent,
            fork_at=7,
            fork_to=tmp_path / "fork.yaml",
            live_settings=Settings(base_url=server.base_url),
            approval=ApprovalMode.AUTO,
        )
    assert report.status == "error"
    assert "--fork-at 7 is past the recording's end" in (report.error or "")
    assert "3 model call(s)" in (report.error or "")
    assert not (tmp_path / "fork.yaml").exists()


def test_a_recorded_session_snapshots_its_workspace_before_the_first_tool(tmp_path: Path) -> None:
    from nano_code.adapters.journal import SnapshotEntry
    from nano_code.adapters.snapshot import SnapshotInfo, archive_path
    from nano_code.adapters.snapshot_restore import restore

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "before.txt").write_text("there at the start\n")
    with FakeServer(three_step_script()) as server:
        run(TASK, base_url=server.base_url, workspace=workspace, record_to=tmp_path / "s.yaml")
    session = load_session(tmp_path / "s.yaml")
    (entry,) = list(session.readable_entries("workspace_snapshot"))
    assert isinstance(entry, SnapshotEntry)
    info = SnapshotInfo.from_json(entry.info)
    assert tmp_path / info.file == archive_path(tmp_path / "s.yaml")
    # it was taken before the tool wrote hello.py
    into = tmp_path / "restored"
    into.mkdir()
    restore(tmp_path / "s.yaml", info, into)
    assert sorted(p.name for p in into.iterdir()) == ["before.txt"]
    # the entry is bookkeeping: the session still replays
    assert replay(tmp_path / "s.yaml").status == "identical"


def test_the_snapshot_is_taken_while_the_model_thinks_about_the_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot starts as the first request is sent, so it is done while the server is
    still on that request."""
    import time
    import traceback

    started_from: list[list[str]] = []
    start = factory.WorkspaceSnapshot.start

    def watched_start(self: factory.WorkspaceSnapshot) -> None:
        started_from.append([frame.name for frame in traceback.extract_stack()])
        start(self)

    monkeypatch.setattr(factory.WorkspaceSnapshot, "start", watched_start)

    from nano_code.adapters.snapshot import archive_path

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("x\n")
    archive = archive_path(tmp_path / "s.yaml")
    script = three_step_script()
    seen_while_thinking: list[bool] = []

    def respond(body: Any, number: int) -> Any:
        if number == 0:
            deadline = time.monotonic() + 5
            while not archive.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_while_thinking.append(archive.exists())
        return script[number] if number < len(script) else None

    with FakeServer(respond) as server:
        run(TASK, base_url=server.base_url, workspace=workspace, record_to=tmp_path / "s.yaml")
    assert seen_while_thinking == [True]
    assert "call_model" in started_from[0]  # started with the first request
    assert replay(tmp_path / "s.yaml").status == "identical"


def test_without_a_thread_for_it_the_snapshot_is_taken_before_the_first_tool_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from nano_code.adapters.journal import SnapshotEntry

    class NoSnapshotThread(threading.Thread):
        def start(self) -> None:
            if self.name == "nano-code-snapshot":
                raise RuntimeError("can't start new thread")
            super().start()

    monkeypatch.setattr(threading, "Thread", NoSnapshotThread)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "before.txt").write_text("there at the start\n")
    with FakeServer(three_step_script()) as server:
        result = run(TASK, base_url=server.base_url, workspace=workspace, record_to=tmp_path / "s.yaml")
    assert result.reason is TurnEnd.COMPLETED
    (entry,) = list(load_session(tmp_path / "s.yaml").readable_entries("workspace_snapshot"))
    assert isinstance(entry, SnapshotEntry) and "error" not in entry.info
    assert replay(tmp_path / "s.yaml").status == "identical"
