"""From recorded settings to the kernel's config, one way for live runs, resume and replay.

The config is the record plus this version's system prompt and tool schemas, so a replay
rebuilds the live run's config and a change to the prompt or the tools shows as a divergence.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import validators as v

from nano_code.adapters.config import PROMPT_CACHE_MODES, Settings
from nano_code.adapters.endpoint import UnsafeURL, endpoint
from nano_code.adapters.regular_files import LeadsOutside, read_regular_inside
from nano_code.adapters.sandbox import Sandbox
from nano_code.adapters.tools import tool_specs
from nano_code.kernel.types import ApprovalMode, KernelConfig, PromptCache, SandboxMode, Server
from nano_code.prompts import AGENTS_FILE, AGENTS_LIMIT, SUMMARY_PROMPT, build_system_prompt


def read_agents_md(workspace: Path, refused: Callable[[str], None] | None = None) -> str | None:
    """The workspace's AGENTS.md, read only as far as the prompt uses, and only when it is a
    regular file inside the workspace: a pipe must not hang start-up, nor a link out
    (-> ~/.ssh/id_rsa) reach the prompt. `refused` is told of such a link."""
    try:
        data = read_regular_inside(workspace, AGENTS_FILE, AGENTS_LIMIT * 4 + 3)  # enough UTF-8 for the limit
    except LeadsOutside as outside:
        if refused is not None:
            refused(f"not reading {AGENTS_FILE}: it is a link out of the workspace (to {outside.target})")
        return None
    except OSError:  # missing, unreadable, or a pipe or device
        return None
    text = data.decode("utf-8", errors="replace")
    if len(data) > AGENTS_LIMIT * 4 and len(text) <= AGENTS_LIMIT:
        text += "\n[... cut: the file is longer ...]"
    return text


DEFAULT_TOOL_OUTPUT_CHARS = 30_000
"""The cap on one tool result sent to the model."""


class SettingsError(ValueError):
    """A session's recorded settings, or an override of them, are not usable."""


def _typed(kind: type | tuple[type, ...], minimum: float | None = None) -> Any:
    return v.and_(v.instance_of(kind), *([] if minimum is None else [v.ge(minimum)]))


@attrs.frozen(kw_only=True)
class RecordedSettings:
    """Every setting that shaped a session's requests or decisions, as its file records them (never
    the key); defaults are what older files used. Live runs take approval and sandbox from the CLI."""

    model: str = attrs.field(validator=_typed(str))
    base_url: str = attrs.field(validator=_typed(str))
    max_steps: int = attrs.field(validator=_typed(int, 1))
    stream: bool = attrs.field(validator=_typed(bool))
    auto_approve: bool = attrs.field(validator=_typed(bool))
    workspace: str = attrs.field(validator=_typed(str))
    shell_timeout: float = attrs.field(default=120.0, validator=_typed((int, float), 0))
    max_tool_output_chars: int = attrs.field(default=DEFAULT_TOOL_OUTPUT_CHARS, validator=_typed(int, 200))
    sandbox: str = attrs.field(default="off", validator=v.in_(("off", "read-only", "workspace-write")))
    """As really in force, not as asked for: it shapes the system prompt and approval decisions."""
    sandbox_network: bool = attrs.field(default=False, validator=_typed(bool))
    context_tokens: int = attrs.field(default=128_000, validator=_typed(int, 1024))
    summary_as: str = attrs.field(default="user", validator=v.in_(("assistant", "user")))
    """The role of a compaction's summary ("assistant" since it was recorded)."""
    prompt_cache: str = attrs.field(default="off", validator=v.in_(PROMPT_CACHE_MODES))
    """Cache markers asked for ("off" in files from before markers: their bodies had none)."""
    prompt_cache_key: str | None = attrs.field(default=None, validator=v.optional(_typed(str)))

    def to_json(self) -> dict[str, Any]:
        return {spec.name: getattr(self, spec.name) for spec in attrs.fields(type(self))}

    @classmethod
    def from_json(cls, data: object) -> RecordedSettings:
        """From a file's `settings`; keys this version does not know are ignored."""
        if not isinstance(data, Mapping):
            raise SettingsError("the session's metadata has no settings")
        known = {spec.name for spec in attrs.fields(cls)}
        try:
            return cls(**{key: value for key, value in data.items() if key in known})
        except (TypeError, ValueError) as error:
            raise SettingsError(f"the session's settings are not usable: {error}") from None

    def with_overrides(self, overrides: Mapping[str, Any]) -> RecordedSettings:
        """These settings with some changed; an unknown name is an error, not ignored."""
        known = [spec.name for spec in attrs.fields(type(self))]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise SettingsError(
                f"unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(known)}"
            )
        try:
            return attrs.evolve(self, **overrides)
        except (TypeError, ValueError) as error:
            raise SettingsError(f"bad override: {error}") from None


def recorded_agents_md(metadata: Mapping[str, Any]) -> str | None:
    """The AGENTS.md text a session recorded (SettingsError when the file says something else)."""
    text = metadata.get("agents_md")
    if text is not None and not isinstance(text, str):
        raise SettingsError("the session's agents_md is not text")
    return text


def recorded_settings(
    settings: Settings, workspace: Path, stream: bool, sandbox: Sandbox | None = None
) -> RecordedSettings:
    """The settings to record; `sandbox` is the one really in force."""
    return RecordedSettings(
        sandbox=sandbox.mode.value if sandbox is not None else "off",
        sandbox_network=sandbox.network if sandbox is not None else False,
        model=settings.model,
        base_url=settings.base_url,
        max_steps=settings.max_steps,
        stream=stream,
        auto_approve=settings.auto_approve,
        shell_timeout=settings.shell_timeout,
        workspace=str(workspace),
        context_tokens=settings.context_tokens,
        summary_as="assistant",
        prompt_cache=settings.prompt_cache,
        prompt_cache_key=f"nano-code-{os.urandom(16).hex()}" if server_kind(settings.base_url) is Server.OPENAI else None,
    )


def server_kind(base_url: str) -> Server:
    """Which server `base_url` names, as far as request bodies depend on it."""
    try:
        host = endpoint(base_url).host
    except UnsafeURL:  # a file's garbage is just another server
        return Server.OTHER
    if host == "openrouter.ai" or host.endswith(".openrouter.ai"):
        return Server.OPENROUTER
    return Server.OPENAI if host == "api.openai.com" else Server.OTHER


def kernel_config(recorded: RecordedSettings | Mapping[str, Any], agents_md: str | None) -> KernelConfig:
    if not isinstance(recorded, RecordedSettings):
        recorded = RecordedSettings.from_json(recorded)
    prompt = build_system_prompt(recorded.workspace, agents_md, recorded.sandbox, recorded.sandbox_network)
    return KernelConfig(
        model=recorded.model,
        system_prompt=prompt,
        tools=tool_specs(),
        stream=recorded.stream,
        max_steps_per_turn=recorded.max_steps,
        approval=ApprovalMode.AUTO if recorded.auto_approve else ApprovalMode.ASK,
        max_tool_output_chars=recorded.max_tool_output_chars,
        sandbox=SandboxMode(recorded.sandbox),
        context_tokens=recorded.context_tokens,
        summary_prompt=SUMMARY_PROMPT,
        summary_as=recorded.summary_as,
        prompt_cache=PromptCache(recorded.prompt_cache),
        server=server_kind(recorded.base_url),
        prompt_cache_key=recorded.prompt_cache_key,
    )
