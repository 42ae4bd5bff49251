"""A clone without ../shared runs cleanly: no wall of skips, one line saying why, exit 0.

The test copies the test files that read ../shared (and the conftest that
decides about them) into a temporary project whose ../shared does not exist,
and runs pytest there in a subprocess, the way a user's clone would. nano_code
itself is imported from the installed package, so nothing else is copied.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kernel_helpers import SHARED

PROJECT = Path(__file__).resolve().parents[2]
COPIED = (
    "pyproject.toml",
    "tests/conftest.py",
    "tests/kernel/kernel_helpers.py",
    "tests/kernel/test_real_traffic.py",
    "tests/kernel/test_request_schema.py",
    "tests/kernel/test_standalone_request_schema.py",
    "tests/kernel/test_standalone_fixtures.py",
)
STAND_IN = """
import pytest

def test_the_schema_check_rejects_a_bad_body():
    pytest.fail("reads ../shared: tests/conftest.py must deselect it when ../shared is absent")

def test_a_neighbour_that_needs_nothing():
    pass
"""
"""Stands in for tests/cli/test_cli_checks.py (not ours to copy): same node id, known outcome."""
LINE = "nano-code: ../shared not found"


def make_clone(root: Path) -> Path:
    project = root / "project"
    for relative in COPIED:
        target = project / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT / relative, target)
    shutil.copytree(PROJECT / "tests" / "kernel" / "fixtures", project / "tests" / "kernel" / "fixtures")
    (project / "tests" / "cli").mkdir()
    (project / "tests" / "cli" / "test_cli_checks.py").write_text(STAND_IN, encoding="utf-8")
    return project


def run_pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_shared_nothing_is_skipped_and_one_line_says_why(tmp_path: Path) -> None:
    project = make_clone(tmp_path)
    assert not (project / ".." / "shared").exists()
    collected = run_pytest(project, "--collect-only", "-q", "tests")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    out = collected.stdout
    assert out.count(LINE) == 1, out
    assert "ERROR" not in out and not re.search(r"\d+ errors?\b", out), out
    listed = [line for line in out.splitlines() if "::" in line]
    assert listed, out
    assert not any("test_real_traffic.py" in line for line in listed), "sample tests must not be collected"
    assert not any("official_schema" in line or "test_the_schema_check" in line for line in listed), listed
    assert any("test_standalone_fixtures.py::test_fixture_decodes_to_what_it_says" in line for line in listed)
    assert any("test_request_bodies_validate_against_our_subset" in line for line in listed)
    assert "tests/cli/test_cli_checks.py::test_a_neighbour_that_needs_nothing" in listed
    assert not any("test_the_schema_check_rejects_a_bad_body" in line for line in listed)

    only_shared = run_pytest(project, "-q", "-rs", "tests/kernel/test_real_traffic.py")
    assert only_shared.returncode == 0, only_shared.stdout + only_shared.stderr  # not 5
    assert only_shared.stdout.count(LINE) == 1, only_shared.stdout
    assert "skipped" not in only_shared.stdout and "SKIPPED" not in only_shared.stdout, only_shared.stdout
    assert "deselected" in only_shared.stdout

    elsewhere = run_pytest(project, "-q", "-rs", "tests/cli/test_cli_checks.py")
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr
    assert "1 passed, 1 deselected" in elsewhere.stdout, elsewhere.stdout


def test_tests_named_elsewhere_still_exist() -> None:
    """Each node id tests/conftest.py deselects by name names a test that is really there."""
    conftest = ast.parse((PROJECT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    table = next(
        node.value
        for node in conftest.body
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "NEEDS_SHARED_ELSEWHERE"
    )
    nodeids = ast.literal_eval(table)
    assert nodeids
    for nodeid in nodeids:
        path, _, name = nodeid.partition("::")
        tree = ast.parse((PROJECT / path).read_text(encoding="utf-8"))
        assert name in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, nodeid


@pytest.mark.shared("real-traffic", "samples")
def test_with_shared_everything_is_collected_and_nothing_is_said(tmp_path: Path) -> None:
    project = make_clone(tmp_path)
    (tmp_path / "shared").symlink_to(SHARED.resolve(), target_is_directory=True)
    collected = run_pytest(project, "--collect-only", "-q", "tests/kernel/test_real_traffic.py")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert LINE not in collected.stdout
    assert "deselected" not in collected.stdout
    assert (
        sum("::test_sample_decodes_to_what_it_says[" in line for line in collected.stdout.splitlines()) > 50
    )
