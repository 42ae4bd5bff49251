"""The agent's state: its phases and fields, and the few moves every handler makes on it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import validators as v

from nano_code.kernel.actions import Action, CallModel, EndTurn, TurnEnd, WaitForUser
from nano_code.kernel.request import RequestBody
from nano_code.kernel.types import (
    MESSAGE_TYPES,
    KernelConfig,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Usage,
    at_least,
)


class Phase(enum.Enum):
    AWAITING_USER = "awaiting_user"
    AWAITING_MODEL = "awaiting_model"
    AWAITING_TOOL_FACTS = "awaiting_tool_facts"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_TOOL_RESULT = "awaiting_tool_result"
    AWAITING_SUMMARY = "awaiting_summary"


@attrs.frozen
class PendingCall:
    """A tool call from the last reply that has not been answered yet."""

    call: ToolCall = attrs.field(validator=v.instance_of(ToolCall))
    arguments: Mapping[str, Any] | None = None
    """Checked arguments; None when the call is unusable (see `problem`)."""
    problem: str | None = attrs.field(default=None, validator=v.optional(v.instance_of(str)))
    """What to tell the model instead of running the call."""


class AfterSummary(enum.Enum):
    """Where a compaction goes once the summary is in."""

    NEXT_STEP = "next_step"
    """The threshold was passed: make the turn's next model call."""
    RETRY_STEP = "retry_step"
    """The step overflowed the context window: send it again, once."""
    USER = "user"
    """The user asked (`CompactRequest`): await the user again."""


@attrs.frozen
class Compaction:
    """A compaction in flight: the history does not change while the summary is awaited."""

    cut: int = attrs.field(validator=at_least(2))
    """`history[1:cut]` is being summarised; `history[cut:]` will be kept verbatim."""
    then: AfterSummary = attrs.field(validator=v.instance_of(AfterSummary))
    transcript_tokens: int = attrs.field(validator=at_least(1))
    """Estimated tokens of old conversation the summary request carries."""
    attempt: int = attrs.field(default=1, validator=at_least(1))
    """Summary calls made for this compaction, the current one included."""


def _history_validator(_state: object, _attribute: Any, history: object) -> None:
    """A tuple of messages; only the newest is checked (the rest was checked when appended)."""
    if not isinstance(history, tuple):
        raise TypeError(f"history must be a tuple, got {type(history).__name__}")
    if history and not isinstance(history[-1], MESSAGE_TYPES):
        raise TypeError(f"history holds a {type(history[-1]).__name__}, not a message")


@attrs.frozen
class State:
    config: KernelConfig = attrs.field(validator=v.instance_of(KernelConfig))
    history: tuple[Message, ...] = attrs.field(validator=_history_validator)
    phase: Phase = Phase.AWAITING_USER
    pending: tuple[PendingCall, ...] = ()
    """Unanswered calls of the last reply, in order; the first is the current one."""
    steps_this_turn: int = 0
    """Model calls made in this turn (retries of one call count once)."""
    attempt: int = 0
    """Calls made for the current step, the first included."""
    malformed_streak: int = 0
    """Consecutive replies whose tool calls were all unusable, or undecodable bodies."""
    always_approved: frozenset[str] = frozenset()
    call_ids: frozenset[str] = frozenset()
    """Every tool call id in the history, so a reply's ids are made unique cheaply."""
    turn_usage: Usage = attrs.field(factory=Usage)
    session_usage: Usage = attrs.field(factory=Usage)
    learned_context_tokens: int | None = None
    """A smaller context window than the config's, stated by a server's error."""
    compact_due: bool = False
    """A reply's prompt tokens passed the threshold: compact before the next model call."""
    overflow_compacted: bool = False
    """This step overflowed and was compacted once: another overflow fails the turn."""
    compaction: Compaction | None = None

    @property
    def context_window(self) -> int:
        """The context window decisions use: the config's, or the smaller one learned."""
        return min(self.config.context_tokens, self.learned_context_tokens or self.config.context_tokens)


def initial_state(config: KernelConfig) -> State:
    return State(config=config, history=(SystemMessage(config.system_prompt),))


Transition = tuple[State, list[Action]]


def request_body(state: State) -> RequestBody:
    return RequestBody(state.config, state.history)


def call_model(state: State) -> Transition:
    """The turn's next step: one more model call."""
    state = attrs.evolve(
        state, phase=Phase.AWAITING_MODEL, steps_this_turn=state.steps_this_turn + 1, attempt=1
    )
    return state, [CallModel(body=request_body(state), step=state.steps_this_turn, attempt=1)]


def new_turn(state: State, **changes: Any) -> State:
    """`state` with the counters of a turn reset (a user message or /compact starts one)."""
    reset: dict[str, Any] = {"steps_this_turn": 0, "malformed_streak": 0, "overflow_compacted": False}
    return attrs.evolve(state, **reset, turn_usage=Usage(), **changes)


def end_turn(state: State, reason: TurnEnd, detail: str, actions: list[Action]) -> Transition:
    end = EndTurn(reason=reason, detail=detail, usage=state.turn_usage)
    state = attrs.evolve(state, phase=Phase.AWAITING_USER, pending=(), attempt=0, compaction=None)
    return state, [*actions, end, WaitForUser()]


def answer(state: State, call_id: str, content: str) -> State:
    """`state` with the tool message answering `call_id` appended."""
    return attrs.evolve(state, history=(*state.history, ToolMessage(tool_call_id=call_id, content=content)))


def count_usage(state: State, usage: Usage | None) -> State:
    if usage is None:
        return state
    return attrs.evolve(state, turn_usage=state.turn_usage + usage, session_usage=state.session_usage + usage)
