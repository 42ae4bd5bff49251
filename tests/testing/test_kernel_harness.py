"""`requests_for` / `drive_kernel`: the kernel driven by a list of events, no I/O.

The last test is the example the README gives researchers: a property test of
one's own, written with the public helpers and strategies only.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nano_code.kernel.actions import AskApproval, CheckToolCall, RetryModel, RunTool, TurnEnd
from nano_code.kernel.errors import DriverMisuseError
from nano_code.kernel.events import (
    ApprovalDecision,
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
from nano_code.kernel.machine import transition
from nano_code.kernel.state import Phase, initial_state
from nano_code.kernel.turn import INTERRUPTED_CALL
from nano_code.kernel.types import ApprovalMode, KernelConfig
from nano_code.testing import (
    KernelRun,
    ToolWork,
    answer_tool_work,
    conversation_problems,
    drive_kernel,
    requests_for,
)
from nano_code.testing.strategies import DEMO_TOOLS, kernel_configs, model_failures, model_replies

AUTO = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.AUTO)
ASK = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.ASK)


def shell(call_id: str, command: str) -> ReplyToolCall:
    return ReplyToolCall(call_id, "shell", json.dumps({"command": command}))


def test_every_request_with_the_tool_work_answered_in_between() -> None:
    bodies = requests_for(
        AUTO,
        [
            UserInput("list the files"),
            ModelReply(tool_calls=(shell("c1", "ls"),)),
            ModelReply(content="Two."),
        ],
    )
    assert len(bodies) == 2
    assert [m["role"] for m in bodies[0]["messages"]] == ["system", "user"]
    assert [m["role"] for m in bodies[1]["messages"]] == ["system", "user", "assistant", "tool"]
    assert bodies[1]["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    assert bodies[1]["model"] == "m" and bodies[1]["tools"][0]["type"] == "function"
    # plain JSON, as a server would parse it
    assert json.loads(json.dumps(bodies)) == bodies
    assert all(conversation_problems(body) == [] for body in bodies)


def test_the_run_keeps_state_actions_and_every_event_fed() -> None:
    run = drive_kernel(
        AUTO, [UserInput("go"), ModelReply(tool_calls=(shell("c1", "true"),)), ModelReply(content="done")]
    )
    assert isinstance(run, KernelRun)
    assert run.state.phase is Phase.AWAITING_USER
    assert [e.reason for e in run.turn_ends] == [TurnEnd.COMPLETED]
    assert [type(e).__name__ for e in run.events] == ["UserInput", "ModelReply", "ToolResult", "ModelReply"]
    assert any(isinstance(a, RunTool) for a in run.actions)
    assert run.unused == ()
    assert len(run.requests) == 2


def test_approvals_and_path_checks_are_answered_by_the_given_function() -> None:
    asked: list[ToolWork] = []

    def deny_shell(action: ToolWork) -> Event:
        asked.append(action)
        if isinstance(action, CheckToolCall):
            return ToolCallFacts(action.call.id, inside_workspace=not action.path.startswith(".."))
        if isinstance(action, AskApproval):
            return ApprovalDecision(action.call.id, Verdict.DENY, reason="not today")
        return answer_tool_work(action)

    reply = ModelReply(
        tool_calls=(
            ReplyToolCall("r1", "read_file", '{"path": "../outside.txt"}'),
            shell("s1", "rm -rf build"),
        )
    )
    run = drive_kernel(ASK, [UserInput("go"), reply, ModelReply(content="ok")], answer=deny_shell)
    assert [type(a).__name__ for a in asked] == ["CheckToolCall", "AskApproval", "AskApproval"]
    assert isinstance(asked[0], CheckToolCall) and asked[0].path == "../outside.txt"
    tool_messages = [m for m in run.requests[-1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 2 and all("not today" in m["content"] for m in tool_messages)
    assert conversation_problems(run.requests[-1]) == []


def test_given_answers_win_over_made_up_ones() -> None:
    run = drive_kernel(
        AUTO,
        [
            UserInput("go"),
            ModelReply(tool_calls=(shell("c1", "false"),)),
            ToolResult("c1", "it failed", is_error=True, exit_status=1),
            ModelReply(content="It failed."),
        ],
    )
    tool = run.requests[1]["messages"][-1]
    assert tool["role"] == "tool" and "it failed" in tool["content"]


def test_an_interrupt_while_tools_run_answers_every_pending_call() -> None:
    reply = ModelReply(tool_calls=(shell("c1", "sleep 9"), shell("c2", "ls")))
    run = drive_kernel(
        AUTO, [UserInput("go"), reply, Interrupt(), UserInput("again"), ModelReply(content="hi")]
    )
    assert [e.reason for e in run.turn_ends] == [TurnEnd.INTERRUPTED, TurnEnd.COMPLETED]
    last = run.requests[-1]["messages"]
    assert [m["content"] for m in last if m["role"] == "tool"] == [INTERRUPTED_CALL, INTERRUPTED_CALL]
    assert conversation_problems(run.requests[-1]) == []


def test_a_retry_is_a_request_too() -> None:
    failure = ModelFailure(FailureKind.RATE_LIMIT, "HTTP 429", status=429, retry_after=0.5)
    run = drive_kernel(AUTO, [UserInput("go"), failure, ModelReply(content="hi")])
    retries = [a for a in run.actions if isinstance(a, RetryModel)]
    assert len(retries) == 1 and retries[0].delay == 0.5
    assert len(run.requests) == 2 and run.requests[0] == run.requests[1]


def test_events_the_kernel_does_not_accept_where_it_stands_end_the_drive() -> None:
    extra = ModelReply(content="a second answer nobody asked for")
    run = drive_kernel(AUTO, [UserInput("go"), ModelReply(content="done"), extra, UserInput("more")])
    assert run.unused == (extra, UserInput("more"))
    assert len(run.requests) == 1 and run.state.phase is Phase.AWAITING_USER


def test_a_drive_can_start_from_a_state_and_stop_waiting_for_the_model() -> None:
    first = drive_kernel(AUTO, [UserInput("one"), ModelReply(content="first answer")])
    second = drive_kernel(first.state, [UserInput("two")])
    assert second.state.phase is Phase.AWAITING_MODEL
    assert [m["content"] for m in second.requests[0]["messages"]] == ["s", "one", "first answer", "two"]


def test_driver_misuse_still_raises() -> None:
    with pytest.raises(DriverMisuseError):
        drive_kernel(
            AUTO, [UserInput("go"), ModelReply(tool_calls=(shell("c1", "ls"),)), ToolResult("zz", "x")]
        )
    # A drive never stops in a tool phase (it answers); a state built by hand may be in one.
    waiting, _ = transition(initial_state(AUTO), UserInput("go"))
    waiting, _ = transition(waiting, ModelReply(tool_calls=(shell("c1", "ls"),)))
    assert waiting.phase is Phase.AWAITING_TOOL_RESULT
    assert len(drive_kernel(waiting, [ToolResult("c1", "x")]).requests) == 1
    with pytest.raises(DriverMisuseError):
        # started from a state waiting for a tool result, with no action to answer it from
        drive_kernel(waiting, [ToolResult("nope", "x")])
    with pytest.raises(ValueError, match="give the answer as the first event"):
        drive_kernel(waiting, [])


def test_the_harness_and_the_checker_do_no_io() -> None:
    """They import the kernel and pure standard-library modules only (like the kernel itself)."""
    allowed = {"__future__", "collections", "json", "typing", "attrs"}
    package = Path(__file__).resolve().parents[2] / "nano_code" / "testing"
    for name in ("kernel_harness.py", "conversation.py"):
        tree = ast.parse((package / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert module.startswith("nano_code.kernel") or top in allowed, f"{name} imports {module}"


# ------------------------------------------------------------------ a property test of one's own


@given(
    config=kernel_configs(),
    replies=st.lists(model_replies() | model_failures(), min_size=1, max_size=8),
    interrupt_at=st.none() | st.integers(0, 8),
)
def test_whatever_the_model_replies_every_request_is_a_valid_conversation(
    config: KernelConfig, replies: list[ModelReply | ModelFailure], interrupt_at: int | None
) -> None:
    events: list[Event] = [UserInput("fix the failing test"), *replies]
    if interrupt_at is not None:
        events.insert(1 + min(interrupt_at, len(replies)), Interrupt())
    run = drive_kernel(config, events)
    for body in run.requests:
        assert conversation_problems(body) == []
    assert conversation_problems(run.state) == []
    assert len(run.turn_ends) <= 1  # one user input: one turn at most
