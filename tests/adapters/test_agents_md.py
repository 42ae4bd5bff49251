"""AGENTS.md comes with the directory nano-code starts in: it is read safely and boundedly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nano_code.adapters.regular_files import LeadsOutside, read_regular_inside
from nano_code.prompts import AGENTS_LIMIT, build_system_prompt
from nano_code.session.settings import read_agents_md


def test_a_named_pipe_called_agents_md_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "AGENTS.md")  # opening it for reading would block without O_NONBLOCK
    assert read_agents_md(tmp_path) is None


def test_a_device_called_agents_md_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").symlink_to("/dev/zero")
    assert read_agents_md(tmp_path) is None


def test_a_huge_agents_md_is_read_only_as_far_as_the_prompt_uses(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_bytes(b"x" * (50 * AGENTS_LIMIT))
    text = read_agents_md(tmp_path)
    assert text is not None and len(text) <= 4 * AGENTS_LIMIT + 64
    prompt = build_system_prompt(str(tmp_path), text)
    assert "cut at" in prompt and prompt.count("x") <= AGENTS_LIMIT + 10


def test_an_ordinary_agents_md_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("Use tabs.\nRun make test.\n", encoding="utf-8")
    assert read_agents_md(tmp_path) == "Use tabs.\nRun make test.\n"
    assert read_agents_md(tmp_path / "missing") is None


# --- links (issue 18, item 3): a cloned repository may ship AGENTS.md as a link ---------------


def _workspace_and_secret(tmp_path: Path) -> tuple[Path, Path]:
    workspace = tmp_path / "work" / "repo"
    workspace.mkdir(parents=True)
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-KEY-MATERIAL\n")
    return workspace, secret


def _read(workspace: Path) -> tuple[str | None, list[str]]:
    lines: list[str] = []
    return read_agents_md(workspace, lines.append), lines


def test_a_link_to_a_file_outside_the_workspace_is_refused_with_one_line(tmp_path: Path) -> None:
    workspace, secret = _workspace_and_secret(tmp_path)
    (workspace / "AGENTS.md").symlink_to(secret)  # AGENTS.md -> ~/.ssh/id_rsa
    text, lines = _read(workspace)
    assert text is None
    assert len(lines) == 1 and "AGENTS.md" in lines[0] and str(secret) in lines[0]


def test_a_relative_link_climbing_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    workspace, _ = _workspace_and_secret(tmp_path)
    (workspace / "AGENTS.md").symlink_to("../../home/.ssh/id_rsa")  # like ../../etc/passwd
    assert _read(workspace)[0] is None
    (workspace / "AGENTS.md").unlink()
    (workspace / "AGENTS.md").symlink_to("../../../../../../../../etc/passwd")
    text, lines = _read(workspace)
    assert text is None and lines == [
        "not reading AGENTS.md: it is a link out of the workspace (to /etc/passwd)"
    ]


def test_a_link_through_a_linked_folder_that_leads_out_is_refused(tmp_path: Path) -> None:
    workspace, secret = _workspace_and_secret(tmp_path)
    (workspace / "docs").symlink_to(secret.parent)  # docs -> ~/.ssh
    (workspace / "AGENTS.md").symlink_to("docs/id_rsa")
    text, lines = _read(workspace)
    assert text is None and len(lines) == 1


def test_a_link_that_stays_inside_the_workspace_is_followed(tmp_path: Path) -> None:
    workspace, _ = _workspace_and_secret(tmp_path)
    (workspace / "docs").mkdir()
    (workspace / "docs" / "AGENTS.md").write_text("Run make test.\n")
    (workspace / "guide").symlink_to("docs")
    (workspace / "AGENTS.md").symlink_to("guide/AGENTS.md")
    assert _read(workspace) == ("Run make test.\n", [])


def test_a_workspace_reached_through_a_link_still_reads_its_own_file(tmp_path: Path) -> None:
    workspace, _ = _workspace_and_secret(tmp_path)
    (workspace / "AGENTS.md").write_text("Use tabs.\n")
    alias = tmp_path / "alias"
    alias.symlink_to(workspace)
    assert _read(alias) == ("Use tabs.\n", [])


def test_a_link_swapped_in_after_the_check_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check holds at the moment of use: the path is opened without following links, so a
    link put in place between resolving and opening is refused, not read."""
    workspace, secret = _workspace_and_secret(tmp_path)
    (workspace / "sub").symlink_to(secret.parent)
    (workspace / "AGENTS.md").symlink_to(secret)
    monkeypatch.setattr(os.path, "realpath", lambda path, **_: os.path.normpath(os.fspath(path)))
    with pytest.raises(LeadsOutside):
        read_regular_inside(workspace, "AGENTS.md", 100)
    with pytest.raises(LeadsOutside):
        read_regular_inside(workspace, "sub/id_rsa", 100)
