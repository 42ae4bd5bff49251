"""Drive the kernel with events, with no driver, server or tools: what would it send?

    bodies = requests_for(config, [UserInput("list the files"), ModelReply(content="Two files.")])

Each given event is fed when the kernel's phase accepts it; tool work asked for in between is
answered by `answer` unless the next given event does; the drive stops at the first given event
the phase does not accept (`KernelRun.unused`). Pure: no clock, files or network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from nano_code.kernel.actions import (
    Action,
    AskApproval,
    CallModel,
    CheckToolCall,
    EndTurn,
    RetryModel,
    RunTool,
)
from nano_code.kernel.events import ApprovalDecision, Event, ToolCallFacts, ToolResult, Verdict
from nano_code.kernel.machine import PHASE_TABLE, transition
from nano_code.kernel.state import Phase, State, initial_state
from nano_code.kernel.types import KernelConfig

__all__ = ["KernelRun", "ToolWork", "answer_tool_work", "drive_kernel", "requests_for"]

ToolWork = CheckToolCall | AskApproval | RunTool
"""The actions a driver answers by looking at the workspace, asking the user or running a tool."""

_TOOL_PHASES = (Phase.AWAITING_TOOL_FACTS, Phase.AWAITING_APPROVAL, Phase.AWAITING_TOOL_RESULT)


def answer_tool_work(action: ToolWork) -> Event:
    """The default stand-in for the driver: paths inside the workspace, calls approved, output "ok"."""
    if isinstance(action, CheckToolCall):
        return ToolCallFacts(call_id=action.call.id, inside_workspace=True)
    if isinstance(action, AskApproval):
        return ApprovalDecision(call_id=action.call.id, verdict=Verdict.APPROVE)
    return ToolResult(call_id=action.call.id, output="ok")


@attrs.frozen
class KernelRun:
    """What the kernel did with the events it was given."""

    state: State
    actions: tuple[Action, ...]
    events: tuple[Event, ...]  # every event fed: the given ones and the made-up tool answers
    unused: tuple[Event, ...]  # given events from the first one its phase did not accept
    requests: tuple[dict[str, Any], ...]  # each request body it would send (retries too), as parsed

    @property
    def turn_ends(self) -> tuple[EndTurn, ...]:
        """How each finished turn ended."""
        return tuple(action for action in self.actions if isinstance(action, EndTurn))


def drive_kernel(
    start: KernelConfig | State,
    events: Iterable[Event],
    *,
    answer: Callable[[ToolWork], Event] = answer_tool_work,
) -> KernelRun:
    """Feed `events` to a kernel (a fresh one for a `KernelConfig`, or `start` itself)."""
    state = start if isinstance(start, State) else initial_state(start)
    given = list(events)
    position = 0
    actions: list[Action] = []
    fed: list[Event] = []
    asking: ToolWork | None = None
    while True:
        accepted = PHASE_TABLE[state.phase]
        upcoming = given[position] if position < len(given) else None
        if upcoming is not None and type(upcoming) in accepted:
            event = upcoming
            position += 1
        elif state.phase in _TOOL_PHASES:
            if asking is None:
                raise ValueError(
                    f"the state is {state.phase.value} but no action asked for it here: "
                    "give the answer as the first event"
                )
            event = answer(asking)
        else:
            break
        state, new_actions = transition(state, event)
        fed.append(event)
        actions.extend(new_actions)
        asking = next((action for action in reversed(new_actions) if isinstance(action, ToolWork)), None)
    requests = tuple(
        json.loads(json.dumps(dict(action.body)))
        for action in actions
        if isinstance(action, (CallModel, RetryModel))
    )
    return KernelRun(state, tuple(actions), tuple(fed), tuple(given[position:]), requests)


def requests_for(
    start: KernelConfig | State,
    events: Iterable[Event],
    *,
    answer: Callable[[ToolWork], Event] = answer_tool_work,
) -> list[dict[str, Any]]:
    """`drive_kernel(...).requests` as a list."""
    return list(drive_kernel(start, events, answer=answer).requests)
