"""Real commands through bubblewrap: what the sandbox lets a command do, and what it stops.

Every test runs the shell tool (or `run_command`) with a `Sandbox` and checks
the effect from outside: files that did or did not appear, processes that are
or are not left, connections that did or did not get through. Skipped, with
one reason, where bwrap is missing or does not work.
"""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_helpers import RO, WW, needs_bwrap

from nano_code.adapters.sandbox import Sandbox
from nano_code.adapters.shell import Ending, run_command
from nano_code.adapters.tool import ToolContext, ToolOutcome
from nano_code.adapters.tools import run_tool
from nano_code.kernel.types import SandboxMode

pytestmark = needs_bwrap


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def outside() -> Iterator[Path]:
    """A writable directory outside both the workspace and /tmp (so visible, read-only, in the sandbox)."""
    for parent in ("/var/tmp", str(Path.home()), os.getcwd()):
        try:
            path = Path(tempfile.mkdtemp(prefix="nano-code-sandbox-test-", dir=parent)).resolve()
        except OSError:
            continue
        if not path.is_relative_to("/tmp"):
            try:
                yield path
            finally:
                subprocess.run(["rm", "-rf", str(path)], check=False)
            return
    pytest.skip("no writable directory outside /tmp for this test")


def context(
    workspace: Path, mode: SandboxMode = WW, *, network: bool = False, **options: float
) -> ToolContext:
    box = Sandbox(mode, network=network, workspace=workspace)
    return ToolContext(workspace=workspace, sandbox=box, **options)  # type: ignore[arg-type]


def shell(ctx: ToolContext, command: str) -> ToolOutcome:
    return run_tool("shell", {"command": command}, ctx)


def write(ctx: ToolContext, path: str | Path, content: str = "x") -> ToolOutcome:
    return run_tool("write_file", {"path": str(path), "content": content}, ctx)


def processes_with(marker: str) -> list[int]:
    """Pids of running processes named `marker...` (started with `exec -a marker...`).

    Only the name (argv[0]) counts: the shells and bwrap that started them have
    the marker further along their command lines.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                name = cmdline.read().split(b"\0", 1)[0]
            with open(f"/proc/{entry}/stat", "rb") as stat:
                state = stat.read().rpartition(b")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if name.startswith(marker.encode()) and state != b"Z":
            found.append(int(entry))
    return found


def gone(marker: str, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while processes_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_all(marker: str) -> None:
    for pid in processes_with(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def a_marker() -> str:
    return f"nc-sbx-{uuid.uuid4().hex[:12]}"


# --- the filesystem ------------------------------------------------------------------------------


def test_the_workspace_is_writable(workspace: Path) -> None:
    outcome = shell(context(workspace), "echo made > made.txt && mkdir -p sub && echo deep > sub/d.txt")
    assert outcome.exit_status == 0, outcome.output
    assert (workspace / "made.txt").read_text() == "made\n"
    assert (workspace / "sub" / "d.txt").read_text() == "deep\n"


def test_a_workspace_outside_tmp_is_writable_too(outside: Path) -> None:
    outcome = shell(context(outside), "echo made > made.txt && pwd -P")
    assert outcome.exit_status == 0, outcome.output
    assert outcome.output.strip() == str(outside)
    assert (outside / "made.txt").read_text() == "made\n"


def test_a_write_outside_the_workspace_fails(workspace: Path, outside: Path) -> None:
    target = outside / "escaped.txt"
    outcome = shell(context(workspace), f"echo no > '{target}'")
    assert outcome.exit_status != 0
    assert "Read-only file system" in outcome.output
    assert not target.exists()
    assert "Read-only file system" in shell(context(workspace), f"touch '{Path.home()}/.nc-sbx-probe'").output


def test_the_outside_is_readable(workspace: Path, outside: Path) -> None:
    (outside / "note.txt").write_text("readable\n")
    assert shell(context(workspace), f"cat '{outside}/note.txt'").output == "readable\n"


def test_read_only_mode_cannot_write_the_workspace(workspace: Path) -> None:
    (workspace / "keep.txt").write_text("original\n")
    outcome = shell(context(workspace, RO), "echo changed > keep.txt; echo new > new.txt; cat keep.txt")
    assert "Read-only file system" in outcome.output
    assert (workspace / "keep.txt").read_text() == "original\n"
    assert not (workspace / "new.txt").exists()
    assert "original" in outcome.output  # still readable


def test_read_only_mode_still_has_a_private_tmp(workspace: Path) -> None:
    outcome = shell(context(workspace, RO), "echo t > /tmp/t && cat /tmp/t && echo $TMPDIR")
    assert outcome == ToolOutcome("t\n/tmp\n", exit_status=0)


@pytest.mark.parametrize("mode", [WW, RO])
def test_tmp_is_private_both_ways(workspace: Path, mode: SandboxMode) -> None:
    name = a_marker()
    seen_inside = Path(tempfile.gettempdir()) / f"{name}-outside"
    seen_inside.write_text("host\n")
    try:
        outcome = shell(
            context(workspace, mode), f"test -e /tmp/{name}-outside && echo shared; echo in > /tmp/{name}"
        )
        assert outcome == ToolOutcome("", exit_status=0)
        assert not Path(f"/tmp/{name}").exists()
    finally:
        seen_inside.unlink()


def test_each_command_gets_a_fresh_tmp(workspace: Path) -> None:
    ctx = context(workspace)
    shell(ctx, "echo left > /tmp/left-behind")
    assert shell(ctx, "cat /tmp/left-behind 2>&1; true").output.endswith("No such file or directory\n")


def test_root_cannot_remount_its_way_out(workspace: Path) -> None:
    outcome = shell(context(workspace), "mount -o remount,rw / 2>&1; touch /etc/nc-sbx-probe 2>&1")
    assert "Read-only file system" in outcome.output
    assert not Path("/etc/nc-sbx-probe").exists()


# --- the network ---------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


CONNECT = "exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"


def test_no_network_by_default(workspace: Path, listener: int) -> None:
    outcome = shell(context(workspace), CONNECT.format(port=listener))
    assert "connected" not in outcome.output
    assert outcome.exit_status != 0


def test_network_when_asked(workspace: Path, listener: int) -> None:
    outcome = shell(context(workspace, network=True), CONNECT.format(port=listener))
    assert outcome == ToolOutcome("connected\n", exit_status=0)


def test_without_network_local_daemon_sockets_in_run_are_hidden(workspace: Path) -> None:
    assert shell(context(workspace), "ls -A /run | wc -l").output.strip() == "0"


# --- processes -----------------------------------------------------------------------------------


def test_a_background_child_does_not_survive_the_command(workspace: Path) -> None:
    marker = a_marker()
    started = time.monotonic()
    outcome = shell(
        context(workspace),
        f"(exec -a {marker} sleep 30) & (sleep 0.5; echo late > late.txt) > /dev/null 2>&1 & echo started",
    )
    try:
        assert time.monotonic() - started < 5
        assert outcome == ToolOutcome("started\n", exit_status=0)  # no "left running" note: nothing is
        assert gone(marker, within=2.0), "the background child outlived its command"
        time.sleep(1.0)
        assert not (workspace / "late.txt").exists()
    finally:
        kill_all(marker)


def test_nohup_and_setsid_do_not_escape_either(workspace: Path) -> None:
    marker = a_marker()
    outcome = shell(
        context(workspace),
        f"nohup bash -c 'exec -a {marker}-a sleep 30' >/dev/null 2>&1 & "
        f"setsid bash -c 'exec -a {marker}-b sleep 30' >/dev/null 2>&1 < /dev/null & echo ok",
    )
    try:
        assert outcome.exit_status == 0
        assert gone(marker, within=2.0)
    finally:
        kill_all(marker)


def test_timeout_kills_everything_inside(workspace: Path) -> None:
    marker = a_marker()
    ctx = context(workspace, shell_timeout=1.0)
    started = time.monotonic()
    outcome = shell(
        ctx, f"echo before; trap '' TERM; (exec -a {marker} sleep 30) & exec -a {marker}-fg sleep 30"
    )
    try:
        assert time.monotonic() - started < 6
        assert outcome.is_error and outcome.exit_status is None
        assert "did not finish within 1 s" in outcome.output and "before" in outcome.output
        assert "background processes end with the command" in outcome.output
        assert gone(marker)
    finally:
        kill_all(marker)


def test_output_is_still_bounded(workspace: Path) -> None:
    ctx = context(workspace, output_head_bytes=1000, output_tail_bytes=1000)
    outcome = shell(ctx, "head -c 500000 /dev/zero | tr '\\0' a; echo; echo end")
    assert outcome.exit_status == 0
    assert "[... " in outcome.output and "bytes omitted ...]" in outcome.output
    assert outcome.output.endswith("end\n")
    assert len(outcome.output) < 2200


def test_exit_status_comes_through(workspace: Path) -> None:
    assert shell(context(workspace), "echo out; exit 3") == ToolOutcome("out\n", exit_status=3)


def test_the_command_runs_in_its_own_pid_namespace(workspace: Path) -> None:
    outcome = shell(context(workspace), "ls /proc | grep -c '^[0-9]'; kill -0 1 && echo pid1-is-ours")
    count, line = outcome.output.split()
    assert int(count) < 10 and line == "pid1-is-ours"


def test_the_sandbox_dies_with_nano_code(workspace: Path) -> None:
    """kill -9 of the process that started the command still ends the command (--die-with-parent)."""
    marker = a_marker()
    program = textwrap.dedent(
        f"""
        from pathlib import Path
        from nano_code.adapters.sandbox import Sandbox
        from nano_code.adapters.shell import run_command
        from nano_code.kernel.types import SandboxMode
        ws = Path({str(workspace)!r})
        run_command("exec -a {marker} sleep 30", ws, timeout=60,
                    sandbox=Sandbox(SandboxMode.WORKSPACE_WRITE, network=False, workspace=ws))
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", program])
    try:
        deadline = time.monotonic() + 10
        while not processes_with(marker):
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.05)
        parent.kill()
        parent.wait()
        assert gone(marker), "the sandboxed command outlived nano-code"
    finally:
        parent.kill()
        kill_all(marker)


# --- the terminal --------------------------------------------------------------------------------


def test_the_command_cannot_reach_the_users_terminal(workspace: Path) -> None:
    controller, terminal = pty.openpty()
    try:
        name = os.ttyname(terminal)
        outcome = shell(
            context(workspace),
            f"exec 3</dev/tty && echo has-tty; test -e {name} && echo sees-{name}; "
            f"exec 4>{name} && echo opened",
        )
        assert "has-tty" not in outcome.output
        assert "sees-" not in outcome.output
        assert "opened" not in outcome.output
    finally:
        os.close(controller)
        os.close(terminal)


def test_run_command_with_a_sandbox_reports_as_without(workspace: Path) -> None:
    box = Sandbox(WW, network=False, workspace=workspace)
    result = run_command("echo hi; sleep 30 &", workspace, timeout=10, sandbox=box)
    assert result.ending is Ending.EXITED
    assert result.output == "hi\n" and result.exit_status == 0


# --- the file tools agree with the shell ---------------------------------------------------------


def created_by_shell(ctx: ToolContext, path: Path) -> bool:
    shell(ctx, f"printf x > '{path}'")
    return path.exists()


def created_by_tool(ctx: ToolContext, path: Path) -> bool:
    """As after the user approved the call: the tool runs unconfined unless the sandbox confines it."""
    write(ctx, path)
    return path.exists()


@pytest.mark.parametrize("mode", [WW, RO])
def test_file_tools_and_shell_agree_on_the_boundary(
    workspace: Path, outside: Path, mode: SandboxMode
) -> None:
    (workspace / "link-out").symlink_to(outside)
    ctx = context(workspace, mode)
    tmp_name = a_marker()
    paths = {
        "inside": lambda who: workspace / f"{who}-in.txt",
        "new directory inside": lambda who: workspace / f"{who}-dir" / "f.txt",
        "outside": lambda who: outside / f"{who}-out.txt",
        "through a symlink out": lambda who: workspace / "link-out" / f"{who}-link.txt",
        "the real /tmp": lambda who: Path(f"/tmp/{tmp_name}-{who}"),
    }
    expected_writable = {"inside", "new directory inside"} if mode is WW else set()
    try:
        for label, path_for in paths.items():
            by_shell = path_for("shell")
            by_tool = path_for("tool")
            if label == "new directory inside":
                shell(ctx, f"mkdir -p '{by_shell.parent}'")
            shell_wrote = created_by_shell(ctx, by_shell)
            tool_wrote = created_by_tool(ctx, by_tool)
            assert shell_wrote == tool_wrote == (label in expected_writable), (label, shell_wrote, tool_wrote)
    finally:
        for path_for in paths.values():
            for who in ("shell", "tool"):
                path_for(who).unlink(missing_ok=True)


def test_the_file_tools_say_why_they_refuse(workspace: Path, outside: Path) -> None:
    refused = write(context(workspace), outside / "x.txt")
    assert refused.is_error
    assert "outside the workspace" in refused.output and "workspace-write" in refused.output
    tmp = write(context(workspace), "/tmp/nc-sbx-x.txt")
    assert tmp.is_error and "outside the workspace" in tmp.output
    read_only = write(context(workspace, RO), "inside.txt")
    assert read_only.is_error and "read-only" in read_only.output
    assert not (workspace / "inside.txt").exists()


def test_edit_file_keeps_to_the_boundary_too(workspace: Path, outside: Path) -> None:
    (outside / "e.txt").write_text("old\n")
    (workspace / "e.txt").write_text("old\n")
    edit = {"old_string": "old", "new_string": "new"}
    out = run_tool("edit_file", {"path": str(outside / "e.txt"), **edit}, context(workspace))
    assert out.is_error and (outside / "e.txt").read_text() == "old\n"
    ro = run_tool("edit_file", {"path": "e.txt", **edit}, context(workspace, RO))
    assert ro.is_error and (workspace / "e.txt").read_text() == "old\n"
    ok = run_tool("edit_file", {"path": "e.txt", **edit}, context(workspace))
    assert not ok.is_error and (workspace / "e.txt").read_text() == "new\n"


def test_reads_outside_stay_possible(workspace: Path, outside: Path) -> None:
    """After approval, read_file reads outside like the sandboxed shell can."""
    (outside / "r.txt").write_text("seen\n")
    outcome = run_tool("read_file", {"path": str(outside / "r.txt")}, context(workspace, RO))
    assert outcome == ToolOutcome("     1\tseen")


# --- the repository's .git stays read-only --------------------------------------------------------


def test_a_sandboxed_command_cannot_plant_git_config_or_hooks(workspace: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    before = (workspace / ".git" / "config").read_text()
    ctx = context(workspace)
    planted = shell(ctx, 'printf "[filter \\"x\\"]\\n\\tclean = touch PWNED\\n" >> .git/config; echo done')
    assert "Read-only file system" in planted.output
    assert (workspace / ".git" / "config").read_text() == before
    hook = shell(ctx, "echo 'touch PWNED' > .git/hooks/pre-commit")
    assert "Read-only file system" in hook.output
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()
    # the rest of the workspace stays writable, and git can still read its repository
    assert shell(ctx, "echo ok > kept.txt && git status --porcelain").exit_status == 0
    assert (workspace / "kept.txt").read_text() == "ok\n"


def test_the_file_tools_keep_out_of_git_too(workspace: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    refused = write(context(workspace), ".git/hooks/post-checkout", "#!/bin/sh\ntouch PWNED\n")
    assert refused.is_error and ".git" in refused.output
    assert not (workspace / ".git" / "hooks" / "post-checkout").exists()


def test_a_workspace_without_git_still_runs(workspace: Path) -> None:
    assert shell(context(workspace), "echo fine > f.txt").exit_status == 0
    assert (workspace / "f.txt").read_text() == "fine\n"
