"""Commands started early give the same results as commands run when asked, once each."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from git_helpers import git as git_for_tests

from nano_code.adapters import early, git
from nano_code.adapters.provenance import workspace_fingerprint


@pytest.fixture(autouse=True)
def nothing_left_started() -> Iterator[None]:
    yield
    early.forget()


def test_a_command_started_under_a_key_is_collected_once(tmp_path: Path) -> None:
    early.start([sys.executable, "-c", "print('hello')"], tmp_path, key=("greeting",))
    done = early.collect(("greeting",), tmp_path, timeout=10)
    assert done is not None and done.returncode == 0 and done.stdout.strip() == b"hello"
    assert early.collect(("greeting",), tmp_path, timeout=10) is None


def test_run_takes_the_one_started_under_its_command_line_else_runs_it(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import os; print(os.getpid())"]
    early.start(argv, tmp_path)
    first = early.run(argv, tmp_path, timeout=10)
    second = early.run(argv, tmp_path, timeout=10)
    assert first.returncode == second.returncode == 0
    assert first.stdout != second.stdout  # two processes: the started one, then a fresh one


def test_the_provenance_started_early_is_the_provenance_made_when_asked(tmp_path: Path) -> None:
    workspace = tmp_path / "repo"
    workspace.mkdir()
    git_for_tests(workspace, "init", "-q")
    (workspace / "a.txt").write_text("a\n")
    git_for_tests(workspace, "add", ".")
    git_for_tests(workspace, "commit", "-qm", "one")
    (workspace / "a.txt").write_text("b\n")
    fresh = workspace_fingerprint(workspace)

    git.start_provenance_config(workspace)
    git.start_provenance(workspace)
    assert early.collect(git._DRIVER_CONFIG, workspace, timeout=10) is None  # used by start_provenance
    early_one = workspace_fingerprint(workspace)

    assert early_one == fresh and fresh["kind"] == "git" and fresh["dirty"]
    assert early.collect(("git", *git.STATUS), workspace, timeout=10) is None  # collected by the fingerprint
