"""Path checks hold at the moment of use: a symlink swapped after the check cannot reach outside.

The performer reports a call's path as inside the workspace (the kernel then
runs a read without asking); a process that swaps a symlink between the check
and the use must not get a file outside the workspace read or written.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nano_code.adapters import tools
from nano_code.adapters.file_access import inside_workspace
from nano_code.adapters.live import LivePerformer
from nano_code.adapters.tool import ToolContext
from nano_code.kernel.actions import AskApproval, CheckToolCall, RunTool
from nano_code.kernel.events import ApprovalDecision, ToolCallFacts, ToolResult, Verdict
from nano_code.kernel.types import ToolCall

SECRET = "TOP-SECRET-outside-the-workspace"
INSIDE = "harmless inside text"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace with `inside.txt`, and next to it a directory holding a secret."""
    workspace = tmp_path / "ws"
    outside = tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "inside.txt").write_text(INSIDE + "\n")
    (outside / "secret.txt").write_text(SECRET + "\n")
    return workspace.resolve(), outside.resolve()


def performer(
    workspace: Path, approve: Callable[[AskApproval], ApprovalDecision] | None = None
) -> LivePerformer:
    def approver(action: AskApproval) -> ApprovalDecision:
        return ApprovalDecision(action.call.id, Verdict.APPROVE)

    return LivePerformer(
        client=None,  # type: ignore[arg-type]  # no model is called here
        tool_context=ToolContext(workspace=workspace, shell_timeout=10.0),
        approver=approve or approver,
    )


_ids = iter(range(1_000_000))


def call(name: str, arguments: dict[str, Any]) -> ToolCall:
    return ToolCall(id=f"call_{next(_ids)}", name=name, arguments=json.dumps(arguments))


def point(link: Path, target: Path | str) -> None:
    """Make `link` a symlink to `target`, atomically (the old link stays until the new one replaces it)."""
    temporary = link.with_name(f".{link.name}.{threading.get_ident()}.new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    os.replace(temporary, link)


def checked_then_run(live: LivePerformer, name: str, arguments: dict[str, Any]) -> ToolResult | None:
    """What the kernel does for a read: check the path, and run the call without asking when inside.

    None when the check found the path outside (the kernel would ask the user; here nobody says yes).
    """
    tool_call = call(name, arguments)
    facts = live.check_tool_call(CheckToolCall(call=tool_call, path=arguments["path"]))
    assert isinstance(facts, ToolCallFacts)
    if not facts.inside_workspace:
        return None
    result = live.run_tool(RunTool(call=tool_call, arguments=arguments))
    assert isinstance(result, ToolResult)
    return result


@pytest.fixture
def swapping() -> Iterator[Callable[[Path, Path, Path], None]]:
    """Start a thread that keeps pointing a link at one target, then the other, until the test ends."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # let the swapper interleave with the tool as often as it can

    def start(link: Path, first: Path, second: Path) -> None:
        def swap() -> None:
            while not stop.is_set():
                point(link, first)
                point(link, second)

        point(link, first)
        thread = threading.Thread(target=swap, daemon=True)
        threads.append(thread)
        thread.start()

    try:
        yield start
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        sys.setswitchinterval(previous)


# --- the race, for real -------------------------------------------------------------------------


def test_the_race_is_real_without_confinement(
    layout: tuple[Path, Path], swapping: Callable[[Path, Path, Path], None]
) -> None:
    """The attack this file defends against: check inside, then read unconfined, gets the secret."""
    workspace, outside = layout
    link = workspace / "link.txt"
    swapping(link, workspace / "inside.txt", outside / "secret.txt")
    context = ToolContext(workspace=workspace)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if inside_workspace("link.txt", workspace):
            outcome = tools.run_tool("read_file", {"path": "link.txt"}, context)
            if SECRET in outcome.output:
                return
    pytest.fail("the swapping link never won the race; the tests below would prove nothing")


def test_swapping_link_never_lets_a_checked_read_reach_outside(
    layout: tuple[Path, Path], swapping: Callable[[Path, Path, Path], None]
) -> None:
    workspace, outside = layout
    swapping(workspace / "link.txt", workspace / "inside.txt", outside / "secret.txt")
    live = performer(workspace)
    outputs = []
    for _ in range(300):
        result = checked_then_run(live, "read_file", {"path": "link.txt"})
        if result is not None:
            outputs.append(result.output)
    assert outputs, "the check never found the link inside"
    assert not [output for output in outputs if SECRET in output]
    assert any(INSIDE in output for output in outputs)


def test_swapping_link_never_lets_a_checked_write_reach_outside(
    layout: tuple[Path, Path], swapping: Callable[[Path, Path, Path], None]
) -> None:
    workspace, outside = layout
    secret = outside / "secret.txt"
    before = secret.stat()
    swapping(workspace / "link.txt", workspace / "inside.txt", secret)
    live = performer(workspace)
    ran = 0
    for number in range(300):
        arguments = {"path": "link.txt", "content": f"overwritten {number}\n"}
        ran += checked_then_run(live, "write_file", arguments) is not None
    assert ran
    after = secret.stat()
    assert secret.read_text() == SECRET + "\n"
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


# --- the swap exactly between the check and the use ----------------------------------------------


def test_read_swapped_to_outside_after_the_check_is_refused(layout: tuple[Path, Path]) -> None:
    workspace, outside = layout
    link = workspace / "link.txt"
    point(link, "inside.txt")
    live = performer(workspace)
    tool_call = call("read_file", {"path": "link.txt"})
    facts = live.check_tool_call(CheckToolCall(call=tool_call, path="link.txt"))
    assert isinstance(facts, ToolCallFacts) and facts.inside_workspace
    point(link, outside / "secret.txt")
    result = live.run_tool(RunTool(call=tool_call, arguments={"path": "link.txt"}))
    assert isinstance(result, ToolResult)
    assert result.is_error
    assert SECRET not in result.output
    assert result.output == (
        "Error: link.txt resolved outside the workspace when it was opened (it changed after it "
        "was checked); not read."
    )


def test_write_swapped_to_outside_after_the_check_is_refused(layout: tuple[Path, Path]) -> None:
    workspace, outside = layout
    link = workspace / "link.txt"
    point(link, "inside.txt")
    live = performer(workspace)
    arguments = {"path": "link.txt", "content": "pwned\n"}
    tool_call = call("write_file", arguments)
    live.check_tool_call(CheckToolCall(call=tool_call, path="link.txt"))
    point(link, outside / "secret.txt")
    result = live.run_tool(RunTool(call=tool_call, arguments=arguments))
    assert isinstance(result, ToolResult)
    assert result.is_error
    assert "outside the workspace" in result.output and "not written" in result.output
    assert (outside / "secret.txt").read_text() == SECRET + "\n"
    assert link.is_symlink()


def test_edit_swapped_to_outside_after_approval_is_refused(layout: tuple[Path, Path]) -> None:
    workspace, outside = layout
    link = workspace / "link.txt"
    (outside / "secret.txt").write_text("inside\n")  # the edit would apply to it too
    point(link, "inside.txt")
    arguments = {"path": "link.txt", "old_string": "inside", "new_string": "pwned"}
    tool_call = call("edit_file", arguments)

    def approve_then_swap(action: AskApproval) -> ApprovalDecision:
        point(link, outside / "secret.txt")  # while the user reads the prompt
        return ApprovalDecision(action.call.id, Verdict.APPROVE)

    live = performer(workspace, approve_then_swap)
    live.ask_approval(AskApproval(call=tool_call, arguments=arguments, reason="r"))
    result = live.run_tool(RunTool(call=tool_call, arguments=arguments))
    assert isinstance(result, ToolResult)
    assert result.is_error
    assert "not read" in result.output
    assert (outside / "secret.txt").read_text() == "inside\n"


def test_a_directory_swapped_for_a_link_while_the_file_is_opened_is_refused(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swap after the path was resolved at use, before the walk reaches it."""
    workspace, outside = layout
    (workspace / "sub").mkdir()
    (workspace / "sub" / "f.txt").write_text(INSIDE + "\n")
    (outside / "sub").mkdir()
    (outside / "sub" / "f.txt").write_text(SECRET + "\n")
    live = performer(workspace)
    tool_call = call("read_file", {"path": "sub/f.txt"})
    facts = live.check_tool_call(CheckToolCall(call=tool_call, path="sub/f.txt"))
    assert isinstance(facts, ToolCallFacts) and facts.inside_workspace

    real_open = os.open

    def open_after_swapping(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(os.fsdecode(path)) == workspace:  # the walk starts at the workspace
            (workspace / "sub").rename(workspace / "sub.old")
            (workspace / "sub").symlink_to(outside / "sub")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_after_swapping)
    result = live.run_tool(RunTool(call=tool_call, arguments={"path": "sub/f.txt"}))
    monkeypatch.undo()
    assert isinstance(result, ToolResult)
    assert result.is_error
    assert SECRET not in result.output
    assert "changed after it was checked" in result.output


def test_a_directory_swapped_for_a_link_while_writing_is_refused(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, outside = layout
    (workspace / "sub").mkdir()
    (outside / "sub").mkdir()
    live = performer(workspace)
    arguments = {"path": "sub/new/f.txt", "content": "pwned\n"}
    tool_call = call("write_file", arguments)
    live.ask_approval(AskApproval(call=tool_call, arguments=arguments, reason="r"))

    real_open = os.open

    def open_after_swapping(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(os.fsdecode(path)) == workspace:
            (workspace / "sub").rename(workspace / "sub.old")
            (workspace / "sub").symlink_to(outside / "sub")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_after_swapping)
    result = live.run_tool(RunTool(call=tool_call, arguments=arguments))
    monkeypatch.undo()
    assert isinstance(result, ToolResult)
    assert result.is_error
    assert "not written" in result.output
    assert list((outside / "sub").iterdir()) == []


# --- what still runs unconfined -----------------------------------------------------------------


def test_a_read_approved_as_outside_runs_as_asked(layout: tuple[Path, Path]) -> None:
    workspace, outside = layout
    point(workspace / "link.txt", outside / "secret.txt")
    live = performer(workspace)
    arguments = {"path": "link.txt"}
    tool_call = call("read_file", arguments)
    facts = live.check_tool_call(CheckToolCall(call=tool_call, path="link.txt"))
    assert isinstance(facts, ToolCallFacts) and not facts.inside_workspace
    live.ask_approval(AskApproval(call=tool_call, arguments=arguments, reason="outside"))
    result = live.run_tool(RunTool(call=tool_call, arguments=arguments))
    assert isinstance(result, ToolResult)
    assert SECRET in result.output


def test_a_write_approved_as_outside_runs_as_asked(layout: tuple[Path, Path]) -> None:
    workspace, outside = layout
    point(workspace / "link.txt", outside / "secret.txt")
    live = performer(workspace)
    arguments = {"path": "link.txt", "content": "approved\n"}
    tool_call = call("write_file", arguments)
    live.ask_approval(AskApproval(call=tool_call, arguments=arguments, reason="r"))
    result = live.run_tool(RunTool(call=tool_call, arguments=arguments))
    assert isinstance(result, ToolResult)
    assert not result.is_error
    assert (outside / "secret.txt").read_text() == "approved\n"


def test_an_unchecked_call_runs_unconfined(layout: tuple[Path, Path]) -> None:
    """Auto-approval (or "always") asks nothing and checks nothing: the user allowed everything."""
    workspace, outside = layout
    point(workspace / "link.txt", outside / "secret.txt")
    live = performer(workspace)
    arguments = {"path": "link.txt"}
    result = live.run_tool(RunTool(call=call("read_file", arguments), arguments=arguments))
    assert isinstance(result, ToolResult)
    assert SECRET in result.output


def test_a_denied_call_leaves_nothing_behind(layout: tuple[Path, Path]) -> None:
    workspace, _ = layout

    def deny(action: AskApproval) -> ApprovalDecision:
        return ApprovalDecision(action.call.id, Verdict.DENY)

    live = performer(workspace, deny)
    arguments = {"path": "inside.txt", "content": "x"}
    live.ask_approval(AskApproval(call=call("write_file", arguments), arguments=arguments, reason="r"))
    assert live._seen_inside == {}
