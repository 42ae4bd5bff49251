"""Fixtures of the eval tests (their helpers are in eval_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eval_helpers import TWO_TASKS, TaskModel, write_suite

from nano_code.testing.fake_server import FakeServer


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    """Two tasks: alpha (no workspace) and beta (a workspace holding seed.txt)."""
    (tmp_path / "suite" / "beta-files").mkdir(parents=True)
    (tmp_path / "suite" / "beta-files" / "seed.txt").write_text("seed\n")
    return write_suite(tmp_path / "suite", TWO_TASKS)


@pytest.fixture
def model() -> Iterator[tuple[TaskModel, FakeServer]]:
    respond = TaskModel()
    with FakeServer(respond) as server:
        yield respond, server


@pytest.fixture
def clean_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty folder (no .env) with no nano-code settings in the environment."""
    home = tmp_path / "cwd"
    home.mkdir()
    monkeypatch.chdir(home)
    for name in (
        "OPENROUTER_API_KEY",
        "INFERENCE_BASE_URL",
        "MODEL_NAME",
        "NANO_CODE_MAX_STEPS",
        "NANO_CODE_YES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NANO_CODE_HOME", str(tmp_path / "home"))
    return home
