"""The pure core of nano-code: data types, the transition function, the wire codec.

What lives here: frozen attrs types (messages, events, actions, state), the
one transition function and its phase table (`machine`), the policies it
applies (`policy`, and `compaction` for a conversation outgrowing the
context window), the OpenAI Chat Completions codec (`codec`, `stream`) and
lossless JSON conversion (`serialize`).

What may not: anything that does I/O or depends on the outside world -- no
`os`, `sys`, `subprocess`, `socket`, `time`, `random`, `urllib3`, `vcr`, no
file, clock or randomness, no global mutable state. A test reads these
modules' imports and fails on any of that. This is what makes every session
replayable and every transition checkable by property tests.
"""

from nano_code.kernel.actions import (
    Action,
    AskApproval,
    CallModel,
    CallPurpose,
    CheckToolCall,
    EndTurn,
    RetryModel,
    RunTool,
    ShowText,
    TextKind,
    TurnEnd,
    WaitForUser,
)
from nano_code.kernel.errors import DriverMisuseError
from nano_code.kernel.events import (
    ApprovalDecision,
    ClearConversation,
    CompactRequest,
    Event,
    FailureKind,
    Interrupt,
    ModelFailure,
    ModelReply,
    ReplyToolCall,
    ToolCallFacts,
    ToolResult,
    UserInput,
    Verdict,
)
from nano_code.kernel.machine import PHASE_TABLE, Phase, State, initial_state, phase_diagram, transition
from nano_code.kernel.types import (
    ApprovalMode,
    AssistantMessage,
    KernelConfig,
    Message,
    RetryPolicy,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)

__all__ = [
    "PHASE_TABLE",
    "Action",
    "ApprovalDecision",
    "ApprovalMode",
    "AskApproval",
    "AssistantMessage",
    "CallModel",
    "CallPurpose",
    "CheckToolCall",
    "ClearConversation",
    "CompactRequest",
    "DriverMisuseError",
    "EndTurn",
    "Event",
    "FailureKind",
    "Interrupt",
    "KernelConfig",
    "Message",
    "ModelFailure",
    "ModelReply",
    "Phase",
    "ReplyToolCall",
    "RetryModel",
    "RetryPolicy",
    "RunTool",
    "ShowText",
    "State",
    "SystemMessage",
    "TextKind",
    "ToolCall",
    "ToolCallFacts",
    "ToolMessage",
    "ToolResult",
    "ToolSpec",
    "TurnEnd",
    "Usage",
    "UserInput",
    "UserMessage",
    "Verdict",
    "WaitForUser",
    "initial_state",
    "phase_diagram",
    "transition",
]
