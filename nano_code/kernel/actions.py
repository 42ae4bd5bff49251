"""Actions: what the kernel asks the driver to do.

The driver performs each action and, where the action expects an answer,
feeds the answer back as an event. Actions are data: a `CallModel` carries the
complete request body, so the driver (or a replayer) never builds requests.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from nano_code.kernel import checks as v
from nano_code.kernel.events import ModelFailure
from nano_code.kernel.types import ToolCall, Usage
from nano_code.kernel.value import Value, field, value

_str = v.instance_of(str)
_step = [v.instance_of(int), v.ge(1)]


class CallPurpose(enum.Enum):
    """What a model call is for; the driver performs both kinds alike."""

    STEP = "step"
    """A step of the turn: the conversation so far, tools offered. The reply joins the history."""
    SUMMARY = "summary"
    """Compaction: the model is asked to summarise the older part of the conversation. The
    reply is not the assistant's answer to the user (a display should not show it as one);
    the kernel puts it into the history as the summary."""


_purpose = v.instance_of(CallPurpose)


@value
class CallModel(Value):
    """Send `body` to /chat/completions; answer with ModelReply or ModelFailure."""

    body: Mapping[str, Any]
    step: int = field(validator=_step)
    """The turn's step this call makes, or (a summary call) prepares."""
    attempt: int = field(default=1, validator=_step)
    """Calls made for this step (or this summary), this one included."""
    purpose: CallPurpose = field(default=CallPurpose.STEP, validator=_purpose)


@value
class RetryModel(Value):
    """Sleep `delay` seconds, then send `body` again; answer as for CallModel."""

    delay: float = field(validator=[v.instance_of(float), v.ge(0.0)])
    body: Mapping[str, Any]
    step: int = field(validator=_step)
    attempt: int = field(validator=_step)
    failure: ModelFailure = field(validator=v.instance_of(ModelFailure))
    purpose: CallPurpose = field(default=CallPurpose.STEP, validator=_purpose)


@value
class CheckToolCall(Value):
    """Find out whether `path` stays inside the workspace; answer with ToolCallFacts."""

    call: ToolCall = field(validator=v.instance_of(ToolCall))
    path: str = field(validator=_str)


@value
class AskApproval(Value):
    """Ask the user whether to run the call; answer with ApprovalDecision."""

    call: ToolCall = field(validator=v.instance_of(ToolCall))
    arguments: Mapping[str, Any]
    reason: str = field(validator=_str)


@value
class RunTool(Value):
    """Run the tool; answer with ToolResult."""

    call: ToolCall = field(validator=v.instance_of(ToolCall))
    arguments: Mapping[str, Any]


class TextKind(enum.Enum):
    ASSISTANT = "assistant"
    NOTICE = "notice"
    WARNING = "warning"


@value
class ShowText(Value):
    text: str = field(validator=_str)
    kind: TextKind = field(default=TextKind.NOTICE, validator=v.instance_of(TextKind))


@value
class WaitForUser(Value):
    """The kernel is idle; the next event it accepts is UserInput (or CompactRequest,
    ClearConversation)."""


class TurnEnd(enum.Enum):
    COMPLETED = "completed"
    STEP_BUDGET = "step_budget"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@value
class EndTurn(Value):
    reason: TurnEnd = field(validator=v.instance_of(TurnEnd))
    detail: str = field(default="", validator=_str)
    usage: Usage = field(factory=Usage, validator=v.instance_of(Usage))
    """Tokens spent in this turn."""


Action = CallModel | RetryModel | CheckToolCall | AskApproval | RunTool | ShowText | WaitForUser | EndTurn
ACTION_TYPES = (CallModel, RetryModel, CheckToolCall, AskApproval, RunTool, ShowText, WaitForUser, EndTurn)
