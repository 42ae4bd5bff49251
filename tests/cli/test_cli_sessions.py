"""Recording from the executable: --record, --no-record, the default location, replay, sessions."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from cli_helpers import Agent

from nano_code.adapters.session_file import load_session
from nano_code.testing.fake_server import reply


def _task_script() -> list[dict[str, object]]:
    return [
        reply(tool_calls=[("write_file", {"path": "notes.md", "content": "# Notes\n"})]),
        reply(tool_calls=[("shell", {"command": "wc -l notes.md"})]),
        reply(content="notes.md has one line."),
    ]


def test_record_replay_and_plain_vcrpy(agent: Agent, tmp_path: Path) -> None:
    server = agent.serve(_task_script())
    cassette = tmp_path / "recorded" / "notes.yaml"
    cassette.parent.mkdir()
    result = agent.run("-p", "write notes.md and count its lines", "--yes", "--record", str(cassette))

    assert result.returncode == 0, result.stderr
    assert str(cassette) in result.stderr  # says where the session went
    assert agent.session_files() == []  # --record replaces the default location

    session = load_session(cassette)
    assert len(session.interactions) == len(server.requests) == 3
    assert any((r.get("event") or {}).get("type") == "UserInput" for r in session.journal)
    assert [r["turn_end"]["reason"] for r in session.journal if "turn_end" in r] == ["completed"]
    for interaction, request in zip(session.interactions, server.requests, strict=True):
        assert json.loads(interaction["request"]["body"]) == request["body"]

    plain = yaml.safe_load(cassette.read_text(encoding="utf-8"))
    assert plain["version"] == 1
    assert len(plain["interactions"]) == 3
    assert all(i["request"]["method"] == "POST" for i in plain["interactions"])
    assert all(i["response"]["status"]["code"] == 200 for i in plain["interactions"])

    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.serializers import yamlserializer

    loaded = FilesystemPersister.load_cassette(str(cassette), serializer=yamlserializer)
    requests, responses = loaded[0], loaded[1]
    assert len(requests) == len(responses) == 3
    assert requests[0].uri == f"{server.base_url}/chat/completions"

    replay = agent.run("replay", str(cassette))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "identical" in replay.stdout
    assert len(server.requests) == 3  # replay is offline: the server heard nothing more


def test_no_record_writes_nothing(agent: Agent) -> None:
    agent.serve([reply(content="not kept")])
    result = agent.run("-p", "hi", "--no-record")

    assert result.returncode == 0, result.stderr
    assert not agent.sessions_dir.exists() or list(agent.sessions_dir.iterdir()) == []
    assert "session recorded" not in result.stderr


def test_sessions_lists_a_recorded_session_with_its_first_task_line(agent: Agent) -> None:
    agent.serve([reply(content="done")])
    result = agent.run("-p", "tidy the changelog please\nand more detail on a second line")
    assert result.returncode == 0, result.stderr
    (path,) = agent.session_files()

    listing = agent.run("sessions")
    assert listing.returncode == 0, listing.stderr
    assert "tidy the changelog please" in listing.stdout
    assert "second line" not in listing.stdout
    assert str(path) in listing.stdout

    as_json = agent.run("sessions", "--json")
    assert as_json.returncode == 0, as_json.stderr
    (row,) = [json.loads(line) for line in as_json.stdout.splitlines() if line.strip()]
    assert row["task"] == "tidy the changelog please"
    assert row["path"] == str(path)
    assert row["steps"] == 1


def test_record_refuses_to_overwrite(agent: Agent, tmp_path: Path) -> None:
    server = agent.serve([reply(content="never sent")])
    existing = tmp_path / "keep.yaml"
    existing.write_text("precious\n")
    result = agent.run("-p", "hi", "--record", str(existing))

    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert existing.read_text() == "precious\n"
    assert server.requests == []


def test_resume_continues_the_recorded_conversation(agent: Agent, tmp_path: Path) -> None:
    server = agent.serve([reply(content="First answer."), reply(content="Second answer.")])
    cassette = tmp_path / "resume.yaml"
    first = agent.run("-p", "first question", "--record", str(cassette))
    assert first.returncode == 0, first.stderr

    second = agent.run("-p", "second question", "--resume", str(cassette))
    assert second.returncode == 0, second.stderr
    assert "Second answer." in second.stdout

    later = agent.bodies(server)[1]
    assert [m["role"] for m in later["messages"]] == ["system", "user", "assistant", "user"]
    assert later["messages"][2]["content"] == "First answer."
    assert later["messages"][0] == agent.bodies(server)[0]["messages"][0]
    session = load_session(cassette)
    assert len(session.interactions) == 2
    assert [r["turn_end"]["reason"] for r in session.journal if "turn_end" in r] == ["completed", "completed"]
    replay = agent.run("replay", str(cassette))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "identical" in replay.stdout


def test_diff_of_two_runs_shows_where_they_part(agent: Agent, tmp_path: Path) -> None:
    agent.serve([reply(content="same start"), reply(content="same start")])
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert agent.run("-p", "task one", "--record", str(a)).returncode == 0
    assert agent.run("-p", "task two", "--record", str(b)).returncode == 0

    same = agent.run("diff", str(a), str(a))
    assert same.returncode == 0, same.stderr
    assert "identical" in same.stdout
    different = agent.run("diff", str(a), str(b), "--json")
    assert different.returncode == 1, different.stderr
    report = json.loads(different.stdout)
    assert report["identical"] is False
    assert report["first_divergence"]["step"] == 1
