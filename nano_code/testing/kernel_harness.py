"""Drive the kernel with events, no driver, server or tools: what would it send?

The kernel is one pure function, `transition(state, event) -> (state, actions)`.
This module feeds it a list of events and collects what it did, answering the
tool work between model calls itself, so a test only has to say what the user
typed and what the model replied:

    from nano_code.kernel.events import ModelReply, ReplyToolCall, UserInput
    from nano_code.testing import conversation_problems, requests_for

    bodies = requests_for(config, [
        UserInput("list the files"),
        ModelReply(tool_calls=(ReplyToolCall("c1", "shell", '{"command": "ls"}'),)),
        ModelReply(content="Two files."),
    ])
    assert len(bodies) == 2 and all(conversation_problems(b) == [] for b in bodies)

How events are fed:

- Each given event goes to the kernel when its phase accepts that kind of
  event (see `nano_code.kernel.machine.PHASE_TABLE`).
- While the kernel waits for tool work (a path check, an approval, a tool
  run) and the next given event is not an answer it accepts, `answer` makes
  one up from the action asking: by default every path is inside the
  workspace, every call approved, and every tool prints "ok".
- When a given event is one the kernel does not accept where it stands (a
  second reply after the turn ended, say), the drive stops there; that event
  and the rest are returned in `KernelRun.unused`. A property test that draws
  more replies than a turn takes can ignore them.
- A driver's mistakes still raise `DriverMisuseError` (a `ToolResult` for a
  call that is not the pending one), as they would in the real driver.

Everything here is pure: no clock, no files, no network.
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
    """Where it stopped: waiting for the user, or for a model reply that was not given."""
    actions: tuple[Action, ...]
    """Every action it asked for, in order."""
    events: tuple[Event, ...]
    """Every event it was fed, in order: the given ones and the made-up tool answers."""
    unused: tuple[Event, ...]
    """Given events it was not fed, from the first one its phase did not accept."""
    requests: tuple[dict[str, Any], ...]
    """The body of every request it would send (first calls and retries), as the JSON the
    server would parse."""

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
    """Feed `events` to a kernel (a fresh one for a `KernelConfig`, or `start` itself), answering
    tool work with `answer` where no given event does; see the module docstring."""
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
        work = [action for action in new_actions if isinstance(action, (CheckToolCall, AskApproval, RunTool))]
        asking = work[-1] if work else None
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
    """The body of every request the kernel would send, given `events`: `drive_kernel(...).requests`."""
    return list(drive_kernel(start, events, answer=answer).requests)
