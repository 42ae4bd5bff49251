"""Ctrl-C (SIGINT) in one-shot mode: exit 130 quickly, no command left behind, the session stays loadable."""

from __future__ import annotations

import random
import signal
import subprocess

from cli_helpers import PROMPT, Agent, Terminal, kill_if_running, processes_with, wait_for
from message_text import text

from nano_code.adapters.session_file import load_session
from nano_code.testing.fake_server import hang, reply

EXIT_LIMIT = 8.0
"""Generous bound on how long nano-code may take to exit after Ctrl-C."""


def test_ctrl_c_during_a_shell_command_kills_it_and_exits_130(agent: Agent) -> None:
    marker = f"sleep 30.{random.randrange(10**6):06d}"  # unique in this machine's process list
    command = f"{marker}; touch after-sleep.txt"
    server = agent.serve([reply(tool_calls=[("shell", {"command": command})]), reply(content="never asked")])
    process = agent.spawn("-p", "sleep a while", "--yes", text=True)
    try:
        assert wait_for(lambda: len(processes_with(marker)) >= 1, timeout=15), "the command never started"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=EXIT_LIMIT)
    finally:
        kill_if_running(process)

    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert wait_for(lambda: not processes_with(marker), timeout=3), f"left running: {processes_with(marker)}"
    assert not (agent.workspace / "after-sleep.txt").exists()  # the shell did not go on after sleep
    assert len(server.requests) == 1  # the turn ended; the model was not asked again

    (path,) = agent.session_files()
    session = load_session(path)
    interrupts = [r for r in session.journal if (r.get("event") or {}).get("type") == "Interrupt"]
    assert interrupts, session.journal
    assert interrupts[0].get("call", {}).get("name") == "shell"
    ends = [r["turn_end"] for r in session.journal if "turn_end" in r]
    assert ends and ends[-1]["reason"] == "interrupted"


def test_ctrl_c_while_waiting_for_the_model_exits_130(agent: Agent) -> None:
    server = agent.serve([hang(10)])
    process = agent.spawn("-p", "think hard", text=True, stdout=subprocess.PIPE)
    try:
        assert wait_for(lambda: len(server.requests) == 1, timeout=15), "no request reached the server"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=EXIT_LIMIT)
    finally:
        kill_if_running(process)

    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "too late" not in out
    (path,) = agent.session_files()
    ends = [r["turn_end"] for r in load_session(path).journal if "turn_end" in r]
    assert ends and ends[-1]["reason"] == "interrupted"


def test_ctrl_c_while_a_reply_streams_in_exits_130(agent: Agent) -> None:
    words = " ".join(f"word{n}" for n in range(400))
    server = agent.serve([reply(content=words, chunk_delay=0.02)])
    process = agent.spawn("-p", "talk", text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.read(10)  # the answer has started to arrive
        assert first.startswith("word0")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=EXIT_LIMIT)
    finally:
        kill_if_running(process)

    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "word399" not in out
    assert len(server.requests) == 1


def test_ctrl_c_in_an_interactive_session_ends_the_turn_not_the_session(agent: Agent) -> None:
    marker = f"sleep 30.{random.randrange(10**6):06d}"
    server = agent.serve(
        [
            reply(tool_calls=[("shell", {"command": marker})]),
            reply(content="Second turn answered."),
        ]
    )
    terminal = Terminal()
    process = agent.spawn("--yes", stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave)
    try:
        terminal.close_child_end()
        terminal.read_until(PROMPT)
        terminal.write("sleep for me\n")
        assert wait_for(lambda: len(processes_with(marker)) >= 1, timeout=15), terminal.drain(0.2)
        process.send_signal(signal.SIGINT)
        terminal.read_until("interrupted")
        terminal.read_until(PROMPT)  # back at the prompt, still running
        assert process.poll() is None
        assert wait_for(lambda: not processes_with(marker), timeout=3)
        terminal.write("go on\n")
        terminal.read_until("Second turn answered.")
        terminal.read_until(PROMPT)
        terminal.write("\n")
        assert process.wait(timeout=EXIT_LIMIT) == 0
    finally:
        kill_if_running(process)
        terminal.close()

    second = agent.bodies(server)[1]
    (answer,) = [m for m in second["messages"] if m["role"] == "tool"]
    assert "interrupted" in text(answer)
    assert [text(m) for m in second["messages"] if m["role"] == "user"] == ["sleep for me", "go on"]
