"""From settings to the kernel's config -- shared by live runs, resume and replay.

A session records the settings that shaped it (`recorded_settings`); live
runs and replays both build their `KernelConfig` from such a record plus this
version's system prompt and tool schemas. So a replay rebuilds exactly the
config a live run with the same settings would have, and a change to the
prompt or the tools in the code shows up as a divergence.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nano_code.adapters.config import Settings
from nano_code.adapters.tools import tool_specs
from nano_code.kernel.types import ApprovalMode, KernelConfig
from nano_code.prompts import AGENTS_FILE, AGENTS_LIMIT, build_system_prompt


def read_agents_md(workspace: Path) -> str | None:
    """The workspace's AGENTS.md, when it is a regular file; read only as far as the prompt uses.

    It comes with the directory (a cloned repository, say): a named pipe or a
    device under that name must not hang start-up, nor a huge file fill memory.
    """
    try:
        fd = os.open(workspace / AGENTS_FILE, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read(AGENTS_LIMIT * 4 + 4)  # enough UTF-8 for AGENTS_LIMIT characters
    except OSError:
        return None
    finally:
        os.close(fd)
    text = data.decode("utf-8", errors="replace")
    if len(data) > AGENTS_LIMIT * 4 and len(text) <= AGENTS_LIMIT:
        text += "\n[... cut: the file is longer ...]"
    return text


def recorded_settings(settings: Settings, workspace: Path, stream: bool) -> dict[str, Any]:
    """The settings that shaped requests and decisions, safe to record (no key)."""
    return {
        "model": settings.model,
        "base_url": settings.base_url,
        "max_steps": settings.max_steps,
        "stream": stream,
        "auto_approve": settings.auto_approve,
        "shell_timeout": settings.shell_timeout,
        "workspace": str(workspace),
    }


def kernel_config(recorded: Mapping[str, Any], agents_md: str | None) -> KernelConfig:
    return KernelConfig(
        model=str(recorded["model"]),
        system_prompt=build_system_prompt(str(recorded["workspace"]), agents_md),
        tools=tool_specs(),
        stream=bool(recorded["stream"]),
        max_steps_per_turn=int(recorded["max_steps"]),
        approval=ApprovalMode.AUTO if recorded["auto_approve"] else ApprovalMode.ASK,
    )
