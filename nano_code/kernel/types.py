"""Plain data of a conversation: messages, tool calls, tool specs, usage, config.
Frozen attrs classes with validators: a value that exists is valid."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import validators as v

is_str = v.instance_of(str)
is_opt_str = v.optional(is_str)


def at_least(minimum: float, kind: type = int) -> Any:
    """A validator: an instance of `kind` no smaller than `minimum`."""
    return [v.instance_of(kind), v.ge(minimum)]


def tuple_of(kind: type) -> Any:
    return v.deep_iterable(v.instance_of(kind), v.instance_of(tuple))


_non_negative_int = at_least(0)


def _is_json_object(_instance: object, attribute: Any, value: object) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{attribute.name} must be a mapping, got {type(value).__name__}")


@attrs.frozen
class ToolCall:
    """One function call the model asked for, as it is kept in the history."""

    id: str = attrs.field(validator=v.and_(is_str, v.min_len(1)))
    """Unique within the conversation (the kernel renames empty or reused ids)."""
    name: str = attrs.field(validator=is_str)
    arguments: str = attrs.field(validator=is_str)
    """JSON text of an object, exactly as sent back to the server."""


@attrs.frozen
class SystemMessage:
    content: str = attrs.field(validator=is_str)


@attrs.frozen
class UserMessage:
    content: str = attrs.field(validator=is_str)


@attrs.frozen
class AssistantMessage:
    content: str | None = attrs.field(default=None, validator=is_opt_str)
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), validator=tuple_of(ToolCall))
    reasoning: str | None = attrs.field(default=None, validator=is_opt_str)
    """Reasoning text the server exposed; kept for the record, never sent back."""


@attrs.frozen
class ToolMessage:
    tool_call_id: str = attrs.field(validator=v.and_(is_str, v.min_len(1)))
    content: str = attrs.field(validator=is_str)


Message = SystemMessage | UserMessage | AssistantMessage | ToolMessage
MESSAGE_TYPES = (SystemMessage, UserMessage, AssistantMessage, ToolMessage)


@attrs.frozen
class ToolSpec:
    """What the model is told about a tool, plus what the approval policy needs."""

    name: str = attrs.field(validator=v.and_(is_str, v.matches_re(r"^[a-zA-Z0-9_-]{1,64}$")))
    description: str = attrs.field(validator=is_str)
    parameters: Mapping[str, Any] = attrs.field(validator=_is_json_object)
    """JSON Schema of the arguments object."""
    mutates: bool = attrs.field(validator=v.instance_of(bool))
    path_parameter: str | None = attrs.field(default=None, validator=is_opt_str)
    """Name of the argument holding a path, checked against the workspace."""
    sandboxed: bool = attrs.field(default=False, validator=v.instance_of(bool))
    """Runs inside the OS sandbox when one is on (the shell), so then runs without asking."""

    @property
    def required_parameters(self) -> tuple[str, ...]:
        required = self.parameters.get("required", ())
        return tuple(name for name in required if isinstance(name, str))


@attrs.frozen
class Usage:
    """Token counts (and cost, when the server reports it) of one or more replies."""

    prompt_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    completion_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    total_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    cached_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    """Prompt tokens read from the server's prompt cache."""
    cache_write_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    """Prompt tokens written to the prompt cache (billed above the input price by Anthropic)."""
    reasoning_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    cost: float | None = attrs.field(default=None, validator=v.optional(v.instance_of(float)))

    def __add__(self, other: Usage) -> Usage:
        counts = {name: getattr(self, name) + getattr(other, name) for name in USAGE_COUNTS}
        both_unknown = self.cost is None and other.cost is None
        return Usage(**counts, cost=None if both_unknown else (self.cost or 0.0) + (other.cost or 0.0))


USAGE_COUNTS = tuple(field.name for field in attrs.fields(Usage) if field.name != "cost")
"""The token counts a usage has, in their order (the export tables' columns too)."""


@attrs.frozen
class RetryPolicy:
    max_attempts: int = attrs.field(default=5, validator=at_least(1))
    """Model calls per step, the first one included."""
    base_delay: float = attrs.field(default=1.0, validator=at_least(0.0, float))
    max_delay: float = attrs.field(default=30.0, validator=at_least(0.0, float))
    max_server_wait: float = attrs.field(default=120.0, validator=at_least(0.0, float))
    """A Retry-After longer than this is not waited for: the step fails instead."""


class ApprovalMode(enum.Enum):
    ASK = "ask"
    AUTO = "auto"
    """Approve every call (--yes)."""


MIN_CONTEXT_TOKENS = 1024


def _below_compact_at(instance: Any, _attribute: Any, value: float) -> None:
    if value >= instance.compact_at:
        raise ValueError(
            f"keep_recent ({value}) must be below compact_at ({instance.compact_at}): "
            "otherwise compacting would not bring the conversation under the threshold"
        )


class SandboxMode(enum.Enum):
    """What the OS sandbox around tools allows; the driver enforces it, the kernel relies on it."""

    OFF = "off"
    READ_ONLY = "read-only"
    """Everything read-only but a private /tmp, no network."""
    WORKSPACE_WRITE = "workspace-write"
    """The workspace and a private /tmp writable, no network."""


class PromptCache(enum.Enum):
    """Whether requests carry prompt-cache markers; `kernel/prompt_cache.py` decides which and where."""

    AUTO = "auto"
    """For the model families known to want them (Claude anywhere, Gemini on OpenRouter, new GPTs on OpenAI)."""
    ON = "on"
    """For every model."""
    OFF = "off"
    """Never: exactly the bodies of sessions recorded before markers existed."""


class Server(enum.Enum):
    """The kind of server the base URL names, as far as the request body depends on it."""

    OPENROUTER = "openrouter"
    OPENAI = "openai"
    OTHER = "other"


@attrs.frozen
class KernelConfig:
    """Everything that shapes requests and decisions; recorded with every session."""

    model: str = attrs.field(validator=is_str)
    system_prompt: str = attrs.field(validator=is_str)
    tools: tuple[ToolSpec, ...] = attrs.field(default=(), validator=tuple_of(ToolSpec))
    stream: bool = attrs.field(default=True, validator=v.instance_of(bool))
    max_steps_per_turn: int = attrs.field(default=50, validator=at_least(1))
    """Model calls allowed in one turn (retries of a call do not count)."""
    max_tool_output_chars: int = attrs.field(default=30_000, validator=at_least(200))
    max_consecutive_malformed: int = attrs.field(default=3, validator=at_least(1))
    """Replies in a row whose every tool call was unusable before the turn fails."""
    retry: RetryPolicy = attrs.field(factory=RetryPolicy, validator=v.instance_of(RetryPolicy))
    approval: ApprovalMode = attrs.field(default=ApprovalMode.ASK, validator=v.instance_of(ApprovalMode))
    temperature: float | None = attrs.field(
        default=None, validator=v.optional([*at_least(0.0, float), v.le(2.0)])
    )
    max_completion_tokens: int | None = attrs.field(default=None, validator=v.optional(at_least(1)))
    seed: int | None = attrs.field(default=None, validator=v.optional(v.instance_of(int)))
    sandbox: SandboxMode = attrs.field(default=SandboxMode.OFF, validator=v.instance_of(SandboxMode))
    """From the command line, never a file."""
    context_tokens: int = attrs.field(default=128_000, validator=at_least(MIN_CONTEXT_TOKENS))
    """The model's context window (a smaller one a server states is learned); never sent."""
    compact_at: float = attrs.field(default=0.8, validator=[*at_least(0.1, float), v.le(1.0)])
    """Compact once a reply's prompt tokens reach this share of the context window."""
    keep_recent: float = attrs.field(default=0.25, validator=[*at_least(0.0, float), _below_compact_at])
    """Share of the context window the newest messages kept by a compaction may fill."""
    summary_prompt: str | None = attrs.field(default=None, validator=is_opt_str)
    """The summary request's system prompt (`prompts.SUMMARY_PROMPT`); None turns compaction off."""
    summary_as: str = attrs.field(default="assistant", validator=v.in_(("assistant", "user")))
    """The role carrying a compaction's summary ("user": sessions recorded before notes)."""
    prompt_cache: PromptCache = attrs.field(default=PromptCache.OFF, validator=v.instance_of(PromptCache))
    server: Server = attrs.field(default=Server.OTHER, validator=v.instance_of(Server))
    """Never sent; it decides which cache markers a request may carry."""
    prompt_cache_key: str | None = attrs.field(default=None, validator=is_opt_str)
    """Sent to OpenAI's own server so a session's requests land on one cache (one per session)."""

    def tool(self, name: str) -> ToolSpec | None:
        return next((spec for spec in self.tools if spec.name == name), None)
