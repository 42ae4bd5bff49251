"""Approval with an OS sandbox on: what it confines runs without asking, nothing else changes.

The policy (`approval_requirement`) is checked against the function it was
before sandboxes existed, for every input hypothesis can build; the state
machine is driven to show the decision reaches the actions (a shell call under
workspace-write is a RunTool with no AskApproval before it), and the stateful
conversation test runs again with every sandbox mode, its "nothing runs without
the user's yes" rule widened by exactly what the sandbox confines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule
from test_machine_stateful import Conversation

from nano_code.kernel import serialize
from nano_code.kernel.actions import AskApproval, CheckToolCall, RunTool
from nano_code.kernel.events import ModelReply, ReplyToolCall, ToolCallFacts, UserInput
from nano_code.kernel.machine import transition
from nano_code.kernel.policy import Approval, approval_requirement
from nano_code.kernel.state import Phase, State, initial_state
from nano_code.kernel.types import ApprovalMode, KernelConfig, SandboxMode, ToolSpec
from nano_code.testing import strategies as ns
from nano_code.testing.strategies import DEMO_TOOLS

READ, WRITE, SHELL, NOW = DEMO_TOOLS
ON = (SandboxMode.READ_ONLY, SandboxMode.WORKSPACE_WRITE)


def approval_before_sandboxes(
    spec: ToolSpec, mode: ApprovalMode, always_approved: frozenset[str], inside_workspace: bool | None
) -> Approval:
    """`approval_requirement` as it was before the sandbox existed: the reference for OFF."""
    if mode is ApprovalMode.AUTO or spec.name in always_approved:
        return Approval.RUN
    if spec.mutates:
        return Approval.ASK
    if spec.path_parameter is None:
        return Approval.RUN
    if inside_workspace is None:
        return Approval.NEEDS_FACTS
    return Approval.RUN if inside_workspace else Approval.ASK


tool_specs = st.builds(
    ToolSpec,
    name=st.sampled_from(["shell", "read_file", "write_file", "edit_file", "fetch", "x"]),
    description=st.just("a tool"),
    parameters=st.just({"type": "object"}),
    mutates=st.booleans(),
    path_parameter=st.none() | st.just("path"),
    sandboxed=st.booleans(),
) | st.sampled_from(DEMO_TOOLS)
approval_modes = st.sampled_from(ApprovalMode)
grants = st.frozensets(st.sampled_from(["shell", "read_file", "write_file", "x"]), max_size=2)
facts = st.sampled_from([None, True, False])


def settled(
    spec: ToolSpec, mode: ApprovalMode, always: frozenset[str], inside: bool, sandbox: SandboxMode
) -> Approval:
    """The decision once the driver has answered the kernel's question about the path, if it asked."""
    first = approval_requirement(spec, mode, always, None, sandbox)
    if first is Approval.NEEDS_FACTS:
        return approval_requirement(spec, mode, always, inside, sandbox)
    return first


# ---------------------------------------------------------------- the policy, for every input


@given(tool_specs, approval_modes, grants, facts)
def test_off_is_the_policy_from_before_sandboxes(
    spec: ToolSpec, mode: ApprovalMode, always: frozenset[str], inside: bool | None
) -> None:
    expected = approval_before_sandboxes(spec, mode, always, inside)
    assert approval_requirement(spec, mode, always, inside) is expected
    assert approval_requirement(spec, mode, always, inside, SandboxMode.OFF) is expected


@given(tool_specs, approval_modes, grants, st.booleans(), st.sampled_from(ON))
def test_a_sandbox_never_adds_a_question(
    spec: ToolSpec, mode: ApprovalMode, always: frozenset[str], inside: bool, sandbox: SandboxMode
) -> None:
    """Whatever runs without asking with the sandbox off runs without asking with it on."""
    if settled(spec, mode, always, inside, SandboxMode.OFF) is Approval.RUN:
        assert settled(spec, mode, always, inside, sandbox) is Approval.RUN


@given(tool_specs, approval_modes, grants, st.sampled_from(SandboxMode))
def test_a_write_outside_the_workspace_always_asks(
    spec: ToolSpec, mode: ApprovalMode, always: frozenset[str], sandbox: SandboxMode
) -> None:
    """Unless the user approved everything, or this tool for good."""
    if not spec.mutates or spec.path_parameter is None or (spec.sandboxed and sandbox is not SandboxMode.OFF):
        return
    decision = settled(spec, mode, always, False, sandbox)
    if mode is ApprovalMode.AUTO or spec.name in always:
        assert decision is Approval.RUN
    else:
        assert decision is Approval.ASK


@given(tool_specs, approval_modes, grants, st.booleans())
def test_read_only_sandbox_asks_for_every_write(
    spec: ToolSpec, mode: ApprovalMode, always: frozenset[str], inside: bool
) -> None:
    if not spec.mutates or spec.sandboxed or mode is ApprovalMode.AUTO or spec.name in always:
        return
    assert settled(spec, mode, always, inside, SandboxMode.READ_ONLY) is Approval.ASK


@given(tool_specs, approval_modes, grants, facts, st.sampled_from(ON))
def test_a_sandboxed_tool_never_asks_under_a_sandbox(
    spec: ToolSpec, mode: ApprovalMode, always: frozenset[str], inside: bool | None, sandbox: SandboxMode
) -> None:
    if spec.sandboxed:
        assert approval_requirement(spec, mode, always, inside, sandbox) is Approval.RUN


@given(tool_specs, approval_modes, grants, st.booleans(), st.sampled_from(SandboxMode))
def test_reads_are_decided_as_without_a_sandbox(
    spec: ToolSpec, mode: ApprovalMode, always: frozenset[str], inside: bool, sandbox: SandboxMode
) -> None:
    """Read-only tools that are not sandboxed: inside runs, outside asks, whatever the sandbox."""
    if spec.mutates or spec.sandboxed:
        return
    assert settled(spec, mode, always, inside, sandbox) is settled(
        spec, mode, always, inside, SandboxMode.OFF
    )


@given(tool_specs, approval_modes, grants, st.sampled_from(SandboxMode))
def test_only_a_tool_with_a_path_needs_facts(
    spec: ToolSpec, mode: ApprovalMode, always: frozenset[str], sandbox: SandboxMode
) -> None:
    if approval_requirement(spec, mode, always, None, sandbox) is Approval.NEEDS_FACTS:
        assert spec.path_parameter is not None


@pytest.mark.parametrize(
    ("spec", "sandbox", "inside", "expected"),
    [
        (SHELL, SandboxMode.OFF, None, Approval.ASK),
        (SHELL, SandboxMode.READ_ONLY, None, Approval.RUN),
        (SHELL, SandboxMode.WORKSPACE_WRITE, None, Approval.RUN),
        (WRITE, SandboxMode.OFF, None, Approval.ASK),
        (WRITE, SandboxMode.READ_ONLY, None, Approval.ASK),
        (WRITE, SandboxMode.READ_ONLY, True, Approval.ASK),
        (WRITE, SandboxMode.WORKSPACE_WRITE, None, Approval.NEEDS_FACTS),
        (WRITE, SandboxMode.WORKSPACE_WRITE, True, Approval.RUN),
        (WRITE, SandboxMode.WORKSPACE_WRITE, False, Approval.ASK),
        (READ, SandboxMode.WORKSPACE_WRITE, None, Approval.NEEDS_FACTS),
        (READ, SandboxMode.WORKSPACE_WRITE, True, Approval.RUN),
        (READ, SandboxMode.WORKSPACE_WRITE, False, Approval.ASK),
        (READ, SandboxMode.READ_ONLY, False, Approval.ASK),
        (NOW, SandboxMode.READ_ONLY, None, Approval.RUN),
    ],
)
def test_sandbox_approval_matrix(
    spec: ToolSpec, sandbox: SandboxMode, inside: bool | None, expected: Approval
) -> None:
    assert approval_requirement(spec, ApprovalMode.ASK, frozenset(), inside, sandbox) is expected


# ---------------------------------------------------------------- the state machine


def config(sandbox: SandboxMode, approval: ApprovalMode = ApprovalMode.ASK) -> KernelConfig:
    return KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=approval, sandbox=sandbox)


def reply_with(name: str, arguments: dict[str, Any], sandbox: SandboxMode) -> tuple[State, list[Any]]:
    state, _ = transition(initial_state(config(sandbox)), UserInput("go"))
    return transition(state, ModelReply(tool_calls=(ReplyToolCall("c1", name, json.dumps(arguments)),)))


def test_shell_under_workspace_write_runs_without_asking() -> None:
    state, actions = reply_with("shell", {"command": "make test"}, SandboxMode.WORKSPACE_WRITE)
    assert state.phase is Phase.AWAITING_TOOL_RESULT
    assert not any(isinstance(action, (AskApproval, CheckToolCall)) for action in actions)
    assert actions[-1] == RunTool(call=state.pending[0].call, arguments={"command": "make test"})


def test_shell_with_the_sandbox_off_still_asks() -> None:
    state, actions = reply_with("shell", {"command": "make test"}, SandboxMode.OFF)
    assert state.phase is Phase.AWAITING_APPROVAL
    assert isinstance(actions[-1], AskApproval)


@pytest.mark.parametrize(("inside", "runs"), [(True, True), (False, False)])
def test_a_write_under_workspace_write_runs_only_inside(inside: bool, runs: bool) -> None:
    state, actions = reply_with("write_file", {"path": "a.py", "content": "x"}, SandboxMode.WORKSPACE_WRITE)
    assert state.phase is Phase.AWAITING_TOOL_FACTS
    assert actions[-1] == CheckToolCall(call=state.pending[0].call, path="a.py")
    state, actions = transition(state, ToolCallFacts("c1", inside))
    assert isinstance(actions[-1], RunTool if runs else AskApproval)


def test_a_write_under_read_only_asks_without_checking_its_path() -> None:
    state, actions = reply_with("write_file", {"path": "a.py", "content": "x"}, SandboxMode.READ_ONLY)
    assert state.phase is Phase.AWAITING_APPROVAL
    assert isinstance(actions[-1], AskApproval)


def test_a_write_whose_path_cannot_be_checked_asks() -> None:
    """A path the schema does not type may arrive as a non-string: there is nothing to check, so ask."""
    untyped = ToolSpec(
        name="put", description="d", parameters={"type": "object"}, mutates=True, path_parameter="path"
    )
    cfg = KernelConfig(model="m", system_prompt="s", tools=(untyped,), sandbox=SandboxMode.WORKSPACE_WRITE)
    state, _ = transition(initial_state(cfg), UserInput("go"))
    state, actions = transition(state, ModelReply(tool_calls=(ReplyToolCall("c1", "put", '{"path": 7}'),)))
    assert isinstance(actions[-1], AskApproval)


@given(st.sampled_from(SandboxMode))
def test_the_sandbox_mode_round_trips_through_json(sandbox: SandboxMode) -> None:
    cfg = config(sandbox)
    data = json.loads(json.dumps(serialize.to_json(cfg)))
    assert data["sandbox"] == sandbox.value
    assert serialize.from_json(data) == cfg


def test_a_config_recorded_before_sandboxes_loads_with_the_sandbox_off() -> None:
    data = serialize.to_json(config(SandboxMode.WORKSPACE_WRITE))
    del data["sandbox"]
    for spec in data["tools"]:
        del spec["sandboxed"]
    loaded = serialize.from_json(data)
    assert loaded.sandbox is SandboxMode.OFF
    assert not any(spec.sandboxed for spec in loaded.tools)


def test_a_bad_sandbox_value_is_refused() -> None:
    with pytest.raises(TypeError):
        KernelConfig(model="m", system_prompt="s", sandbox="workspace-write")  # type: ignore[arg-type]


# ---------------------------------------------------------------- the conversation, every sandbox mode


class SandboxedConversation(Conversation):
    """The stateful conversation test with the sandbox mode drawn too."""

    @initialize(config=ns.kernel_configs(sandbox=ns.sandbox_modes()))
    def start(self, config: KernelConfig) -> None:
        super().start(config)
        self.inside: set[str] = set()

    @precondition(lambda self: self.state.phase is Phase.AWAITING_TOOL_FACTS)
    @rule(inside=st.booleans())
    def driver_checks_path(self, inside: bool) -> None:
        if inside:
            self.inside.add(self.state.pending[0].call.id)
        super().driver_checks_path(inside)

    def check_may_run(self, action: RunTool) -> None:
        """Nothing runs without the user's yes but what the sandbox confines.

        That is: a sandboxed tool under any sandbox, and under workspace-write
        a write the driver found inside the workspace.
        """
        config = self.state.config
        spec = config.tool(action.call.name)
        assert spec is not None, "an unknown tool was run"
        if config.approval is ApprovalMode.AUTO or spec.name in self.state.always_approved:
            return
        if action.call.id in self.approved:
            return
        if config.sandbox is not SandboxMode.OFF and spec.sandboxed:
            return
        assert action.call.id not in self.outside, f"{action.call} ran outside without approval"
        if spec.mutates:
            assert config.sandbox is SandboxMode.WORKSPACE_WRITE and spec.path_parameter is not None, (
                f"{action.call} ran without approval under sandbox {config.sandbox.value}"
            )
            assert action.call.id in self.inside, f"{action.call} ran without its path checked"


TestSandboxedConversation = SandboxedConversation.TestCase
