"""Every session shipped in cassettes/ replays identically, offline, through the real driver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nano_code.adapters.session_file import load_session

CASSETTES = sorted((Path(__file__).resolve().parents[1] / "cassettes").glob("*.yaml"))


def test_there_are_at_least_three_shipped_sessions() -> None:
    assert len(CASSETTES) >= 3


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: p.name)
def test_shipped_session_replays_identically(path: Path, nano_replay: Any) -> None:
    report = nano_replay(path)
    assert report.steps >= 2
    assert report.tool_calls >= 1


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: p.name)
def test_shipped_session_says_where_its_replies_came_from(path: Path) -> None:
    metadata = load_session(path).metadata
    assert "not a real model" in metadata["origin"]
    assert metadata["server_host"] == "127.0.0.1"


def test_the_retry_session_holds_a_retry_and_an_interrupt() -> None:
    session = load_session(Path(__file__).resolve().parents[1] / "cassettes" / "retry_interrupt.yaml")
    journal = session.journal
    assert any("retry" in record for record in journal)
    assert any(record.get("event", {}).get("type") == "Interrupt" for record in journal)
    statuses = [i["response"]["status"]["code"] for i in session.interactions]
    assert statuses[0] == 429
