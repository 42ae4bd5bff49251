"""`nano-code export PATH... --to TABLE`: the corpus tables from the command line."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CASSETTES = PROJECT_ROOT / "cassettes"
EXECUTABLE = Path(sys.executable).parent / "nano-code"


def export(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANO_CODE_")}
    env["NANO_CODE_HOME"] = str(cwd / "home")
    return subprocess.run(
        [str(EXECUTABLE), "export", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A copy of the shipped cassettes, in a directory tree."""
    root = tmp_path / "runs"
    (root / "nested").mkdir(parents=True)
    shutil.copy(CASSETTES / "bugfix.yaml", root / "bugfix.yaml")
    shutil.copy(CASSETTES / "edit_run_fix.yaml", root / "nested" / "edit_run_fix.yaml")
    shutil.copy(CASSETTES / "retry_interrupt.yaml", root / "retry_interrupt.yaml")
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_each_table_from_a_directory(corpus: Path, tmp_path: Path) -> None:
    expected = {"sessions.csv": 3, "steps.csv": 5 + 5 + 4, "tool_calls.csv": 4 + 4 + 2}
    for name, count in expected.items():
        done = export("runs", "--to", f"out/{name}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"out/{name}: {count} row(s) of {name[:-4]} from 3 session(s)\n"
        target = tmp_path / "out" / name
        assert target.stat().st_mode & 0o777 == 0o600
        assert len(read_csv(target)) == count
    sessions = {Path(r["path"]).name: r for r in read_csv(tmp_path / "out" / "sessions.csv")}
    assert sessions["bugfix.yaml"]["cost"] == "0.0272"
    assert sessions["bugfix.yaml"]["n_steps"] == "5" and sessions["bugfix.yaml"]["outcome"] == "completed"
    assert sessions["retry_interrupt.yaml"]["n_turns"] == "2"
    assert sessions["edit_run_fix.yaml"]["path"] == "runs/nested/edit_run_fix.yaml"
    assert all(r["replay"] == "" and r["divergence"] == "" for r in sessions.values())

    done = export("runs", "--to", "out/corpus.jsonl", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "out/corpus.jsonl: 3 session(s), one JSON object each\n"
    objects = [json.loads(line) for line in (tmp_path / "out" / "corpus.jsonl").read_text().splitlines()]
    assert sorted(len(o["steps"]) for o in objects) == [4, 5, 5]


def test_replay_fills_the_replay_column(corpus: Path, tmp_path: Path) -> None:
    done = export("runs/bugfix.yaml", "runs/retry_interrupt.yaml", "--to", "s.csv", cwd=tmp_path)
    assert done.returncode == 2 and "name the file sessions.csv" in done.stderr
    done = export(
        "runs/bugfix.yaml", "runs/retry_interrupt.yaml", "--to", "sessions.csv", "--replay", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "sessions.csv")
    assert [r["replay"] for r in rows] == ["identical", "identical"]
    assert [r["divergence"] for r in rows] == ["", ""]


def test_what_is_refused(corpus: Path, tmp_path: Path) -> None:
    assert export("runs", "--to", "sessions.csv", cwd=tmp_path).returncode == 0
    again = export("runs", "--to", "sessions.csv", cwd=tmp_path)
    assert again.returncode == 2 and "exists; pass --force" in again.stderr
    assert export("runs", "--to", "sessions.csv", "--force", cwd=tmp_path).returncode == 0
    both = export("runs/bugfix.yaml", "--to", "steps.csv", "--full", cwd=tmp_path)
    assert both.returncode == 2 and "--to writes a table" in both.stderr
    many = export("runs/bugfix.yaml", "runs/retry_interrupt.yaml", cwd=tmp_path)
    assert many.returncode == 2 and "give one session" in many.stderr
    lone = export("runs/bugfix.yaml", "--replay", cwd=tmp_path)
    assert lone.returncode == 2 and "go with --to" in lone.stderr
    (tmp_path / "empty").mkdir()
    none = export("empty", "--to", "steps.csv", cwd=tmp_path)
    assert none.returncode == 2 and "no session files found" in none.stderr


def test_a_file_that_is_no_session_is_skipped_and_said(corpus: Path, tmp_path: Path) -> None:
    (corpus / "notes.yaml").write_text("just: yaml\n", encoding="utf-8")
    done = export("runs", "--to", "steps.csv", cwd=tmp_path)
    assert done.returncode == 1
    assert "skipped" in done.stderr and "notes.yaml" in done.stderr
    assert done.stdout == "steps.csv: 14 row(s) of steps from 3 session(s); 1 file(s) skipped\n"
    assert len(read_csv(tmp_path / "steps.csv")) == 14


def test_the_full_export_still_works(tmp_path: Path) -> None:
    done = export(str(CASSETTES / "bugfix.yaml"), "--full", "--output", "full.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "full.yaml").stat().st_mode & 0o777 == 0o600
