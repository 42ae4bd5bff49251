"""The sandbox from the command line: on by default where bwrap works, asking only for what
leaves it, recorded in the session, never turned off by a file, and refused loudly when asked
for and not available."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from cli_helpers import Agent, Terminal, kill_if_running
from message_text import text
from sandbox_helpers import BWRAP_PROBLEM, needs_bwrap

from nano_code.adapters.session_file import load_session
from nano_code.session.replay import replay_session
from nano_code.testing.fake_server import reply

DEFAULT = {"NANO_CODE_SANDBOX": None}  # the sandbox as a user gets it: nothing set


def _without_bwrap(tmp_path: Path) -> str:
    """A PATH with git but no bwrap."""
    bin_dir = tmp_path / "bin-without-bwrap"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git is not None
    (bin_dir / "git").symlink_to(git)
    return str(bin_dir)


@needs_bwrap
def test_by_default_commands_run_sandboxed_without_asking_and_writes_outside_are_refused(
    agent: Agent, tmp_path: Path
) -> None:
    outside = tmp_path / f"outside-{uuid.uuid4().hex[:6]}.txt"
    agent.serve(
        [
            reply(
                tool_calls=[
                    ("shell", {"command": "echo from-the-shell > made.txt; touch /tmp/host-marker-x"})
                ]
            ),
            reply(tool_calls=[("write_file", {"path": "inside.txt", "content": "in\n"})]),
            reply(tool_calls=[("write_file", {"path": str(outside), "content": "out\n"})]),
            reply(content="done"),
        ]
    )
    done = agent.run("-p", "make some files", "--record", "s.yaml", env=DEFAULT)
    assert done.returncode == 0, done.stderr
    assert (agent.workspace / "made.txt").read_text() == "from-the-shell\n"  # no question asked
    assert (agent.workspace / "inside.txt").read_text() == "in\n"
    assert not outside.exists()  # it leaves the sandbox: asked, and refused without a terminal
    assert "refused write_file" in done.stderr
    assert not Path("/tmp/host-marker-x").exists()  # the sandbox's /tmp is its own
    session = load_session(agent.workspace / "s.yaml")
    assert session.metadata["sandbox"]["in_force"] is True
    assert session.metadata["sandbox"]["mode"] == "workspace-write"
    assert session.metadata["settings"]["sandbox"] == "workspace-write"
    first = json.loads(next(session.request_bodies()) or "{}")
    assert "sandbox" in text(first["messages"][0])  # the model is told what it may do
    # the kernel's decisions under the sandbox replay exactly
    assert replay_session(agent.workspace / "s.yaml").status == "identical"


@needs_bwrap
def test_the_prompt_appears_only_for_what_leaves_the_sandbox(agent: Agent, tmp_path: Path) -> None:
    outside = tmp_path / "approved-outside.txt"
    agent.serve(
        [
            reply(tool_calls=[("shell", {"command": "echo ran > ran.txt"})]),
            reply(
                tool_calls=[("edit_file", {"path": "ran.txt", "old_string": "ran", "new_string": "edited"})]
            ),
            reply(tool_calls=[("write_file", {"path": str(outside), "content": "approved\n"})]),
            reply(content="all three done"),
        ]
    )
    terminal = Terminal()
    process = agent.spawn(
        "-p", "three steps", env=DEFAULT, stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave
    )
    try:
        terminal.close_child_end()
        shown = terminal.read_until("Allow?")
        assert "approved-outside.txt" in shown  # the first question is the write outside
        assert "echo ran" not in shown.split("Allow?")[0].split("write_file")[-1]
        terminal.write("y\n")
        terminal.read_until("all three done")
        assert process.wait(timeout=15) == 0
        rest = terminal.drain()
    finally:
        kill_if_running(process)
        terminal.close()
    assert "Allow?" not in rest
    assert (agent.workspace / "ran.txt").read_text() == "edited\n"
    assert outside.read_text() == "approved\n"  # the user's yes lets it leave the sandbox


def test_asking_for_a_sandbox_that_cannot_be_had_is_an_error(agent: Agent, tmp_path: Path) -> None:
    agent.serve([])
    done = agent.run("-p", "anything", "--sandbox", "workspace-write", env={"PATH": _without_bwrap(tmp_path)})
    assert done.returncode == 2
    assert "--sandbox workspace-write cannot be used" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_bwrap_the_default_is_off_with_one_line_saying_how(agent: Agent, tmp_path: Path) -> None:
    agent.serve([reply(tool_calls=[("shell", {"command": "echo hi > made.txt"})]), reply(content="ok")])
    done = agent.run(
        "-p", "make a file", "--record", "s.yaml", env={**DEFAULT, "PATH": _without_bwrap(tmp_path)}
    )
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if "sandbox off" in line]
    assert len(notices) == 1 and "bubblewrap" in notices[0]
    assert not (agent.workspace / "made.txt").exists()  # unsandboxed, it asks; no terminal: refused
    assert load_session(agent.workspace / "s.yaml").metadata["sandbox"]["in_force"] is False


def test_dot_env_cannot_turn_the_sandbox_off(agent: Agent) -> None:
    (agent.workspace / ".env").write_text("NANO_CODE_SANDBOX=off\nNANO_CODE_SANDBOX_NETWORK=1\n")
    agent.serve([reply(content="hello")])
    done = agent.run("-p", "hi", "--record", "s.yaml", env=DEFAULT)
    assert done.returncode == 0, done.stderr
    (ignored,) = [line for line in done.stderr.splitlines() if line.startswith("nano-code: ignoring")]
    assert "NANO_CODE_SANDBOX, NANO_CODE_SANDBOX_NETWORK in" in ignored  # one line names both
    recorded = load_session(agent.workspace / "s.yaml").metadata["sandbox"]
    assert recorded["requested"] == "default"
    if BWRAP_PROBLEM is None:
        assert recorded["in_force"] is True and recorded["network"] is False


@needs_bwrap
def test_a_resumed_session_gets_its_sandbox_from_this_command_line(agent: Agent) -> None:
    agent.serve([reply(content="first")])
    first = agent.run("-p", "hi", "--record", "s.yaml", "--sandbox", "off")
    assert first.returncode == 0, first.stderr
    assert load_session(agent.workspace / "s.yaml").metadata["settings"]["sandbox"] == "off"
    agent.serve(
        [reply(tool_calls=[("shell", {"command": "echo resumed > resumed.txt"})]), reply(content="ok")]
    )
    again = agent.run("--resume", "s.yaml", "-p", "go on", env=DEFAULT)
    assert again.returncode == 0, again.stderr
    assert (agent.workspace / "resumed.txt").read_text() == "resumed\n"  # sandboxed: no question
    journal = load_session(agent.workspace / "s.yaml").journal
    assert {"approval_mode": "ask", "sandbox": "workspace-write"} in [
        {k: v for k, v in entry.items() if k != "t_ms"} for entry in journal
    ]
    assert replay_session(agent.workspace / "s.yaml").status == "identical"


@needs_bwrap
def test_live_tools_of_a_replay_run_in_the_sandbox(agent: Agent, tmp_path: Path) -> None:
    marker = f"/tmp/replay-marker-{uuid.uuid4().hex[:8]}"
    agent.serve(
        [reply(tool_calls=[("shell", {"command": f"touch {marker}; echo done"})]), reply(content="ok")]
    )
    recorded = agent.run("-p", "touch it", "--record", "s.yaml", "--yes", "--sandbox", "off")
    assert recorded.returncode == 0, recorded.stderr
    os.unlink(marker)  # recorded unsandboxed: it really touched the host's /tmp
    done = agent.run("replay", "--live-tools", "s.yaml", env=DEFAULT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "identical" in done.stdout
    assert not os.path.exists(marker)  # the replay's live tools ran in the sandbox's private /tmp


def test_live_tools_without_a_sandbox_say_so(agent: Agent, tmp_path: Path) -> None:
    agent.serve([reply(tool_calls=[("shell", {"command": "echo hi"})]), reply(content="ok")])
    assert agent.run("-p", "say hi", "--record", "s.yaml", "--yes").returncode == 0
    done = agent.run(
        "replay",
        "--live-tools",
        "--rerun-recorded",
        "s.yaml",
        env={**DEFAULT, "PATH": _without_bwrap(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sandbox off" in done.stderr and "live tools ran unsandboxed" in done.stderr


def test_a_bad_sandbox_setting_for_live_tools_is_a_usage_error(agent: Agent) -> None:
    agent.serve([reply(content="ok")])
    assert agent.run("-p", "hi", "--record", "s.yaml").returncode == 0
    done = agent.run("replay", "--live-tools", "--yes", "s.yaml", env={"NANO_CODE_SANDBOX": "bogus"})
    assert done.returncode == 2
    assert "NANO_CODE_SANDBOX must be one of workspace-write/read-only/off" in done.stderr
    assert "internal error" not in done.stderr
