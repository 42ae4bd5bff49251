"""The agent's state machine: the phase table and the one transition function.

`transition(state, event)` is pure (no I/O, clock or randomness), which lets a recorded
session replay exactly. `PHASE_TABLE` is the whole protocol: each phase, the events it
accepts, their handlers (in `turn` and `compaction_steps`) and the phases they may lead
to; the architecture guide's diagram is drawn from it (`phase_diagram`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nano_code.kernel import compaction_steps, events, turn
from nano_code.kernel.errors import DriverMisuseError
from nano_code.kernel.state import Phase, State, Transition

Handler = Callable[[State, Any], Transition]

USER, MODEL, SUMMARY = Phase.AWAITING_USER, Phase.AWAITING_MODEL, Phase.AWAITING_SUMMARY
ANY_PHASE = tuple(Phase)
"""Where a handler that works through the reply's tool calls may stop."""

# phase -> event type -> (handler, phases the handler may lead to)
PHASE_TABLE: dict[Phase, dict[type, tuple[Handler, tuple[Phase, ...]]]] = {
    Phase.AWAITING_USER: {
        events.UserInput: (turn.on_user_input, (MODEL, SUMMARY)),
        events.CompactRequest: (compaction_steps.on_compact_request, (SUMMARY, USER)),
        events.ClearConversation: (turn.on_clear, (USER,)),
        events.Interrupt: (turn.ignore, (USER,)),
    },
    Phase.AWAITING_MODEL: {
        events.ModelReply: (turn.on_model_reply, ANY_PHASE),
        events.ModelFailure: (turn.on_model_failure, (MODEL, USER, SUMMARY)),
        events.Interrupt: (turn.on_interrupt, (USER,)),
    },
    Phase.AWAITING_TOOL_FACTS: {
        events.ToolCallFacts: (turn.on_tool_facts, (Phase.AWAITING_APPROVAL, Phase.AWAITING_TOOL_RESULT)),
        events.Interrupt: (turn.on_interrupt, (USER,)),
    },
    Phase.AWAITING_APPROVAL: {
        events.ApprovalDecision: (turn.on_approval, ANY_PHASE),
        events.Interrupt: (turn.on_interrupt, (USER,)),
    },
    Phase.AWAITING_TOOL_RESULT: {
        events.ToolResult: (turn.on_tool_result, ANY_PHASE),
        events.Interrupt: (turn.on_interrupt, (USER,)),
    },
    Phase.AWAITING_SUMMARY: {
        events.ModelReply: (compaction_steps.on_summary_reply, (MODEL, USER)),
        events.ModelFailure: (compaction_steps.on_summary_failure, (SUMMARY, USER)),
        events.Interrupt: (turn.on_interrupt, (USER,)),
    },
}


def transition(state: State, event: events.Event) -> Transition:
    """(state, event) -> (next state, actions); DriverMisuseError for an event the phase refuses."""
    handlers = PHASE_TABLE[state.phase]
    entry = handlers.get(type(event))
    if entry is None:
        allowed = ", ".join(t.__name__ for t in handlers)
        raise DriverMisuseError(
            f"{type(event).__name__} is not accepted while {state.phase.value}; expected {allowed}"
        )
    handler, _next_phases = entry
    return handler(state, event)


def phase_diagram() -> str:
    """The phase table as a mermaid state diagram (docs/architecture.md embeds this text)."""
    lines = ["stateDiagram-v2", f"    [*] --> {Phase.AWAITING_USER.name}"]
    for phase, handlers in PHASE_TABLE.items():
        for event_type, (_handler, next_phases) in handlers.items():
            for target in next_phases:
                lines.append(f"    {phase.name} --> {target.name}: {event_type.__name__}")
    return "\n".join(lines)
