"""AGENTS.md comes with the directory nano-code starts in: it is read safely and boundedly."""

from __future__ import annotations

import os
from pathlib import Path

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
