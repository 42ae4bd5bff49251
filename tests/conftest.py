"""Test-wide settings: hypothesis profiles, and what happens when ../shared is absent.

Profiles: "default" keeps the whole suite quick; "thorough" explores much
more (select it with NANO_CODE_HYPOTHESIS_PROFILE=thorough).

`../shared` (recorded real traffic, the official OpenAI schema) sits beside the
project in development but not on a user's clone. Tests that read it are
marked `@pytest.mark.shared(*parts)` (the path inside ../shared they need), or
ask for the `shared_dir` fixture. When that path is missing they are
deselected, not skipped: the run shows no wall of skips, and one line right
under "collected N items" says how many were left out and where their quirks
are covered instead (tests/kernel/fixtures and the tests named
test_standalone_*.py). A run whose every selected test needed ../shared exits
0 with that line, not 5 ("no tests collected").
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT / ".." / "shared"

NEEDS_SHARED_ELSEWHERE: dict[str, tuple[str, ...]] = {
    "tests/cli/test_cli_checks.py::test_the_schema_check_rejects_a_bad_body": (
        "openai-schema",
        "chat-completions.schema.json",
    ),
}
"""Tests outside the kernel suite that read ../shared but cannot carry the marker
(node id -> path inside ../shared). The official-schema check they make is
covered without ../shared by tests/kernel/test_standalone_request_schema.py."""

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("NANO_CODE_HYPOTHESIS_PROFILE", "default"))

_LEFT_OUT = pytest.StashKey[int]()


def shared_path(*parts: str) -> Path:
    """A path inside ../shared, skipping the calling test when it does not exist."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found (../shared is only present in development checkouts)")
    return path.resolve()


@pytest.fixture
def shared_dir() -> Path:
    """../shared (tests asking for it are deselected when it is missing)."""
    return shared_path()


def needed_shared_path(item: pytest.Item) -> Path | None:
    """The path inside ../shared that `item` reads, or None when it needs none."""
    marker = item.get_closest_marker("shared")
    if marker is not None:
        return SHARED_DIR.joinpath(*marker.args)
    nodeid = item.nodeid.split("[", 1)[0]
    if nodeid in NEEDS_SHARED_ELSEWHERE:
        return SHARED_DIR.joinpath(*NEEDS_SHARED_ELSEWHERE[nodeid])
    if "shared_dir" in getattr(item, "fixturenames", ()):
        return SHARED_DIR
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "shared(*parts): reads ../shared/<parts> by path; deselected when that path is absent",
    )
    if not hasattr(config, "workerinput"):  # once, in the main process (not in each xdist worker)
        compile_nano_code()


def compile_nano_code() -> None:
    """Write nano_code's bytecode before the suite starts its hundreds of CLI processes.

    Where PYTHONDONTWRITEBYTECODE is set (as on some CI machines), each of those
    processes would otherwise compile the package from source again: about a
    third of the suite's CPU time. Python still checks every .pyc against its
    source, so a file edited during the run is never run stale.
    """
    compileall.compile_dir(PROJECT_ROOT / "nano_code", quiet=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        path = needed_shared_path(item)
        (left_out if path is not None and not path.exists() else kept).append(item)
    config.stash[_LEFT_OUT] = len(left_out)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def left_out_line(count: int) -> str:
    return (
        f"nano-code: ../shared not found ({SHARED_DIR.resolve()}): {count} test{'s' if count != 1 else ''} "
        "that read the recorded real traffic and the official schema are not collected (deselected); "
        "the quirks they cover are tested by tests/kernel/fixtures and tests/kernel/test_standalone_*.py"
    )


def pytest_report_collectionfinish(config: pytest.Config) -> str | list[str]:
    """The one line, shown right under "collected N items" (also with -q).

    `pytest_report_header` runs before collection, so it cannot know the count,
    and -q hides it; this hook has neither problem.
    """
    count = config.stash.get(_LEFT_OUT, 0)
    return left_out_line(count) if count else []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Exit 0, not 5, when every selected test needed the missing ../shared."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.stash.get(_LEFT_OUT, 0):
        session.exitstatus = pytest.ExitCode.OK
