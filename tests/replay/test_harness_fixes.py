"""The replay-harness bugs a researcher hit first (research harness II), one test each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from replay_helpers import (
    cli_env,
    fork_live,
    record_cli,
    record_inproc,
    record_lines,
    rewrite_line,
    run_cli,
    three_step_script,
)

from nano_code.adapters.journal import ModelChangeEntry
from nano_code.adapters.session_file import load_session
from nano_code.session.replay import replay_session
from nano_code.testing.fake_server import FakeServer, reply

SHIPPED = Path(__file__).resolve().parents[2] / "cassettes"


def test_fork_model_changes_only_the_live_part_and_the_fork_replays(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, three_step_script())
    recorded_model = load_session(session).metadata["model"]
    here = tmp_path / "fork-ws"
    here.mkdir()
    fork = tmp_path / "f.yaml"
    change = ("--model", "other/model", "--output", str(fork))
    with FakeServer(three_step_script()[1:]) as server:
        done = fork_live(session, server, here, tmp_path / "home", *change)
        assert done.returncode == 0, done.stdout + done.stderr
        bodies = [r["body"] for r in server.requests]
    # the replayed prefix kept the recorded model; the live part named the new one
    assert [body["model"] for body in bodies] == ["other/model", "other/model"]
    forked = load_session(fork)
    requests = [json.loads(body or "null") for body in forked.request_bodies()]
    assert [r["model"] for r in requests] == [recorded_model, "other/model", "other/model"]
    assert [e for e in forked.readable_entries("model_change")] == [ModelChangeEntry("other/model")]
    assert replay_session(fork).status == "identical"
    # a second run with the same --output says what to do about it
    again = fork_live(session, server, here, tmp_path / "home", *change)
    assert again.returncode == 2
    assert "exists; choose another --output, or remove it" in again.stderr


def test_a_torn_file_is_reported_as_torn(tmp_path: Path) -> None:
    torn = tmp_path / "torn.yaml"
    shutil.copy(SHIPPED / "bugfix.yaml", torn)
    text = torn.read_bytes()
    torn.write_bytes(text.rstrip(b"\n")[:-20])  # kill -9 in the middle of the last line
    done = run_cli(["replay", "-q", str(torn)], tmp_path, cli_env("http://127.0.0.1:9/v1", tmp_path / "home"))
    assert "last line was cut off while being written" in done.stdout
    report = replay_session(torn)
    assert report.torn is True
    assert replay_session(SHIPPED / "bugfix.yaml").torn is False


def test_a_mask_that_hides_nothing_is_named(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9/v1", tmp_path / "home")
    done = run_cli(
        ["replay", "-q", str(SHIPPED / "bugfix.yaml"), "--ignore", "$.no_such_field"], tmp_path, env
    )
    assert done.returncode == 0
    assert "--ignore $.no_such_field hid nothing" in done.stdout
    report = replay_session(SHIPPED / "bugfix.yaml", ignore=["$.no_such_field"])
    assert report.unused_masks == ("$.no_such_field",)


def test_json_report_costs_are_exact(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "s.yaml"
    usage = {"prompt_tokens": 100, "completion_tokens": 20, "cost": 0.0068}
    with FakeServer(three_step_script(usage=usage) + three_step_script(usage=usage)) as server:
        record_inproc(session, workspace, server.base_url, ["one", "two"])
    done = run_cli(
        ["replay", "--json", str(session)], tmp_path, cli_env("http://127.0.0.1:9/v1", tmp_path / "home")
    )
    report = json.loads(done.stdout)
    assert 6 * 0.0068 != 0.0408  # the float sum is not exact ...
    assert report["usage"]["cost"] == 0.0408  # ... the report is
    assert '"cost": 0.0408' in done.stdout


def test_a_retry_delay_divergence_is_numbered_as_the_call_it_retries(tmp_path: Path) -> None:
    session = tmp_path / "retry.yaml"
    shutil.copy(SHIPPED / "retry_interrupt.yaml", session)
    (index,) = [i for i, kind, data in record_lines(session) if kind == "journal" and "retry" in data]
    calls_before = sum(1 for i, kind, _ in record_lines(session) if kind == "interaction" and i < index)

    def slower(data: dict[str, object]) -> None:
        retry = data["retry"]
        assert isinstance(retry, dict)
        retry["delay"] = 7.5

    rewrite_line(session, index, slower)
    report = replay_session(session)
    assert report.status == "diverged" and report.divergence is not None
    assert report.divergence.what == "retry delay"
    # the retry follows the failed request: it retries that call, not a new step
    assert report.divergence.step == calls_before
    assert "retry 1 of this step" in report.divergence.summary


def test_a_fork_runs_in_a_restored_workspace_and_leaves_the_users_alone(
    tmp_path: Path, workspace: Path
) -> None:
    (workspace / "notes.txt").write_text("from the start\n")
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, three_step_script())
    (workspace / "hello.py").write_text("print('changed since')\n")  # the user's copy moves on
    here = tmp_path / "cwd"
    here.mkdir()
    with FakeServer(three_step_script(greeting="forked")[1:]) as server:
        done = fork_live(session, server, here, tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    ran_in = Path(done.stdout.split("tools ran in ", 1)[1].split()[0])
    assert ran_in not in (workspace, here)
    # the restored workspace had the recorded files, the prefix's write re-run, the live part's run
    assert (ran_in / "notes.txt").read_text() == "from the start\n"
    assert (ran_in / "hello.py").read_text() == "print('hi there')\n"
    forked = load_session(session.with_suffix(".fork1.yaml"))
    outputs = [e.event.output for e in forked.readable_entries("event") if hasattr(e.event, "output")]
    assert outputs[-1].startswith("hi there")
    assert forked.metadata["workspace"]["path"] == str(ran_in)  # provenance names where it ran
    assert list(here.iterdir()) == []
    assert (workspace / "hello.py").read_text() == "print('changed since')\n"


def test_a_fork_of_a_session_without_a_snapshot_asks_for_a_workspace(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9/v1", tmp_path / "home")
    args = ["replay", str(SHIPPED / "bugfix.yaml"), "--fork-at", "1", "--output", str(tmp_path / "f.yaml")]
    done = run_cli(args, tmp_path, env)
    assert done.returncode == 1
    assert "has no workspace snapshot" in done.stdout + done.stderr
    assert "--workspace DIR" in done.stdout + done.stderr
    assert not (tmp_path / "f.yaml").exists()


def test_fork_temperature_and_seed_reach_only_the_live_part_and_are_journalled(
    tmp_path: Path, workspace: Path
) -> None:
    from nano_code.adapters.journal import SamplingChangeEntry

    session = tmp_path / "s.yaml"
    record_cli(session, workspace, three_step_script())
    with FakeServer(three_step_script()[1:]) as server:
        done = fork_live(session, server, tmp_path, tmp_path / "home", "--temperature", "0.5", "--seed", "7")
        assert done.returncode == 0, done.stdout + done.stderr
        bodies = [r["body"] for r in server.requests]
    assert [(b["temperature"], b["seed"]) for b in bodies] == [(0.5, 7), (0.5, 7)]
    fork = session.with_suffix(".fork1.yaml")
    first = json.loads(next(load_session(fork).request_bodies()) or "{}")
    assert "temperature" not in first and "seed" not in first  # the replayed prefix is unchanged
    assert list(load_session(fork).readable_entries("sampling_change")) == [SamplingChangeEntry(0.5, 7)]
    assert replay_session(fork).status == "identical"


def test_a_fork_carries_the_parents_snapshot_so_it_replays_with_live_tools(
    tmp_path: Path, workspace: Path
) -> None:
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, three_step_script())
    with FakeServer(three_step_script()[1:]) as server:
        assert fork_live(session, server, tmp_path, tmp_path / "home").returncode == 0
    fork = session.with_suffix(".fork1.yaml")
    assert (tmp_path / "s.fork1.workspace.tar.gz").exists()
    again = run_cli(
        ["replay", "--live-tools", "--rerun-recorded", str(fork)],
        tmp_path,
        cli_env("http://127.0.0.1:9/v1", tmp_path / "home"),
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "identical" in again.stdout


def test_flags_for_a_live_part_need_a_fork(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9/v1", tmp_path / "home")
    for extra in (["--model", "m"], ["--seed", "3"], ["--temperature", "0.2"], ["--workspace", "."]):
        done = run_cli(["replay", str(SHIPPED / "bugfix.yaml"), *extra], tmp_path, env)
        assert done.returncode == 2, (extra, done.stderr)
        assert "add --fork-at" in done.stderr or "add --live-tools" in done.stderr


def test_batch_live_tools_replays_leave_no_restored_copies(tmp_path: Path, workspace: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        record_cli(tmp_path / name, workspace, three_step_script())
    private_tmp = tmp_path / "tmp"  # the replay's own TMPDIR: other tests' forks never show up in it
    private_tmp.mkdir()
    done = run_cli(
        [
            "replay",
            "-q",
            "--live-tools",
            "--rerun-recorded",
            str(tmp_path / "a.yaml"),
            str(tmp_path / "b.yaml"),
        ],
        tmp_path,
        cli_env("http://127.0.0.1:9/v1", tmp_path / "home", TMPDIR=str(private_tmp)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(private_tmp.iterdir()) == []


def test_sampled_forks_keep_the_key_out_and_refuse_to_overwrite(tmp_path: Path) -> None:
    key = "sk-or-v1-" + "7" * 40
    stats = SHIPPED / "stats_fix.yaml"

    def respond(request: dict[str, Any], number: int) -> dict[str, Any]:
        return reply(content=f"done; the key was {key}")

    with FakeServer(respond) as server:
        env = cli_env(server.base_url, tmp_path / "home", OPENROUTER_API_KEY=key)
        args = [
            "replay",
            str(stats),
            "--fork-at",
            "2",
            "--samples",
            "2",
            "--yes",
            "--base-url",
            server.base_url,
        ]
        done = run_cli([*args, "--output", str(tmp_path)], tmp_path, env)
        assert done.returncode == 0, done.stdout + done.stderr
        for child in tmp_path.glob("stats_fix.fork2.s*.yaml"):
            assert key not in child.read_text()
        again = run_cli([*args, "--output", str(tmp_path)], tmp_path, env)
    assert again.returncode == 2 and "exists; choose another --output directory" in again.stderr
