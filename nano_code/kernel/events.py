"""Events: everything the outside world tells the kernel. Those carrying model output come
from untrusted bytes, so their fields are loose; the transition function copes with all of it."""

from __future__ import annotations

import enum

import attrs
from attrs import validators as v

from nano_code.kernel.types import Usage, is_opt_str, is_str, tuple_of

_opt_int = v.optional(v.instance_of(int))


@attrs.frozen
class UserInput:
    text: str = attrs.field(validator=is_str)


@attrs.frozen
class ReplyToolCall:
    """A tool call exactly as the server sent it, before the kernel checks it."""

    id: str = attrs.field(validator=is_str)  # may be empty or repeated: the kernel makes it unique
    name: str = attrs.field(validator=is_str)
    arguments: str | None = attrs.field(default=None, validator=is_opt_str)  # raw JSON; None: none sent


@attrs.frozen
class ModelReply:
    content: str = attrs.field(default="", validator=is_str)
    reasoning: str = attrs.field(default="", validator=is_str)
    tool_calls: tuple[ReplyToolCall, ...] = attrs.field(default=(), validator=tuple_of(ReplyToolCall))
    finish_reason: str | None = attrs.field(default=None, validator=is_opt_str)
    usage: Usage | None = attrs.field(default=None, validator=v.optional(v.instance_of(Usage)))
    model: str | None = attrs.field(default=None, validator=is_opt_str)


class FailureKind(enum.Enum):
    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    CONTEXT_OVERFLOW = "context_overflow"
    SERVER_ERROR = "server_error"
    BAD_REQUEST = "bad_request"
    MALFORMED = "malformed"
    IN_BAND_ERROR = "in_band_error"  # HTTP 200, but the body (or a stream event) carried an error object
    TRANSPORT = "transport"
    TIMEOUT = "timeout"
    BAD_RESPONSE = "bad_response"  # too large, or an encoding not asked for: asking again would not help


@attrs.frozen
class ModelFailure:
    kind: FailureKind = attrs.field(validator=v.instance_of(FailureKind))
    message: str = attrs.field(validator=is_str)
    status: int | None = attrs.field(default=None, validator=_opt_int)  # HTTP's, or an in-band error's code
    retry_after: float | None = attrs.field(default=None, validator=v.optional(v.instance_of(float)))
    """Seconds the server asked us to wait, when it said so."""


@attrs.frozen
class ToolCallFacts:
    """What only the driver can find out about a call (it needs the filesystem)."""

    call_id: str = attrs.field(validator=is_str)
    inside_workspace: bool = attrs.field(validator=v.instance_of(bool))


class Verdict(enum.Enum):
    APPROVE = "approve"
    DENY = "deny"
    ALWAYS = "always"  # approve, and do not ask again for this tool in this session


@attrs.frozen
class ApprovalDecision:
    call_id: str = attrs.field(validator=is_str)
    verdict: Verdict = attrs.field(validator=v.instance_of(Verdict))
    reason: str = attrs.field(default="", validator=is_str)  # why a call was denied, told to the model


@attrs.frozen
class ToolResult:
    call_id: str = attrs.field(validator=is_str)
    output: str = attrs.field(validator=is_str)
    is_error: bool = attrs.field(default=False, validator=v.instance_of(bool))
    exit_status: int | None = attrs.field(default=None, validator=_opt_int)


@attrs.frozen
class Interrupt:
    """The user pressed Ctrl-C: stop whatever is in flight."""


@attrs.frozen
class CompactRequest:
    """/compact: summarise the older part of the conversation now, then await the user."""


@attrs.frozen
class ClearConversation:
    """/clear: the history goes back to the system prompt; usage totals, "always"
    approvals and a learned context window stay."""


Event = (
    UserInput
    | ModelReply
    | ModelFailure
    | ToolCallFacts
    | ApprovalDecision
    | ToolResult
    | Interrupt
    | CompactRequest
    | ClearConversation
)
USER_STARTED_EVENTS = (UserInput, CompactRequest, ClearConversation)
"""Events the user starts between turns: they answer no tool call."""
