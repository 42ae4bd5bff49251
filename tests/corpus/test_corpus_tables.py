"""Corpus tables (`nano_code.session.corpus`): sessions recorded with `nano_code.testing.run`
against the fake server, and the shipped cassettes, read back as rows with the right numbers."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from nano_code.adapters.config import Settings
from nano_code.adapters.session_file import SessionFileError, load_session
from nano_code.kernel.actions import TurnEnd
from nano_code.kernel.types import ApprovalMode
from nano_code.session.corpus import (
    SESSION_COLUMNS,
    STEP_COLUMNS,
    TOOL_CALL_COLUMNS,
    SessionTables,
    session_tables,
    settings_hash,
)
from nano_code.session.corpus_files import corpus_tables, table_for, write_table
from nano_code.session.replay import replay_session
from nano_code.testing import FakeServer, http_error, replay, reply, run

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
TASK = "make the tests pass"
COSTS = (0.0046, 0.0049, 0.0177)
"""Their float sum is 0.027200000000000002; the tables must say 0.0272."""


def usage(prompt: int, completion: int, cost: float) -> dict[str, Any]:
    """Half the prompt read from the cache and a tenth written to it, as OpenRouter reports them."""
    details = {"cached_tokens": prompt // 2, "cache_write_tokens": prompt // 10}
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost": cost,
        "prompt_tokens_details": details,
    }


def work_script() -> list[dict[str, Any]]:
    return [
        reply(tool_calls=[("shell", {"command": "exit 3"})], usage=usage(100, 10, COSTS[0])),
        reply(
            tool_calls=[("read_file", {"path": "missing.txt"}), ("shell", {"command": "echo fixed"})],
            usage=usage(200, 20, COSTS[1]),
        ),
        reply(content="Fixed.", usage=usage(300, 30, COSTS[2])),
    ]


def record(
    path: Path, workspace: Path, script: list[dict[str, Any]], task: str = TASK, **options: Any
) -> TurnEnd:
    workspace.mkdir(exist_ok=True)
    with FakeServer(script) as server:
        result = run(task, base_url=server.base_url, workspace=workspace, record_to=path, **options)
    return result.reason


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Sessions of every kind the tables describe, recorded once for this module."""
    root = tmp_path_factory.mktemp("corpus")
    paths = {name: root / f"{name}.yaml" for name in ("work", "retry", "denied", "budget")}
    assert record(paths["work"], root / "ws-work", work_script()) is TurnEnd.COMPLETED
    retry_script = [http_error(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}), reply("hi")]
    assert record(paths["retry"], root / "ws-retry", retry_script) is TurnEnd.COMPLETED
    denied_script = [reply(tool_calls=[("shell", {"command": "rm -rf build"})]), reply("Not allowed.")]
    assert record(paths["denied"], root / "ws-denied", denied_script, approve_all=False) is TurnEnd.COMPLETED
    budget_script = [reply(tool_calls=[("shell", {"command": "true"})])] * 2
    assert record(paths["budget"], root / "ws-budget", budget_script, max_steps=1) is TurnEnd.STEP_BUDGET
    # a fork of "work" at its second model call, whose live part answers differently
    (root / "ws-fork").mkdir()
    with FakeServer([reply("Forked answer.", usage=usage(400, 40, 0.01))]) as server:
        report = replay_session(
            paths["work"],
            fork_at=2,
            fork_to=root / "fork.yaml",
            live_settings=Settings(base_url=server.base_url),
            workspace=root / "ws-fork",
            approval=ApprovalMode.AUTO,
        )
    assert report.status == "forked", report
    paths["fork"] = root / "fork.yaml"
    return paths


def column(rows: tuple[dict[str, Any], ...], name: str) -> list[Any]:
    return [row[name] for row in rows]


def test_a_session_step_and_tool_call_rows(recorded: dict[str, Path]) -> None:
    tables = session_tables(recorded["work"])
    metadata = load_session(recorded["work"]).metadata
    session = tables.session
    assert list(session) == list(SESSION_COLUMNS)
    assert session["path"] == str(recorded["work"])
    assert session["session_id"] == metadata["session_id"] and len(session["session_id"]) == 32
    assert session["parent"] is session["parent_path"] is session["fork_at"] is None
    assert session["model"] == "fake/scripted-model"
    assert session["task"] == TASK and session["origin"] == "nano_code.testing"
    assert (session["n_turns"], session["n_steps"], session["n_tool_calls"]) == (1, 3, 3)
    assert (session["prompt_tokens"], session["completion_tokens"], session["total_tokens"]) == (600, 60, 660)
    assert session["cost"] == Decimal("0.0272")
    assert (session["cached_tokens"], session["cache_write_tokens"]) == (300, 60)
    assert session["outcome"] == "completed" and session["torn"] is False
    assert session["unreadable_records"] == 0
    assert session["replay"] is session["divergence"] is None
    assert session["duration_ms"] >= session["model_ms"] + session["tool_ms"] - 5
    assert session["tool_ms"] >= 0 and session["model_ms"] >= 0

    steps = tables.steps
    assert all(list(row) == list(STEP_COLUMNS) for row in steps)
    assert column(steps, "step") == [1, 2, 3]
    assert column(steps, "turn") == [1, 1, 1]
    assert column(steps, "turn_step") == [1, 2, 3]
    assert column(steps, "attempt") == [1, 1, 1]
    assert column(steps, "status") == [200, 200, 200]
    assert column(steps, "outcome") == ["tool_calls", "tool_calls", "answer"]
    assert column(steps, "finish_reason") == ["tool_calls", "tool_calls", "stop"]
    assert column(steps, "n_tool_calls") == [1, 2, 0]
    assert column(steps, "prompt_tokens") == [100, 200, 300]
    assert column(steps, "total_tokens") == [110, 220, 330]
    assert column(steps, "cached_tokens") == [50, 100, 150]
    assert column(steps, "cache_write_tokens") == [10, 20, 30]
    assert column(steps, "cost") == [Decimal(repr(c)) for c in COSTS]
    assert column(steps, "turn_end") == [None, None, "completed"]
    assert all(isinstance(row["duration_ms"], int) and isinstance(row["t_ms"], int) for row in steps)
    assert column(steps, "model") == ["fake/scripted-model"] * 3

    calls = tables.tool_calls
    assert all(list(row) == list(TOOL_CALL_COLUMNS) for row in calls)
    assert column(calls, "tool") == ["shell", "read_file", "shell"]
    assert column(calls, "step") == [1, 2, 2]
    assert column(calls, "call_id") == ["call_0_0", "call_1_0", "call_1_1"]
    assert [json.loads(a) for a in column(calls, "arguments")] == [
        {"command": "exit 3"},
        {"path": "missing.txt"},
        {"command": "echo fixed"},
    ]
    assert column(calls, "outcome") == ["nonzero_exit", "error", "ok"]
    assert column(calls, "exit_status") == [3, None, 0]
    assert column(calls, "is_error") == [False, True, False]
    assert column(calls, "output_chars")[2] == len("fixed\n")
    assert all(isinstance(d, int) for d in column(calls, "duration_ms"))
    assert sum(column(calls, "duration_ms")) == session["tool_ms"]
    # auto-approved and without a path outside: neither asked nor checked
    assert column(calls, "approval") == [None, None, None]


def test_the_settings_hash_is_the_recorded_settings_hashed(recorded: dict[str, Path]) -> None:
    settings = load_session(recorded["work"]).metadata["settings"]
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(text.encode()).hexdigest()[:12]
    assert session_tables(recorded["work"]).session["settings_hash"] == expected
    assert settings_hash({"b": 1, "a": 2}) == settings_hash({"a": 2, "b": 1})
    assert settings_hash({"model": "x"}) != settings_hash({"model": "y"})
    assert settings_hash(None) == ""
    # different workspaces are different settings; the same ones share a hash
    hashes = {session_tables(p).session["settings_hash"] for p in recorded.values()}
    assert len(hashes) >= 4


def test_a_retried_call_is_a_step_of_its_own(recorded: dict[str, Path]) -> None:
    tables = session_tables(recorded["retry"])
    steps = tables.steps
    assert column(steps, "step") == [1, 2]
    assert column(steps, "turn_step") == [1, 1]
    assert column(steps, "attempt") == [1, 2]
    assert column(steps, "status") == [429, 200]
    assert column(steps, "outcome") == ["rate_limit", "answer"]
    assert "slow down" in steps[0]["detail"]
    assert steps[0]["prompt_tokens"] is None and steps[0]["cost"] is None
    assert tables.session["n_steps"] == 2 and tables.session["total_tokens"] == 120
    assert tables.session["cost"] is None  # the server reported none


def test_a_denied_call(recorded: dict[str, Path]) -> None:
    tables = session_tables(recorded["denied"])
    (call,) = tables.tool_calls
    assert (call["tool"], call["approval"], call["outcome"]) == ("shell", "deny", "denied")
    assert call["exit_status"] is None and call["duration_ms"] is None


def test_a_turn_that_ran_out_of_steps(recorded: dict[str, Path]) -> None:
    tables = session_tables(recorded["budget"])
    assert tables.session["outcome"] == "step_budget"
    assert tables.steps[-1]["turn_end"] == "step_budget"


def test_a_fork_names_its_parent(recorded: dict[str, Path]) -> None:
    parent = session_tables(recorded["work"]).session
    fork = session_tables(recorded["fork"])
    assert fork.session["parent"] == parent["session_id"]
    assert fork.session["parent_path"] == str(recorded["work"])
    assert fork.session["fork_at"] == 2
    assert fork.session["session_id"] != parent["session_id"]
    assert column(fork.steps, "cost") == [Decimal("0.0046"), Decimal("0.0049"), Decimal("0.01")]
    assert fork.session["cost"] == Decimal("0.0195")
    assert fork.steps[-1]["outcome"] == "answer"


def edit_line(path: Path, index: int, change: Callable[[dict[str, Any]], None]) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    prefix = "#nc " if lines[index].startswith("#nc ") else "- "
    data = json.loads(lines[index][len(prefix) :])
    change(data)
    lines[index] = prefix + json.dumps(data, ensure_ascii=False) + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def line_index(path: Path, predicate: Callable[[str], bool]) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()) if predicate(line))


def test_a_replay_report_fills_the_divergence_columns(recorded: dict[str, Path], tmp_path: Path) -> None:
    identical = session_tables(recorded["work"], replay(recorded["work"]))
    assert identical.session["replay"] == "identical" and identical.session["divergence"] is None

    changed_request = tmp_path / "changed-request.yaml"
    shutil.copy(recorded["work"], changed_request)
    first = line_index(changed_request, lambda line: line.startswith("- "))

    def shout(data: dict[str, Any]) -> None:
        data["request"]["body"] = data["request"]["body"].replace(TASK, TASK.upper())

    edit_line(changed_request, first, shout)
    report = replay(changed_request)
    assert report.status == "diverged"
    tables = session_tables(changed_request, report)
    assert tables.session["replay"] == "diverged"
    assert tables.session["divergence"].startswith(f"diverged at step 1 (line {first + 1}): request")
    assert column(tables.steps, "divergence") == [tables.session["divergence"], None, None]

    changed_call = tmp_path / "changed-call.yaml"
    shutil.copy(recorded["work"], changed_call)
    result = line_index(changed_call, lambda line: line.startswith("#nc ") and '"read_file"' in line)

    def other_file(data: dict[str, Any]) -> None:
        data["call"]["arguments"]["path"] = "other.txt"

    edit_line(changed_call, result, other_file)
    report = replay(changed_call)
    assert report.status == "diverged" and report.divergence is not None
    assert report.divergence.what == "tool call"
    tables = session_tables(changed_call, report)
    assert column(tables.steps, "divergence") == [None, None, None]
    assert column(tables.tool_calls, "divergence") == [None, tables.session["divergence"], None]

    broken = tmp_path / "unreadable.yaml"
    broken.write_text("not a session\n", encoding="utf-8")
    report = replay(broken)
    tables_of_other = session_tables(recorded["work"], report)  # a report is taken as given
    assert tables_of_other.session["replay"] == "error"
    assert tables_of_other.session["divergence"].startswith("error: ")


def test_a_torn_file_and_an_unreadable_record(recorded: dict[str, Path], tmp_path: Path) -> None:
    torn = tmp_path / "torn.yaml"
    text = recorded["work"].read_text(encoding="utf-8")
    torn.write_text(text[: text.rindex("#nc ") + 20], encoding="utf-8")  # killed writing the turn end
    tables = session_tables(torn)
    assert tables.session["torn"] is True
    assert tables.session["outcome"] == "unfinished"
    assert tables.session["n_steps"] == 3 and tables.steps[-1]["turn_end"] is None

    odd = tmp_path / "odd.yaml"
    lines = text.splitlines(keepends=True)
    lines.insert(-1, '#nc {"from_the_future": 1, "t_ms": 1}\n')
    odd.write_text("".join(lines), encoding="utf-8")
    tables = session_tables(odd)
    assert tables.session["unreadable_records"] == 1
    assert tables.session["outcome"] == "completed" and tables.session["n_steps"] == 3


def test_the_shipped_cassettes() -> None:
    paths = sorted(CASSETTES.glob("*.yaml"))
    assert len(paths) >= 3
    for tables in corpus_tables(paths):
        session = load_session(tables.session["path"])
        tokens, cost = session.totals()
        assert tables.session["total_tokens"] == tokens
        assert tables.session["cost"] == Decimal(repr(round(cost, 10))) if cost is not None else True
        assert tables.session["n_steps"] == session.interaction_count
        assert tables.session["outcome"] == "completed"
        assert tables.session["settings_hash"] == settings_hash(session.metadata["settings"])

    bugfix = session_tables(CASSETTES / "bugfix.yaml")
    assert bugfix.session["cost"] == Decimal("0.0272")  # the journal's sum says 0.027200000000000002
    assert column(bugfix.steps, "cost") == [
        Decimal(c) for c in ("0.0046", "0.0049", "0.006", "0.0057", "0.006")
    ]
    assert column(bugfix.tool_calls, "outcome") == ["nonzero_exit", "ok", "ok", "ok"]
    assert column(bugfix.tool_calls, "tool") == ["shell", "read_file", "edit_file", "shell"]

    retried = session_tables(CASSETTES / "retry_interrupt.yaml")
    assert retried.session["n_turns"] == 2 and retried.session["cost"] == Decimal("0.0153")
    assert column(retried.steps, "outcome") == ["rate_limit", "tool_calls", "tool_calls", "answer"]
    assert column(retried.steps, "turn") == [1, 1, 2, 2]
    assert column(retried.steps, "turn_step") == [1, 1, 1, 2]
    assert column(retried.steps, "attempt") == [1, 2, 1, 1]
    assert column(retried.steps, "turn_end") == [None, "interrupted", None, "completed"]
    assert column(retried.tool_calls, "outcome") == ["interrupted", "ok"]
    assert retried.tool_calls[0]["duration_ms"] == 2706
    # the second turn was a new run (t_ms starts again): wall time adds both runs
    assert retried.session["duration_ms"] > 2911


def test_corpus_tables_skips_what_is_no_session(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("interactions: []\n", encoding="utf-8")
    paths = [CASSETTES / "bugfix.yaml", bad]
    with pytest.raises(SessionFileError):
        list(corpus_tables(paths))
    skipped: list[Path] = []
    read = list(corpus_tables(paths, on_error=lambda path, error: skipped.append(path)))
    assert [t.session["path"] for t in read] == [str(CASSETTES / "bugfix.yaml")]
    assert skipped == [bad]


# ------------------------------------------------------------------ writing the tables


def tables_of(paths: list[Path]) -> list[SessionTables]:
    return [session_tables(p) for p in paths]


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_csv_tables_are_private_and_exact(recorded: dict[str, Path], tmp_path: Path) -> None:
    sources = [recorded["work"], recorded["retry"], CASSETTES / "bugfix.yaml"]
    for name, columns, count in [
        ("sessions.csv", SESSION_COLUMNS, 3),
        ("steps.csv", STEP_COLUMNS, 3 + 2 + 5),
        ("tool_calls.csv", TOOL_CALL_COLUMNS, 3 + 0 + 4),
    ]:
        target = tmp_path / "out" / name
        assert write_table(tables_of(sources), target) == count
        assert target.stat().st_mode & 0o777 == 0o600
        text = target.read_text(encoding="utf-8")
        assert "0.0272000" not in text and "e-0" not in text
        with target.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert tuple(rows[0]) == columns and len(rows) == count
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o700
    with (tmp_path / "out" / "sessions.csv").open(newline="", encoding="utf-8") as handle:
        sessions = list(csv.DictReader(handle))
    assert [r["cost"] for r in sessions] == ["0.0272", "", "0.0272"]
    assert [r["torn"] for r in sessions] == ["false", "false", "false"]
    assert sessions[0]["parent"] == "" and sessions[0]["n_steps"] == "3"
    with (tmp_path / "out" / "steps.csv").open(newline="", encoding="utf-8") as handle:
        steps = list(csv.DictReader(handle))
    assert [r["cost"] for r in steps[:3]] == ["0.0046", "0.0049", "0.0177"]
    assert [r["outcome"] for r in steps[3:5]] == ["rate_limit", "answer"]


def test_jsonl_nests_each_sessions_steps_and_tool_calls(recorded: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "corpus.jsonl"
    assert write_table(tables_of([recorded["work"], recorded["fork"]]), target) == 2
    assert target.stat().st_mode & 0o777 == 0o600
    objects = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    work, fork = objects
    assert work["cost"] == 0.0272 and work["n_steps"] == 3
    assert [s["cost"] for s in work["steps"]] == list(COSTS)
    assert [s["step"] for s in work["steps"]] == [1, 2, 3]
    assert "path" not in work["steps"][0] and "session_id" not in work["tool_calls"][0]
    assert [c["step"] for c in work["tool_calls"]] == [1, 2, 2]
    assert fork["parent"] == work["session_id"] and fork["fork_at"] == 2
    assert "0.0272000" not in target.read_text(encoding="utf-8")


def test_the_table_comes_from_the_file_name(tmp_path: Path) -> None:
    assert table_for("sessions.csv") == "sessions"
    assert table_for("out/run1-steps.csv") == "steps"
    assert table_for("a.tool_calls.csv") == "tool_calls"
    assert table_for("anything.jsonl") == "jsonl"
    for bad in ("corpus.csv", "steps.tsv", "mysteps.csv", "sessions"):
        with pytest.raises(ValueError, match="name the file"):
            table_for(bad)


def test_an_existing_file_is_replaced_only_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "sessions.csv"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o644)
    with pytest.raises(FileExistsError):
        write_table(tables_of([CASSETTES / "bugfix.yaml"]), target)
    assert target.read_text(encoding="utf-8") == "old\n"
    assert write_table(tables_of([CASSETTES / "bugfix.yaml"]), target, overwrite=True) == 1
    assert target.read_text(encoding="utf-8").startswith("path,session_id,")
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path: Path) -> None:
    def failing() -> Iterator[SessionTables]:
        yield session_tables(CASSETTES / "bugfix.yaml")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_table(failing(), tmp_path / "steps.csv")
    assert list(tmp_path.iterdir()) == []
