"""Fixtures for the recording/replay tests.

`pytest_plugins` may only be set in the top-level conftest, so the pytester
plugin (used to run the `nano_replay` fixture inside a throwaway project) is
registered here from `pytest_configure` instead.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture(scope="session")
def unshare_ok() -> None:
    """Skip unless `unshare -rn` can make a network-less namespace here."""
    try:
        done = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"`unshare -rn true` cannot run here ({error}): no offline namespace to replay in")
    if done.returncode != 0:
        pytest.skip(
            "`unshare -rn true` failed here (user namespaces disabled?): "
            f"{done.stderr.decode(errors='replace').strip()}"
        )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path
