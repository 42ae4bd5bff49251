"""K-sample forks: `nano-code replay S --fork-at N --samples K --check CMD`, end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from replay_helpers import cli_env, run_cli

from nano_code.adapters.session_file import load_session
from nano_code.session.intervals import wilson_interval
from nano_code.session.recording import response_event
from nano_code.session.replay import replay_session
from nano_code.session.samples import parting_step, spread
from nano_code.testing.fake_server import FakeServer, reply

SHIPPED = Path(__file__).resolve().parents[2] / "cassettes" / "stats_fix.yaml"
RIGHT = "return sum(values) / len(values)"
WRONG = "return sum(values) / (len(values) + 1)"


def one_fork(new_line: str, cost: float) -> list[dict[str, Any]]:
    """What the fake model does after the fork point: edit, run the test, answer."""
    usage = {"prompt_tokens": 1000, "completion_tokens": 50, "cost": cost}
    return [
        reply(
            tool_calls=[
                (
                    "edit_file",
                    {
                        "path": "stats.py",
                        "old_string": "return sum(values) / len(values) - 1",
                        "new_string": new_line,
                    },
                )
            ],
            usage=usage,
        ),
        reply(tool_calls=[("shell", {"command": "python3 test_stats.py"})], usage=usage),
        reply(content="done", usage=usage),
    ]


def sample_args(base_url: str, output: Path, samples: int, *extra: str) -> list[str]:
    """`replay` of the shipped session forked live at step 2 into `samples` forks, each
    checked by running its tests, the forks written under `output`."""
    return [
        "replay",
        str(SHIPPED),
        "--fork-at",
        "2",
        "--samples",
        str(samples),
        "--check",
        "python3 test_stats.py",
        "--yes",
        "--rerun-recorded",  # the recorded prefix and the parent's tools, re-run (the sandbox is off here)
        "--base-url",
        base_url,
        "--output",
        str(output),
        *extra,
    ]


def test_wilson_interval_matches_the_formula() -> None:
    low, high = wilson_interval(3, 5)
    assert (round(low, 4), round(high, 4)) == (0.2307, 0.8824)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert spread([1.0, 3.0]) == f"mean 2.0, sd {math.sqrt(2):,.1f}, 1.0-3.0"


def test_five_forks_of_a_shipped_session_in_isolated_workspaces(tmp_path: Path) -> None:
    script = []
    for index, line in enumerate([RIGHT, RIGHT, WRONG, RIGHT, WRONG]):
        script += one_fork(line, cost=0.001 * (index + 1))
    out = tmp_path / "forks"
    out.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with FakeServer(script) as server:
        env = cli_env(server.base_url, tmp_path / "home")
        done = run_cli(sample_args(server.base_url, out, 5, "--json"), cwd, env)
        assert done.returncode == 0, done.stdout + done.stderr
        # the live parts asked for nothing the recording had after step 2
        assert len(server.requests) == 15
    report = json.loads(done.stdout)
    assert [s["outcome"] for s in report["samples"]] == [True, True, False, True, False]
    assert (report["passed"], report["checked"]) == (3, 5)
    assert [round(x, 4) for x in report["wilson_95"]] == [0.2307, 0.8824]
    assert report["parting_step"] == 3  # the edit: right or wrong
    assert report["parent_outcome"] is True  # the recorded session fixed the bug
    assert [s["steps"] for s in report["samples"]] == [5] * 5
    # tokens: the recorded prefix's two replies plus the fork's three
    recorded = load_session(SHIPPED)
    prefix_tokens = 0
    for interaction in recorded.interactions[:2]:
        usage = response_event(interaction).usage
        assert usage is not None
        prefix_tokens += usage.total_tokens
    assert [s["tokens"] for s in report["samples"]] == [prefix_tokens + 3 * 1050] * 5
    workspaces = {s["workspace"] for s in report["samples"]}
    assert len(workspaces) == 5 and not any(w.startswith(str(cwd)) for w in workspaces)
    assert list(cwd.iterdir()) == []
    for sample in report["samples"]:
        child = load_session(Path(sample["child"]))
        assert child.metadata["parent"]["fork_at"] == 2
        assert child.metadata["parent"]["session_id"] == recorded.metadata["session_id"]
        assert replay_session(sample["child"]).status == "identical"
    assert parting_step([s["child"] for s in report["samples"]]) == 3


def test_the_table_for_people(tmp_path: Path) -> None:
    script = one_fork(RIGHT, 0.002) + one_fork(WRONG, 0.004)
    with FakeServer(script) as server:
        env = cli_env(server.base_url, tmp_path / "home")
        done = run_cli(sample_args(server.base_url, tmp_path, 2), tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout
    assert "2 forks of" in table and "at step 2" in table
    assert "outcome: 1/2 passed (50%; 95% interval 9%-91%, Wilson)" in table
    assert "the forks' actions first differ at: step 3" in table
    assert "the parent session's own outcome: passes" in table


@pytest.mark.parametrize(
    "extra",
    [["--samples", "2"], ["--fork-at", "2", "--check", "true"], ["--fork-at", "2", "--samples", "0"]],
)
def test_samples_need_a_fork_point_and_a_positive_count(tmp_path: Path, extra: list[str]) -> None:
    env = cli_env("http://127.0.0.1:9/v1", tmp_path / "home")
    done = run_cli(["replay", str(SHIPPED), *extra], tmp_path, env)
    assert done.returncode == 2
    assert "--samples K" in done.stderr


def test_forks_in_parallel_processes(tmp_path: Path) -> None:
    """--jobs 2: each fork in its own process; the model answers by what it is sent, in any order."""

    def respond(request: dict[str, Any], number: int) -> dict[str, Any]:
        last = request["messages"][-1]
        if last["role"] == "tool" and "def mean" in last["content"]:  # it has just read stats.py
            return one_fork(RIGHT, 0.001)[0]
        if last["role"] == "tool" and "Edited stats.py" in last["content"]:
            return one_fork(RIGHT, 0.001)[1]
        return one_fork(RIGHT, 0.001)[2]

    with FakeServer(respond) as server:
        env = cli_env(server.base_url, tmp_path / "home")
        done = run_cli(sample_args(server.base_url, tmp_path, 3, "--jobs", "2", "--json"), tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [s["outcome"] for s in report["samples"]] == [True, True, True]
    assert len({s["workspace"] for s in report["samples"]}) == 3
    assert report["parting_step"] is None  # all three acted alike
