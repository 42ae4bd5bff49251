"""A workspace's git config is data: nano-code's own git calls run none of its programs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from git_helpers import git

from nano_code.adapters import snapshot, snapshot_restore
from nano_code.adapters.provenance import workspace_fingerprint
from nano_code.cli.commands import workspace_diff


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


# --- every program a repository can name, planted one at a time ---------------------------------

PLANTS = {
    "fsmonitor": [("config", "core.fsmonitor", "touch {marker}; false")],
    "clean filter": [("config", "filter.x.clean", "touch {marker}; cat"), ("attr", "* filter=x")],
    "required clean filter": [
        ("config", "filter.x.clean", "touch {marker}; cat"),
        ("config", "filter.x.required", "true"),
        ("attr", "* filter=x"),
    ],
    "filter process": [("config", "filter.x.process", "touch {marker}"), ("attr", "* filter=x")],
    "filter named with dots": [
        ("config", "filter.a.b.clean", "touch {marker}; cat"),
        ("attr", "* filter=a.b"),
    ],
    "filter from info/attributes": [
        ("config", "filter.x.clean", "touch {marker}; cat"),
        ("info-attr", "* filter=x"),
    ],
    "textconv": [("config", "diff.y.textconv", "touch {marker}; cat"), ("attr", "* diff=y")],
    "external diff driver": [("config", "diff.y.command", "touch {marker}"), ("attr", "* diff=y")],
    "external diff": [("config", "diff.external", "touch {marker}")],
    "pager": [("config", "core.pager", "touch {marker}; cat")],
    "hook": [("hook", "pre-commit", "#!/bin/sh\ntouch {marker}\n")],
}


def _hostile_repository(
    root: Path, plant: list[tuple[str, str, str]] | list[tuple[str, ...]], marker: Path
) -> Path:
    workspace = root / "repo"
    workspace.mkdir()
    git(workspace, "init", "-q")
    (workspace / "a.txt").write_text("one\n")
    git(workspace, "add", ".")
    git(workspace, "commit", "-qm", "one")
    for kind, *rest in plant:
        if kind == "config":
            git(workspace, "config", rest[0], rest[1].format(marker=marker))
        elif kind == "attr":
            (workspace / ".gitattributes").write_text(rest[0] + "\n")
        elif kind == "info-attr":
            (workspace / ".git" / "info").mkdir(exist_ok=True)
            (workspace / ".git" / "info" / "attributes").write_text(rest[0] + "\n")
        elif kind == "hook":
            hook = workspace / ".git" / "hooks" / rest[0]
            hook.write_text(rest[1].format(marker=marker))
            hook.chmod(0o755)
    # a change git must look at again (a modified file, an old timestamp) and an untracked one
    (workspace / "a.txt").write_text("one\ntwo\n")
    os.utime(workspace / "a.txt", (946684800, 946684800))
    (workspace / "new.txt").write_text("new\n")
    return workspace


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_no_planted_program_runs_from_any_git_call_of_nano_code(tmp_path: Path, name: str) -> None:
    """The provenance, /diff and the workspace snapshot: none runs what the repository names."""
    marker = tmp_path / "PWNED"
    workspace = _hostile_repository(tmp_path, PLANTS[name], marker)

    fingerprint = workspace_fingerprint(workspace)
    assert fingerprint["kind"] == "git" and fingerprint["dirty"]
    assert not marker.exists(), "the provenance ran it"

    shown = workspace_diff(workspace, None)  # type: ignore[arg-type]  # a repository: no driver needed
    assert "+two" in shown and "new.txt" in shown
    assert not marker.exists(), "/diff ran it"

    session = tmp_path / "s.yaml"
    info = snapshot.take(workspace, session)
    assert info.kind == "git"
    assert not marker.exists(), "the snapshot ran it"
    restored = snapshot_restore.restored_workspace(session, info)
    try:
        assert (restored / "a.txt").read_text() == "one\ntwo\n"
    finally:
        shutil.rmtree(restored, ignore_errors=True)
    assert not marker.exists(), "restoring the snapshot ran it"


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_the_plants_are_real(tmp_path: Path, name: str) -> None:
    """Plain git runs each of these, so the test above would catch a call that let one through."""
    marker = tmp_path / "PWNED"
    workspace = _hostile_repository(tmp_path, PLANTS[name], marker)
    if name == "pager":
        if shutil.which("script") is None:
            pytest.skip("no `script` to give git a terminal")
        environment = {k: v for k, v in os.environ.items() if k not in ("GIT_PAGER", "PAGER")}
        subprocess.run(
            ["script", "-qc", "git log -1", "/dev/null"], cwd=workspace, capture_output=True, env=environment
        )
    for args in (["status"], ["diff"], ["add", "-A"], ["commit", "-qm", "two"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@l", *args], cwd=workspace, capture_output=True
        )
    assert marker.exists()
