"""Approval: refused without a terminal, --yes, paths outside the workspace, y/n/a on a real pty."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cli_helpers import PROMPT, Agent, Terminal, kill_if_running, tool_messages
from message_text import text

from nano_code.testing.fake_server import reply


def _mixed_calls() -> list[tuple[str, dict[str, str]]]:
    return [
        ("read_file", {"path": "inside.txt"}),
        ("shell", {"command": "echo ran > made-by-shell.txt"}),
        ("write_file", {"path": "written.txt", "content": "new\n"}),
    ]


def test_without_terminal_or_yes_changes_are_refused_and_reads_run(agent: Agent) -> None:
    (agent.workspace / "inside.txt").write_text("readable without asking\n")
    server = agent.serve([reply(tool_calls=_mixed_calls()), reply(content="I could only read.")])
    result = agent.run("-p", "do three things")

    assert result.returncode == 0, result.stderr
    assert not (agent.workspace / "made-by-shell.txt").exists()
    assert not (agent.workspace / "written.txt").exists()
    read, shell, write = (text(m) for m in tool_messages(agent.bodies(server)[1]))
    assert "readable without asking" in read
    for refused in (shell, write):
        assert "Not run" in refused
        assert "not approve" in refused
        assert "no terminal" in refused
    assert "refused shell" in result.stderr
    assert "refused write_file" in result.stderr
    assert "--yes" in result.stderr
    assert "I could only read." in result.stdout


def test_yes_approves_every_call(agent: Agent) -> None:
    (agent.workspace / "inside.txt").write_text("readable without asking\n")
    server = agent.serve([reply(tool_calls=_mixed_calls()), reply(content="All done.")])
    result = agent.run("-p", "do three things", "--yes")

    assert result.returncode == 0, result.stderr
    assert (agent.workspace / "made-by-shell.txt").read_text() == "ran\n"
    assert (agent.workspace / "written.txt").read_text() == "new\n"
    answers = [text(m) for m in tool_messages(agent.bodies(server)[1])]
    assert not any("Not run" in answer for answer in answers)
    assert "refused" not in result.stderr


def test_reading_outside_the_workspace_needs_approval(agent: Agent, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"  # beside the workspace, not in it
    secret.write_text("outside-secret-4711\n")
    (agent.workspace / "inside.txt").write_text("inside text\n")
    server = agent.serve(
        [
            reply(
                tool_calls=[
                    ("read_file", {"path": str(secret)}),
                    ("read_file", {"path": "../outside.txt"}),
                    ("read_file", {"path": "/etc/passwd"}),
                    ("read_file", {"path": "inside.txt"}),
                ]
            ),
            reply(content="ok"),
        ]
    )
    result = agent.run("-p", "read them")

    assert result.returncode == 0, result.stderr
    *outside, inside = (text(m) for m in tool_messages(agent.bodies(server)[1]))
    for answer in outside:
        assert "Not run" in answer
        assert "outside-secret-4711" not in answer
        assert "root:" not in answer
    assert "inside text" in inside
    assert "outside-secret-4711" not in result.stdout + result.stderr


def test_interactive_approval_yes_no_with_reason_and_always(agent: Agent) -> None:
    server = agent.serve(
        [
            reply(tool_calls=[("shell", {"command": "echo approved > yes.txt"})]),
            reply(tool_calls=[("write_file", {"path": "no.txt", "content": "should not exist\n"})]),
            reply(tool_calls=[("shell", {"command": "echo one >> always.txt"})]),
            reply(tool_calls=[("shell", {"command": "echo two >> always.txt"})]),
            reply(content="Finished after your answers."),
        ]
    )
    terminal = Terminal()
    process = agent.spawn(
        "-p", "do the four steps", stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave
    )
    try:
        terminal.close_child_end()
        shown = terminal.read_until("Allow?")
        assert "echo approved > yes.txt" in shown
        terminal.write("y\n")

        shown = terminal.read_until("Allow?")
        assert "no.txt" in shown
        terminal.write("n\n")
        terminal.read_until("Tell the model why")
        terminal.write("use a better file name\n")

        shown = terminal.read_until("Allow?")
        assert "echo one >> always.txt" in shown
        terminal.write("a\n")

        terminal.read_until("Finished after your answers.")
        assert process.wait(timeout=15) == 0
        rest = terminal.drain()
    finally:
        kill_if_running(process)
        terminal.close()

    assert "Allow?" not in rest  # the second shell call was approved by "always"
    assert (agent.workspace / "yes.txt").read_text() == "approved\n"
    assert not (agent.workspace / "no.txt").exists()
    assert (agent.workspace / "always.txt").read_text() == "one\ntwo\n"
    bodies = agent.bodies(server)
    assert len(bodies) == 5
    denied = text(tool_messages(bodies[2])[-1])
    assert "Not run" in denied
    assert "use a better file name" in denied
    for approved in (bodies[1], bodies[3], bodies[4]):
        assert text(tool_messages(approved)[-1]) == "[exit status: 0]"


def test_end_of_input_at_the_prompt_denies(agent: Agent) -> None:
    """A terminal that closes (Ctrl-D) while asking: the call is refused, not run."""
    server = agent.serve(
        [reply(tool_calls=[("shell", {"command": "echo x > eof.txt"})]), reply(content="understood")]
    )
    terminal = Terminal()
    process = agent.spawn("-p", "try it", stdin=terminal.slave, stdout=subprocess.PIPE, stderr=terminal.slave)
    try:
        terminal.close_child_end()
        terminal.read_until("Allow?")
        terminal.write("\x04")  # Ctrl-D on an empty line: end of input
        out, _ = process.communicate(timeout=15)
    finally:
        kill_if_running(process)
        terminal.close()

    assert process.returncode == 0
    assert b"understood" in out
    assert not (agent.workspace / "eof.txt").exists()
    assert "Not run" in text(tool_messages(agent.bodies(server)[1])[-1])


def test_interactive_session_on_a_terminal(agent: Agent) -> None:
    """No -p and a terminal on stdin: a prompt, a turn with an approval, then an empty line quits."""
    server = agent.serve(
        [
            reply(tool_calls=[("write_file", {"path": "greeting.txt", "content": "hello\n"})]),
            reply(content="Wrote greeting.txt."),
            reply(content="You are welcome."),
        ]
    )
    terminal = Terminal()
    process = agent.spawn(stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave)
    try:
        terminal.close_child_end()
        terminal.read_until(PROMPT)
        terminal.write("write a greeting file\n")
        assert "greeting.txt" in terminal.read_until("Allow?")
        terminal.write("y\n")
        terminal.read_until("Wrote greeting.txt.")
        terminal.read_until(PROMPT)
        terminal.write("thanks\n")
        terminal.read_until("You are welcome.")
        terminal.read_until(PROMPT)
        terminal.write("\n")
        assert process.wait(timeout=15) == 0
    finally:
        kill_if_running(process)
        terminal.close()

    assert (agent.workspace / "greeting.txt").read_text() == "hello\n"
    bodies = agent.bodies(server)
    assert len(bodies) == 3
    # the second turn continues the same conversation
    users = [text(m) for m in bodies[2]["messages"] if m["role"] == "user"]
    assert users == ["write a greeting file", "thanks"]
    (path,) = agent.session_files()
    assert path.stat().st_size > 0
