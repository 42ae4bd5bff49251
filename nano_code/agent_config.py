"""From settings to the kernel's config -- shared by live runs, resume and replay.

A session records the settings that shaped it (`recorded_settings`); live
runs and replays both build their `KernelConfig` from such a record plus this
version's system prompt and tool schemas. So a replay rebuilds exactly the
config a live run with the same settings would have, and a change to the
prompt or the tools in the code shows up as a divergence.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nano_code.adapters.config import Settings
from nano_code.adapters.tools import tool_specs
from nano_code.kernel.types import ApprovalMode, KernelConfig
from nano_code.prompts import AGENTS_FILE, build_system_prompt


def read_agents_md(workspace: Path) -> str | None:
    try:
        return (workspace / AGENTS_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


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
