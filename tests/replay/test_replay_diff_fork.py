"""`nano-code diff A B` and `nano-code replay --fork-at N`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from message_text import text
from replay_helpers import (
    TASK,
    cli_env,
    record_cli,
    record_inproc,
    request_body,
    run_cli,
    three_step_script,
)

from nano_code.adapters.session_file import load_session
from nano_code.cli.diff_cmd import diff_sessions
from nano_code.session.replay import replay_session
from nano_code.testing.fake_server import FakeServer, reply


def _record(path: Path, task: str = TASK, usage: dict[str, object] | None = None) -> Path:
    workspace = path.parent / (path.stem + "-ws")
    workspace.mkdir()
    with FakeServer(three_step_script(usage=usage)) as server:
        record_inproc(path, workspace, server.base_url, [task])
    return path


def _diff_cli(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    env = cli_env("http://127.0.0.1:9/v1", tmp_path / "home")
    as_json = run_cli(["diff", "--json", *args], tmp_path, env)
    human = run_cli(["diff", *args], tmp_path, env)
    assert as_json.returncode == human.returncode
    return as_json.returncode, json.loads(as_json.stdout), human.stdout


def test_diff_different_task_text(tmp_path: Path) -> None:
    a = _record(tmp_path / "a.yaml", TASK)
    b = _record(tmp_path / "b.yaml", TASK + "!")
    code, result, human = _diff_cli(tmp_path, str(a), str(b))
    assert code == 1
    assert result["identical"] is False
    assert result["identical_prefix"] == 0
    first = result["first_divergence"]
    assert isinstance(first, dict)
    assert first["step"] == 1
    assert first["a"]["kind"] == first["b"]["kind"] == "UserInput"
    assert first["differences"] == [{"path": "$.event.text", "a": TASK, "b": TASK + "!"}]
    assert "identical prefix: 0 steps" in human
    assert "first divergence at step 1" in human and "$.event.text" in human


def test_diff_same_script_is_identical_once_volatile_parts_are_masked(tmp_path: Path) -> None:
    a = _record(tmp_path / "a.yaml")
    b = _record(tmp_path / "b.yaml")
    # Recorded in different directories: only the workspace line of the system prompt differs.
    raw = diff_sessions(str(a), str(b))
    # the user input matches; the first model call does not: no step is identical
    assert raw["identical"] is False and raw["identical_prefix"] == 0
    assert raw["first_divergence"]["step"] == 1
    # paths are spelled as for `replay --ignore`: from the request body's root
    assert {d["path"] for d in raw["first_divergence"]["differences"]} == {"$.messages[0].content"}

    code, result, human = _diff_cli(tmp_path, "--ignore", "$.messages[0].content", str(a), str(b))
    assert code == 0, result
    assert result["identical"] is True and result["first_divergence"] is None
    assert result["steps"] == [3, 3]  # model calls, as replay counts them
    assert result["records"] == [6, 6]  # input, 3 model calls, 2 tool results
    assert result["identical_prefix"] == 3
    assert "(3 steps)" in human
    # the older spelling, from the whole step, still works
    assert diff_sessions(str(a), str(b), ["$.request.messages[0].content"])["identical"] is True
    assert result["tokens_delta"] == 0
    assert "the sessions are identical" in human

    assert diff_sessions(str(a), str(a))["identical"] is True


def test_diff_reports_token_and_cost_deltas(tmp_path: Path) -> None:
    cheap = _record(
        tmp_path / "cheap.yaml", usage={"prompt_tokens": 100, "completion_tokens": 20, "cost": 0.001}
    )
    dear = _record(
        tmp_path / "dear.yaml", usage={"prompt_tokens": 200, "completion_tokens": 50, "cost": 0.003}
    )
    code, result, human = _diff_cli(tmp_path, "--ignore", "$..messages[0].content", str(cheap), str(dear))
    assert result["tokens"] == [360, 750] and result["tokens_delta"] == 390
    assert result["cost_delta"] == pytest.approx(0.006)
    assert "tokens: 360 -> 750 (+390)" in human
    assert "cost: +0.0060 USD" in human
    # the replies' usage differs, so the sessions are not identical
    assert code == 1 and result["first_divergence"]["step"] == 1
    assert result["cost_delta"] == 0.006  # exactly, not 0.006000000000000001
    assert {d["path"] for d in result["first_divergence"]["differences"]} >= {
        "$.reply.usage.prompt_tokens",
        "$.reply.usage.cost",
    }


def test_diff_when_one_session_goes_on(tmp_path: Path) -> None:
    short = tmp_path / "short.yaml"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with FakeServer([reply(content="one")]) as server:
        record_inproc(short, workspace, server.base_url, ["hi"])
    longer = tmp_path / "longer.yaml"
    with FakeServer([reply(content="one"), reply(content="two")]) as server:
        record_inproc(longer, workspace, server.base_url, ["hi", "again"])
    result = diff_sessions(str(short), str(longer))
    assert result["identical"] is False and result["identical_prefix"] == 1
    assert result["first_divergence"] == {
        "step": 2,  # the second input leads into the second model call
        "only_in": "b",
        "kind": "UserInput",
        "line": result["first_divergence"]["line"],
        "differences": [],
    }


def test_fork_at_replays_then_continues_live(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, three_step_script())
    parent_id = load_session(session).metadata["session_id"]

    here = tmp_path / "fork-ws"
    here.mkdir()
    second = [
        reply(tool_calls=[("shell", {"command": "echo live-tool"})]),
        reply(content="a different ending"),
    ]
    with FakeServer(second) as server:
        env = cli_env("http://127.0.0.1:9/v1", tmp_path / "home")
        done = run_cli(
            ["replay", str(session), "--fork-at", "1", "--base-url", server.base_url, "--yes"], here, env
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(server.requests) == 2
        # The live continuation starts from the replayed state: step 1 and its tool result.
        messages = server.requests[0]["body"]["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
        assert text(messages[3]).startswith("Wrote 18 bytes")
    fork = session.with_suffix(".fork1.yaml")
    assert "forked ->" in done.stdout and str(fork) in done.stdout
    assert "a different ending" in done.stdout
    assert not (here / "hello.py").exists()  # step 1's tool was served, not run

    forked = load_session(fork)
    assert forked.metadata["parent"] == {"path": str(session), "session_id": parent_id, "fork_at": 1}
    assert forked.metadata["origin"] == "fork"
    assert forked.metadata["session_id"] != parent_id
    assert len(forked.interactions) == 3
    assert request_body(forked.interactions[0]) == request_body(load_session(session).interactions[0])
    outputs = [
        j["event"]["output"] for j in forked.journal if (j.get("event") or {}).get("type") == "ToolResult"
    ]
    assert outputs[1] == "live-tool\n"

    report = replay_session(fork)
    assert report.status == "identical", report.divergence.render() if report.divergence else report.error
    assert (report.steps, report.tool_calls) == (3, 2)
    offline = run_cli(["replay", str(fork)], tmp_path, cli_env("http://127.0.0.1:9/v1", tmp_path / "home"))
    assert offline.returncode == 0, offline.stdout + offline.stderr


def test_fork_of_a_yes_session_does_not_run_tools_unasked(tmp_path: Path, workspace: Path) -> None:
    """Item 2 of the trust-boundary issue: a session recorded with --yes forks into a live
    part whose approval comes from this command line (no --yes, no terminal: refused)."""
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, three_step_script())  # recorded with --yes
    assert load_session(session).metadata["settings"]["auto_approve"] is True
    here = tmp_path / "fork-ws"
    here.mkdir()
    second = [
        reply(tool_calls=[("shell", {"command": "touch pwned"})]),
        reply(content="done"),
    ]
    with FakeServer(second) as server:
        env = cli_env("http://127.0.0.1:9/v1", tmp_path / "home")
        done = run_cli(["replay", str(session), "--fork-at", "1", "--base-url", server.base_url], here, env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(server.requests) == 2
        told = server.requests[1]["body"]["messages"][-1]
    assert not (here / "pwned").exists()
    assert told["role"] == "tool" and "not run" in text(told).lower()
    assert "refused shell" in done.stderr
    fork = load_session(session.with_suffix(".fork1.yaml"))
    assert {"approval_mode": "ask", "sandbox": "off"} in [
        {k: v for k, v in j.items() if k != "t_ms"} for j in fork.journal
    ]
    report = replay_session(session.with_suffix(".fork1.yaml"))
    assert report.status == "identical", report.divergence.render() if report.divergence else report.error
