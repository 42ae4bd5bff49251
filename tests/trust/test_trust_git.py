"""A workspace's git config is data: nano-code's own git calls run none of its programs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from git_helpers import git

from nano_code.adapters.recorder import workspace_fingerprint


def test_a_hostile_fsmonitor_is_not_run_by_the_fingerprint(tmp_path: Path) -> None:
    workspace = tmp_path / "repo"
    workspace.mkdir()
    git(workspace, "init", "-q")
    (workspace / "a.txt").write_text("a\n")
    git(workspace, "add", ".")
    git(workspace, "commit", "-qm", "one")
    marker = tmp_path / "PWNED"
    git(workspace, "config", "core.fsmonitor", f"touch {marker}; false")
    # Plain git would run it (the attack is real on this machine's git):
    subprocess.run(["git", "status"], cwd=workspace, capture_output=True)
    ran_under_plain_git = marker.exists()
    marker.unlink(missing_ok=True)

    fingerprint = workspace_fingerprint(workspace)
    assert fingerprint["kind"] == "git" and fingerprint["head"]
    assert not marker.exists()
    assert ran_under_plain_git  # the test would mean nothing if git ignored the setting anyway
