"""The conversation as a hypothesis state machine: protocol rules hold in every reachable state.

Rules feed `transition` only events the current phase accepts (per
`PHASE_TABLE`), drawn from `nano_code.testing.strategies`: user input, model
replies realistic and quirky, failures of every kind, tool facts, approvals,
tool results and interrupts; with compaction on in half the runs (small
context windows, so drawn usage and overflows trigger it), summary replies
and failures, /compact and /clear too. Other rules check that misuse by the driver
raises `DriverMisuseError` and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from kernel_helpers import SCHEMA, body_problems, history_call_ids, schema_errors

from nano_code.kernel import serialize
from nano_code.kernel.actions import (
    AskApproval,
    CallModel,
    CallPurpose,
    CheckToolCall,
    EndTurn,
    RetryModel,
    RunTool,
    WaitForUser,
)
from nano_code.kernel.errors import DriverMisuseError
from nano_code.kernel.events import (
    ApprovalDecision,
    ClearConversation,
    CompactRequest,
    FailureKind,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolCallFacts,
    ToolResult,
    UserInput,
    Verdict,
)
from nano_code.kernel.machine import PHASE_TABLE, transition
from nano_code.kernel.request import build_request
from nano_code.kernel.state import Phase, State, initial_state
from nano_code.kernel.types import ApprovalMode, KernelConfig, SystemMessage
from nano_code.testing import conversation_problems
from nano_code.testing import strategies as ns
from nano_code.testing.compaction_strategies import context_overflows

ANY_EVENT = {
    UserInput: UserInput("hello"),
    ModelReply: ModelReply(content="hi"),
    ModelFailure: ModelFailure(FailureKind.TRANSPORT, "reset"),
    ToolCallFacts: ToolCallFacts("nc0000001", True),
    ApprovalDecision: ApprovalDecision("nc0000001", Verdict.APPROVE),
    ToolResult: ToolResult("nc0000001", "out"),
    Interrupt: Interrupt(),
    CompactRequest: CompactRequest(),
    ClearConversation: ClearConversation(),
}


def in_phase(*phases: Phase) -> Any:
    return precondition(lambda self: self.state.phase in phases)


class Conversation(RuleBasedStateMachine):
    state: State

    @initialize(config=ns.kernel_configs() | ns.kernel_configs(compaction=True))
    def start(self, config: KernelConfig) -> None:
        self.state = initial_state(config)
        self.model_calls_this_turn = 0
        self.approved: set[str] = set()
        self.outside: set[str] = set()
        self.check_schema = SCHEMA.exists()

    # ------------------------------------------------------------ feeding events

    def feed(self, event: Any) -> list[Any]:
        before = self.state
        state, actions = transition(before, event)
        allowed = PHASE_TABLE[before.phase][type(event)][1]
        assert state.phase in allowed, (
            f"{before.phase} --{type(event).__name__}--> {state.phase} not in table"
        )
        hypothesis.event(f"{before.phase.name} --{type(event).__name__}--> {state.phase.name}")
        if before.phase is Phase.AWAITING_USER and state.phase is not Phase.AWAITING_USER:
            self.model_calls_this_turn = 0
        self.state = state
        self.check_actions(before, event, actions)
        return actions

    def check_actions(self, before: State, event: Any, actions: list[Any]) -> None:
        state = self.state
        calls = [a for a in actions if isinstance(a, (CallModel, RetryModel))]
        # A new step is a first attempt; a summary call or a step sent again after compacting is not.
        self.model_calls_this_turn += sum(
            isinstance(a, CallModel) and a.purpose is CallPurpose.STEP and a.attempt == 1 for a in actions
        )
        assert self.model_calls_this_turn <= state.config.max_steps_per_turn
        for action in actions:
            if isinstance(action, RetryModel):
                assert action.attempt <= state.config.retry.max_attempts
                assert action.delay >= 0.0
            if isinstance(action, RunTool):
                self.check_may_run(action)
        if state.phase is Phase.AWAITING_SUMMARY:
            assert len(calls) == 1 and actions[-1] is calls[0], actions
            request = calls[0]
            assert request.purpose is CallPurpose.SUMMARY
            assert state.compaction is not None and request.attempt == state.compaction.attempt
            body = dict(request.body)
            assert "tools" not in body
            assert body["messages"][0] == {"role": "system", "content": state.config.summary_prompt}
            assert not body_problems(body), body_problems(body)
            if self.check_schema:
                assert not schema_errors(body), schema_errors(body)
        elif state.phase is Phase.AWAITING_MODEL:
            assert len(calls) == 1 and actions[-1] is calls[0], actions
            request = calls[0]
            assert request.purpose is CallPurpose.STEP
            assert request.body == build_request(state.config, state.history)
            assert (request.step, request.attempt) == (state.steps_this_turn, state.attempt)
            assert not body_problems(request.body), body_problems(request.body)
            if self.check_schema:
                assert not schema_errors(request.body), schema_errors(request.body)
        else:
            assert not calls, actions
        head = state.pending[0] if state.pending else None
        if state.phase is Phase.AWAITING_TOOL_RESULT:
            assert head is not None and actions[-1] == RunTool(call=head.call, arguments=head.arguments or {})
        elif state.phase is Phase.AWAITING_APPROVAL:
            last = actions[-1]
            assert head is not None and isinstance(last, AskApproval) and last.call == head.call
        elif state.phase is Phase.AWAITING_TOOL_FACTS:
            last = actions[-1]
            assert head is not None and isinstance(last, CheckToolCall) and last.call == head.call
        elif state.phase is Phase.AWAITING_USER and before.phase is not Phase.AWAITING_USER:
            assert isinstance(actions[-1], WaitForUser) and isinstance(actions[-2], EndTurn)
            assert actions[-2].usage == state.turn_usage

    def check_may_run(self, action: RunTool) -> None:
        """Nothing that mutates or leaves the workspace runs without the user's yes."""
        config = self.state.config
        spec = config.tool(action.call.name)
        assert spec is not None, "an unknown tool was run"
        if config.approval is ApprovalMode.AUTO or spec.name in self.state.always_approved:
            return
        if spec.mutates or action.call.id in self.outside:
            assert action.call.id in self.approved, f"{action.call} ran without approval"

    # ------------------------------------------------------------ rules

    @in_phase(Phase.AWAITING_USER)
    @rule(event=ns.user_inputs())
    def user_types(self, event: UserInput) -> None:
        self.feed(event)

    @in_phase(Phase.AWAITING_MODEL)
    @rule(data=st.data())
    def model_replies(self, data: st.DataObject) -> None:
        reply = data.draw(ns.model_replies(self.state.config.tools, history_call_ids(self.state.history)))
        self.feed(reply)

    @in_phase(Phase.AWAITING_MODEL, Phase.AWAITING_SUMMARY)
    @rule(failure=ns.model_failures())
    def model_fails(self, failure: ModelFailure) -> None:
        self.feed(failure)

    @in_phase(Phase.AWAITING_MODEL, Phase.AWAITING_SUMMARY)
    @rule(data=st.data())
    def context_overflows(self, data: st.DataObject) -> None:
        from nano_code.kernel.failures import classify_http_error

        _server, status, body, _limit = data.draw(context_overflows())
        self.feed(classify_http_error(status, {}, body))

    @in_phase(Phase.AWAITING_SUMMARY)
    @rule(data=st.data())
    def model_summarises(self, data: st.DataObject) -> None:
        self.feed(data.draw(ns.model_replies(self.state.config.tools)))

    @in_phase(Phase.AWAITING_USER)
    @rule()
    def user_compacts(self) -> None:
        before = self.state.history
        self.feed(CompactRequest())
        if self.state.phase is Phase.AWAITING_USER:
            assert self.state.history == before

    @in_phase(Phase.AWAITING_USER)
    @rule(now=st.integers(0, 3))
    def user_clears(self, now: int) -> None:
        if now == 0:
            usage = self.state.session_usage
            self.feed(ClearConversation())
            assert self.state.history == (SystemMessage(self.state.config.system_prompt),)
            assert self.state.session_usage == usage

    @in_phase(Phase.AWAITING_TOOL_FACTS)
    @rule(inside=st.booleans())
    def driver_checks_path(self, inside: bool) -> None:
        call_id = self.state.pending[0].call.id
        if not inside:
            self.outside.add(call_id)
        self.feed(ToolCallFacts(call_id=call_id, inside_workspace=inside))

    @in_phase(Phase.AWAITING_APPROVAL)
    @rule(verdict=st.sampled_from(Verdict), reason=st.sampled_from(["", "too risky"]))
    def user_decides(self, verdict: Verdict, reason: str) -> None:
        call_id = self.state.pending[0].call.id
        if verdict is not Verdict.DENY:
            self.approved.add(call_id)
        self.feed(ApprovalDecision(call_id=call_id, verdict=verdict, reason=reason))

    @in_phase(Phase.AWAITING_TOOL_RESULT)
    @rule(data=st.data())
    def tool_finishes(self, data: st.DataObject) -> None:
        self.feed(data.draw(ns.tool_results(self.state.pending[0].call.id)))

    @rule(now=st.integers(0, 3))
    def user_interrupts(self, now: int) -> None:
        if now == 0:  # Ctrl-C is rare; interrupting every other step would end most turns early
            self.feed(Interrupt())

    @rule(data=st.data())
    def driver_feeds_an_event_the_phase_does_not_accept(self, data: st.DataObject) -> None:
        refused = [t for t in ANY_EVENT if t not in PHASE_TABLE[self.state.phase]]
        if not refused:
            return
        event = ANY_EVENT[data.draw(st.sampled_from(refused))]
        with pytest.raises(DriverMisuseError):
            transition(self.state, event)

    @in_phase(Phase.AWAITING_TOOL_FACTS, Phase.AWAITING_APPROVAL, Phase.AWAITING_TOOL_RESULT)
    @rule(data=st.data())
    def driver_answers_the_wrong_call(self, data: st.DataObject) -> None:
        head = self.state.pending[0].call.id
        others = (
            [p.call.id for p in self.state.pending[1:]] + history_call_ids(self.state.history) + ["nope", ""]
        )
        wrong = data.draw(st.sampled_from([i for i in others if i != head]))
        event: Any
        if self.state.phase is Phase.AWAITING_TOOL_FACTS:
            event = ToolCallFacts(call_id=wrong, inside_workspace=True)
        elif self.state.phase is Phase.AWAITING_APPROVAL:
            event = ApprovalDecision(call_id=wrong, verdict=Verdict.APPROVE)
        else:
            event = ToolResult(call_id=wrong, output="x")
        with pytest.raises(DriverMisuseError):
            transition(self.state, event)

    # ------------------------------------------------------------ invariants

    @invariant()
    def history_is_a_valid_conversation(self) -> None:
        pending = [p.call.id for p in self.state.pending]
        problems = conversation_problems(self.state.history, pending)
        assert not problems, problems

    @invariant()
    def system_prompt_stays_first(self) -> None:
        assert self.state.history[0] == SystemMessage(self.state.config.system_prompt)

    @invariant()
    def a_compaction_is_in_flight_exactly_while_awaiting_its_summary(self) -> None:
        assert (self.state.compaction is not None) == (self.state.phase is Phase.AWAITING_SUMMARY)
        if self.state.compaction is not None:
            assert 2 <= self.state.compaction.cut < len(self.state.history)

    @invariant()
    def the_context_window_never_grows(self) -> None:
        assert 1024 <= self.state.context_window <= self.state.config.context_tokens

    @invariant()
    def turn_stays_within_its_step_budget(self) -> None:
        assert 0 <= self.state.steps_this_turn <= self.state.config.max_steps_per_turn

    @invariant()
    def idle_means_nothing_pending(self) -> None:
        if self.state.phase is Phase.AWAITING_USER:
            assert self.state.pending == ()
        if self.state.phase in (
            Phase.AWAITING_TOOL_FACTS,
            Phase.AWAITING_APPROVAL,
            Phase.AWAITING_TOOL_RESULT,
        ):
            assert self.state.pending and self.state.pending[0].arguments is not None

    @invariant()
    def state_round_trips_through_json(self) -> None:
        text = json.dumps(serialize.to_json(self.state))
        assert serialize.from_json(json.loads(text)) == self.state


TestConversation = Conversation.TestCase


class CompactingConversation(Conversation):
    """The same rules and invariants with compaction always on (so it is reached in quick runs too)."""

    @initialize(config=ns.kernel_configs(compaction=True))
    def start(self, config: KernelConfig) -> None:
        super().start(config)


TestCompactingConversation = CompactingConversation.TestCase
