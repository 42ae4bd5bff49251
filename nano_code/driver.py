"""The loop, where the pure kernel meets the adapters: perform each action the kernel asks
for and feed back what happened. A `Performer` carries actions out (live or from a
recording); `Observer`s watch every event and action (display, `--json`, the recorder)."""

from __future__ import annotations

from collections import deque
from typing import Protocol

from nano_code.kernel.actions import (
    Action,
    AskApproval,
    CallModel,
    CheckToolCall,
    EndTurn,
    RetryModel,
    RunTool,
    ShowText,
    TurnEnd,
    WaitForUser,
)
from nano_code.kernel.events import (
    ApprovalDecision,
    Event,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolCallFacts,
    ToolResult,
    UserInput,
)
from nano_code.kernel.machine import transition
from nano_code.kernel.state import Phase, State


class Performer(Protocol):
    """Carries out the kernel's requests. Ctrl-C becomes an `Interrupt` answer."""

    def call_model(self, action: CallModel | RetryModel) -> ModelReply | ModelFailure | Interrupt: ...
    def check_tool_call(self, action: CheckToolCall) -> ToolCallFacts | Interrupt: ...
    def ask_approval(self, action: AskApproval) -> ApprovalDecision | Interrupt: ...
    def run_tool(self, action: RunTool) -> ToolResult | Interrupt: ...


class Observer(Protocol):
    def on_event(self, event: Event, state: State) -> None: ...
    def on_action(self, action: Action, state: State) -> None: ...


class Driver:
    def __init__(self, state: State, performer: Performer, observers: list[Observer] | None = None) -> None:
        self.state = state
        self.performer = performer
        self.observers: list[Observer] = list(observers or [])

    def feed(self, event: Event) -> list[Action]:
        for observer in self.observers:
            observer.on_event(event, self.state)
        self.state, actions = transition(self.state, event)
        return actions

    def run_turn(self, text: str) -> EndTurn:
        return self.run(self.feed(UserInput(text)))

    def run(self, actions: list[Action]) -> EndTurn:
        queue = deque(actions)
        end = EndTurn(reason=TurnEnd.COMPLETED)
        while queue:
            action = queue.popleft()
            for observer in self.observers:
                observer.on_action(action, self.state)
            event = self._perform(action)
            if isinstance(action, EndTurn):
                end = action
            if event is not None:
                queue.extend(self.feed(event))
        return end

    def change_setting(self, state: State, change: object) -> None:
        """Go on from `state`, the current one with a setting changed (`session/changes.py`)."""
        self.state = state
        self._tell("on_setting_change", change)

    def note_command(self, text: str) -> None:
        """An interactive command the user typed (/cost, /model ...), for the recorder."""
        self._tell("on_command", text)

    def _tell(self, hook_name: str, what: object) -> None:
        for observer in self.observers:
            hook = getattr(observer, hook_name, None)
            if hook is not None:
                hook(what, self.state)

    def hand_over(self, performer: Performer) -> None:
        """From the next action on, `performer` carries them out (a fork going live)."""
        self.performer = performer

    def interrupt(self) -> EndTurn | None:
        """Close a turn that a Ctrl-C tore out of `run` (outside any performer)."""
        return None if self.state.phase is Phase.AWAITING_USER else self.run(self.feed(Interrupt()))

    def _perform(self, action: Action) -> Event | None:
        if isinstance(action, (CallModel, RetryModel)):
            return self.performer.call_model(action)
        if isinstance(action, CheckToolCall):
            return self.performer.check_tool_call(action)
        if isinstance(action, AskApproval):
            return self.performer.ask_approval(action)
        if isinstance(action, RunTool):
            return self.performer.run_tool(action)
        if isinstance(action, (ShowText, EndTurn, WaitForUser)):
            return None  # observers show these
        raise AssertionError(f"unknown action {action!r}")
