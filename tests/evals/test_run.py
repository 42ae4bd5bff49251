"""`run_eval` against a scripted server: the samples, the tables, DIR's layout, replay, resuming,
refusals of a mismatched DIR, --max-cost, a hanging check, a failing server."""

from __future__ import annotations

import csv
import errno
import json
import pickle
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
from eval_helpers import COST_PER_REPLY, TaskModel, jsonl_rows, write_suite

from nano_code.adapters.config import Settings
from nano_code.adapters.session_file import load_session
from nano_code.cli.replay_cmd import replay_main
from nano_code.evals import (
    EvalError,
    EvalStopped,
    RunDirError,
    SampleRow,
    SampleSpec,
    load_suite,
    run_eval,
    run_sample,
)
from nano_code.evals.rundir import RunDir
from nano_code.evals.summary import SAMPLE_COLUMNS
from nano_code.testing.fake_server import FakeServer

GOOD, BAD = "m/good", "m/bad"


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_two_models_two_tasks_three_epochs(
    suite: Path, model: tuple[TaskModel, FakeServer], clean_cwd: Path, tmp_path: Path
) -> None:
    respond, server = model
    out = tmp_path / "out"
    result = run_eval(suite, [GOOD, BAD], 3, out, base_url=server.base_url, jobs=2)
    assert result.complete and result.ran == 12 and result.planned == 12 and result.stopped is None
    assert respond.begun == {GOOD: 6, BAD: 6}

    rows = {(r.task, r.model, r.epoch): r for r in result.samples}
    assert len(rows) == 12
    assert {r.outcome for k, r in rows.items() if k[1] == GOOD} == {"pass"}
    assert [rows["beta", BAD, e].outcome for e in (1, 2, 3)] == ["fail"] * 3
    assert rows["beta", BAD, 1].error.startswith("the check exited 1")
    assert all(r.steps == 2 and r.cost == pytest.approx(2 * COST_PER_REPLY) for r in rows.values())
    assert all(r.total_tokens == 220 and r.duration_s > 0 for r in rows.values())

    samples = csv_rows(out / "samples.csv")
    assert list(samples[0]) == list(SAMPLE_COLUMNS) and len(samples) == 12
    assert [(s["task"], s["model"], s["epoch"]) for s in samples[:3]] == [
        ("alpha", GOOD, str(e)) for e in (1, 2, 3)
    ]
    summary = {(s["task"], s["model"]): s for s in csv_rows(out / "summary.csv")}
    assert summary["beta", BAD]["passed"] == "0" and summary["beta", GOOD]["pass_rate"] == "1.0"
    assert summary["alpha", BAD]["n"] == "3" and "pass_at_3" in summary["alpha", BAD]
    (compare,) = csv_rows(out / "compare.csv")
    assert (compare["model_a"], compare["model_b"], compare["tasks"]) == (GOOD, BAD, "2")
    assert float(compare["difference"]) == pytest.approx(0.5)
    assert GOOD in result.report and BAD in result.report
    assert len(result.summary) == 4 and len(result.compare) == 1


def test_dir_layout_is_private_and_every_session_replays(
    suite: Path, model: tuple[TaskModel, FakeServer], clean_cwd: Path, tmp_path: Path
) -> None:
    _, server = model
    out = tmp_path / "out"
    result = run_eval(suite, [GOOD, "vendor/m:1"], 1, out, base_url=server.base_url, jobs=2)
    manifest = json.loads((out / "eval.json").read_text())
    assert manifest["tasks"] == ["alpha", "beta"] and manifest["models"] == [GOOD, "vendor/m:1"]
    assert manifest["epochs"] == 1 and manifest["settings"]["base_url"] == server.base_url
    for row in result.samples:
        session = out / row.session
        assert session.is_file() and session.name == f"epoch-{row.epoch}.yaml"
        assert stat.S_IMODE(session.stat().st_mode) == 0o600
        assert stat.S_IMODE(session.parent.stat().st_mode) == 0o700
        metadata = load_session(session).metadata
        assert metadata["eval"] == {"task": row.task, "epoch": row.epoch} and metadata["model"] == row.model
        assert metadata["origin"] == "eval"
    assert len({row.session for row in result.samples}) == 4
    assert stat.S_IMODE((out / "samples.jsonl").stat().st_mode) == 0o600
    assert replay_main(["-q", str(out)]) == 0


def test_the_same_command_runs_only_what_dir_lacks_and_epochs_may_grow(
    suite: Path, model: tuple[TaskModel, FakeServer], clean_cwd: Path, tmp_path: Path
) -> None:
    respond, server = model
    out = tmp_path / "out"
    run_eval(suite, [GOOD, BAD], 2, out, base_url=server.base_url, jobs=2)
    again = run_eval(suite, [GOOD, BAD], 2, out, base_url=server.base_url, jobs=2)
    assert again.ran == 0 and len(again.samples) == 8 and respond.begun == {GOOD: 4, BAD: 4}
    more = run_eval(suite, [GOOD, BAD], 3, out, base_url=server.base_url, jobs=2)
    assert more.ran == 4 and len(more.samples) == 12 and respond.begun == {GOOD: 6, BAD: 6}
    assert [row["epoch"] for row in jsonl_rows(out)[8:]] == [3, 3, 3, 3]
    assert json.loads((out / "eval.json").read_text())["epochs"] == 3
    keys = [(r["task"], r["model"], r["epoch"]) for r in jsonl_rows(out)]
    assert len(keys) == len(set(keys)) == 12


def test_a_dir_made_otherwise_is_refused(
    suite: Path, model: tuple[TaskModel, FakeServer], clean_cwd: Path, tmp_path: Path
) -> None:
    _, server = model
    out = tmp_path / "out"
    run_eval(suite, [GOOD], 2, out, base_url=server.base_url)
    before = (out / "samples.jsonl").read_bytes()
    refusals = {
        "models may not change": dict(models=[GOOD, BAD]),
        "max_steps 50 -> 7": dict(max_steps=7),
        "yes False -> True": dict(yes=True),
        "--epochs may grow, not shrink": dict(epochs=1),
    }
    for expected, change in refusals.items():
        arguments = {"models": [GOOD], "epochs": 2, "base_url": server.base_url, **change}
        with pytest.raises(RunDirError, match=expected.replace("(", r"\(")):
            run_eval(suite, arguments.pop("models"), arguments.pop("epochs"), out, **arguments)
    (suite.parent / "beta-files" / "seed.txt").write_text("changed\n")
    with pytest.raises(RunDirError, match="another suite"):
        run_eval(suite, [GOOD], 2, out, base_url=server.base_url)
    assert (out / "samples.jsonl").read_bytes() == before
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"is not empty and holds no eval\.json"):
        run_eval(suite, [GOOD], 1, tmp_path / "full", base_url=server.base_url)


def test_one_writer_per_dir(tmp_path: Path) -> None:
    with RunDir(tmp_path / "out"), pytest.raises(RunDirError, match=r"being written by process \d+"):
        RunDir(tmp_path / "out").__enter__()


def test_max_cost_stops_starting_samples_and_says_so(
    suite: Path, model: tuple[TaskModel, FakeServer], clean_cwd: Path, tmp_path: Path
) -> None:
    _, server = model
    out = tmp_path / "out"
    result = run_eval(suite, [GOOD], 5, out, base_url=server.base_url, max_cost=0.005)
    assert len(result.samples) == 3 and not result.complete  # 0.002 each: stops once 0.006 >= 0.005
    assert result.stopped is not None and "reached --max-cost $0.005" in result.stopped
    finished = run_eval(suite, [GOOD], 5, out, base_url=server.base_url, max_cost=1.0)
    assert finished.complete and finished.ran == 7 and finished.stopped is None


def test_a_hanging_check_is_killed_at_its_timeout(
    model: tuple[TaskModel, FakeServer], clean_cwd: Path, tmp_path: Path
) -> None:
    _, server = model
    body = '[[task]]\nid = "hang"\nprompt = "write hang"\ncheck = "sleep 60"\ntimeout = 0.5\n'
    result = run_eval(
        write_suite(tmp_path / "s", body), [GOOD], 1, tmp_path / "out", base_url=server.base_url
    )
    (row,) = result.samples
    assert row.outcome == "fail" and row.duration_s < 10
    assert row.error == "the check ran over its timeout of 0.5 s and was killed"


def test_a_failing_server_makes_an_error_sample_with_one_line(
    suite: Path, model: tuple[TaskModel, FakeServer], clean_cwd: Path, tmp_path: Path
) -> None:
    _, server = model
    out = tmp_path / "out"
    result = run_eval(suite, ["m/broken", GOOD], 1, out, base_url=server.base_url, jobs=2)
    broken = [r for r in result.samples if r.model == "m/broken"]
    assert [r.outcome for r in broken] == ["error", "error"]
    assert all("\n" not in r.error and "m/broken is not available" in r.error for r in broken)
    assert all((out / r.session).is_file() for r in broken)
    again = run_eval(suite, ["m/broken", GOOD], 1, out, base_url=server.base_url, retry_errors=True)
    assert again.ran == 2 and len(again.samples) == 4 and len(jsonl_rows(out)) == 4


def test_a_torn_last_row_is_dropped_and_its_sample_run_again(
    suite: Path, model: tuple[TaskModel, FakeServer], clean_cwd: Path, tmp_path: Path
) -> None:
    respond, server = model
    out = tmp_path / "out"
    run_eval(suite, [GOOD], 1, out, base_url=server.base_url)
    lines = (out / "samples.jsonl").read_bytes().splitlines(keepends=True)
    (out / "samples.jsonl").write_bytes(lines[0] + lines[1][:25])
    result = run_eval(suite, [GOOD], 1, out, base_url=server.base_url)
    assert result.ran == 1 and respond.begun == {GOOD: 3}
    assert len(jsonl_rows(out)) == 2


def test_bad_counts_are_refused_before_anything_runs(suite: Path, clean_cwd: Path, tmp_path: Path) -> None:
    for arguments, expected in [
        (dict(epochs=0), "--epochs must be"),
        (dict(jobs=0), "--jobs must be"),
        (dict(models=["a", "a"]), "given twice"),
        (dict(max_cost=-1.0), "--max-cost"),
        (dict(engine="nowhere"), "no engine named 'nowhere'"),
    ]:
        models = arguments.pop("models", ["a"])
        epochs = arguments.pop("epochs", 1)
        with pytest.raises(EvalError, match=expected):
            run_eval(suite, models, epochs, tmp_path / "out", base_url="http://127.0.0.1:9/v1", **arguments)
    assert not (tmp_path / "out" / "samples.jsonl").exists()


def test_a_full_disk_stops_the_run_with_one_line_and_keeps_the_finished_samples(
    suite: Path,
    model: tuple[TaskModel, FakeServer],
    clean_cwd: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, server = model
    out = tmp_path / "out"
    add = RunDir.add
    calls = []

    def add_until_full(self: RunDir, row: SampleRow, files: Sequence[tuple[str, bytes]]) -> None:
        calls.append(row)
        if len(calls) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        add(self, row, files)

    monkeypatch.setattr(RunDir, "add", add_until_full)
    with pytest.raises(EvalStopped) as stopped:
        run_eval(suite, [GOOD], 3, out, base_url=server.base_url)
    assert str(stopped.value) == (
        f"cannot write {out}: No space left on device; 2 finished sample(s) are kept; "
        "run the same command again to finish"
    )
    assert len(jsonl_rows(out)) == 2
    monkeypatch.setattr(RunDir, "add", add)
    assert run_eval(suite, [GOOD], 3, out, base_url=server.base_url).ran == 4


def test_one_sample_runs_from_a_picklable_spec_and_comes_back_as_bytes(
    suite: Path, model: tuple[TaskModel, FakeServer], clean_cwd: Path
) -> None:
    _, server = model
    task = load_suite(suite).tasks[1]
    settings = Settings(base_url=server.base_url, model="unused", home=clean_cwd / "home")
    spec = pickle.loads(pickle.dumps(SampleSpec(task, BAD, 2, settings, "sessions/beta/m/epoch-2.yaml")))
    result = pickle.loads(pickle.dumps(run_sample(spec)))
    assert result.row is not None and result.row.outcome == "fail" and result.row.model == BAD
    assert [name for name, _ in result.files] == [
        "sessions/beta/m/epoch-2.yaml",
        "sessions/beta/m/epoch-2.workspace.tar.gz",
    ]
    assert b"write beta" in result.files[0][1]
