"""Actions: what the kernel asks the driver to do, answered (where an answer is due) by an event.

A `CallModel` carries the complete request body: the driver (or a replayer) never builds one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import validators as v

from nano_code.kernel.events import ModelFailure
from nano_code.kernel.types import ToolCall, Usage, at_least, is_str

_step = at_least(1)


class CallPurpose(enum.Enum):
    """What a model call is for; the driver performs both kinds alike."""

    STEP = "step"  # a step of the turn: the conversation so far, tools offered; the reply joins it
    SUMMARY = "summary"  # compaction's summary of the older conversation, not shown to the user


_purpose = v.instance_of(CallPurpose)


@attrs.frozen
class CallModel:
    """Send `body` to /chat/completions; answer with ModelReply or ModelFailure."""

    body: Mapping[str, Any]
    step: int = attrs.field(validator=_step)  # the turn's step this call makes (or a summary prepares)
    attempt: int = attrs.field(default=1, validator=_step)  # calls for this step or summary, this one too
    purpose: CallPurpose = attrs.field(default=CallPurpose.STEP, validator=_purpose)


@attrs.frozen
class RetryModel:
    """Sleep `delay` seconds, then send `body` again; answer as for CallModel."""

    delay: float = attrs.field(validator=at_least(0.0, float))
    body: Mapping[str, Any]
    step: int = attrs.field(validator=_step)
    attempt: int = attrs.field(validator=_step)
    failure: ModelFailure = attrs.field(validator=v.instance_of(ModelFailure))
    purpose: CallPurpose = attrs.field(default=CallPurpose.STEP, validator=_purpose)


@attrs.frozen
class CheckToolCall:
    """Find out whether `path` stays inside the workspace; answer with ToolCallFacts."""

    call: ToolCall = attrs.field(validator=v.instance_of(ToolCall))
    path: str = attrs.field(validator=is_str)


@attrs.frozen
class AskApproval:
    """Ask the user whether to run the call; answer with ApprovalDecision."""

    call: ToolCall = attrs.field(validator=v.instance_of(ToolCall))
    arguments: Mapping[str, Any]
    reason: str = attrs.field(validator=is_str)


@attrs.frozen
class RunTool:
    """Run the tool; answer with ToolResult."""

    call: ToolCall = attrs.field(validator=v.instance_of(ToolCall))
    arguments: Mapping[str, Any]


class TextKind(enum.Enum):
    ASSISTANT = "assistant"
    NOTICE = "notice"
    WARNING = "warning"


@attrs.frozen
class ShowText:
    text: str = attrs.field(validator=is_str)
    kind: TextKind = attrs.field(default=TextKind.NOTICE, validator=v.instance_of(TextKind))


@attrs.frozen
class WaitForUser:
    """The kernel is idle until a user-started event (`USER_STARTED_EVENTS`)."""


class TurnEnd(enum.Enum):
    COMPLETED = "completed"
    STEP_BUDGET = "step_budget"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@attrs.frozen
class EndTurn:
    reason: TurnEnd = attrs.field(validator=v.instance_of(TurnEnd))
    detail: str = attrs.field(default="", validator=is_str)
    usage: Usage = attrs.field(factory=Usage, validator=v.instance_of(Usage))  # tokens spent in this turn


Action = CallModel | RetryModel | CheckToolCall | AskApproval | RunTool | ShowText | WaitForUser | EndTurn
