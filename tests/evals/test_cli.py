"""`nano-code eval` as a user runs it: the report, exit statuses, a kill -9 or Ctrl-C mid-run and
the same command again, and the progress line (on a terminal only)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eval_helpers import TaskModel, jsonl_rows, write_suite

from nano_code.cli.eval_cmd import ProgressLine, eval_main
from nano_code.evals import Progress, run_eval
from nano_code.testing.fake_server import FakeServer

GOOD, BAD = "m/good", "m/bad"


def eval_command(suite: Path, out: Path, url: str, *extra: str) -> list[str]:
    models = ["--model", GOOD, "--model", BAD]
    return [
        sys.executable,
        "-m",
        "nano_code",
        "eval",
        str(suite),
        *models,
        "--output",
        str(out),
        "--base-url",
        url,
        *extra,
    ]


def scratch_env(tmp_path: Path) -> dict[str, str]:
    """The environment with TMPDIR in the test's folder: what a killed run leaves there goes with it."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp_path / "tmp")}


def wait_for_rows(out: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "samples.jsonl").exists() and (out / "samples.jsonl").read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"no {count} rows in time (exit {process.poll()})")


def test_the_command_prints_the_report_and_names_the_tables(
    suite: Path,
    model: tuple[TaskModel, FakeServer],
    clean_cwd: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, server = model
    out = tmp_path / "out"
    arguments = eval_command(suite, out, server.base_url, "--epochs", "2", "--jobs", "2")[4:]
    assert eval_main(arguments) == 0
    captured = capsys.readouterr()
    assert GOOD in captured.out and BAD in captured.out
    assert f"tables: {out / 'samples.csv'}, {out / 'summary.csv'}, {out / 'compare.csv'}" in captured.err
    assert "\r" not in captured.err  # no progress line on a pipe


def test_exit_statuses_of_a_bad_suite_and_a_budget_stop(
    suite: Path,
    model: tuple[TaskModel, FakeServer],
    clean_cwd: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, server = model
    bad = write_suite(tmp_path / "bad", '[[task]]\nid = "x"\nprompt = "p"\n')
    assert eval_main([str(bad), "--model", GOOD, "--output", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "task 'x' (task 1): missing `check`" in err
    budget = [str(suite), "--model", GOOD, "--epochs", "3", "--output", str(tmp_path / "o2")]
    assert eval_main([*budget, "--base-url", server.base_url, "--max-cost", "0.001"]) == 1
    err = capsys.readouterr().err
    assert "stopped starting samples: the summed cost $0.0020 reached --max-cost $0.001" in err
    assert "1 of 6 samples are in" in err


def test_a_kill_9_loses_only_samples_in_flight_and_the_rerun_runs_only_the_missing(
    suite: Path, clean_cwd: Path, tmp_path: Path
) -> None:
    respond = TaskModel(delay=0.05)
    out = tmp_path / "out"
    with FakeServer(respond) as server:
        command = eval_command(suite, out, server.base_url, "--epochs", "3", "--jobs", "2")
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=scratch_env(tmp_path)
        )
        wait_for_rows(out, 3, process)
        process.send_signal(signal.SIGKILL)
        process.wait()
        text = (out / "samples.jsonl").read_bytes()
        whole = text[: text.rfind(b"\n") + 1]
        before = [json.loads(line) for line in whole.splitlines()]
        keys = {(row["task"], row["model"], row["epoch"]) for row in before}
        assert 3 <= len(before) < 12 and len(keys) == len(before)
        assert all((out / row["session"]).is_file() for row in before)
        begun = sum(respond.begun.values())
        result = run_eval(suite, [GOOD, BAD], 3, out, base_url=server.base_url, jobs=2)
    assert result.ran == 12 - len(before) and result.complete
    assert sum(respond.begun.values()) - begun == 12 - len(before)
    after = jsonl_rows(out)
    assert len(after) == 12 and len({(r["task"], r["model"], r["epoch"]) for r in after}) == 12
    assert after[: len(before)] == before


def test_ctrl_c_keeps_the_finished_samples_and_exits_130(
    suite: Path, clean_cwd: Path, tmp_path: Path
) -> None:
    respond = TaskModel(delay=0.1)
    out = tmp_path / "out"
    with FakeServer(respond) as server:
        command = eval_command(suite, out, server.base_url, "--epochs", "3", "--jobs", "2")
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=scratch_env(tmp_path)
        )
        wait_for_rows(out, 2, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    rows = jsonl_rows(out)
    assert 2 <= len(rows) < 12
    assert b"interrupted: " in stderr and b"the same command finishes the rest" in stderr
    assert (out / "samples.csv").read_text().count("\n") == len(rows) + 1
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_is_drawn_on_a_terminal_only() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        line = ProgressLine(stream)
        line.show(Progress(3, 12, 2, 0.0123, 75.0))
        line.clear()
    assert pipe.getvalue() == ""
    assert "eval: 3/12 samples · 2 passed · $0.0123 · about 1m15s left" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\x1b[K")
