"""How a session ends: SIGTERM, background processes, resuming elsewhere, a bad endpoint URL."""

from __future__ import annotations

import random
import signal
import subprocess
import time

from cli_helpers import Agent, assert_one_clean_error, kill_if_running, processes_with, wait_for
from message_text import text

from nano_code.testing.fake_server import reply


def _marker() -> str:
    return f"sleep 40.{random.randrange(10**6):06d}"  # unique in this machine's process list


def test_sigterm_during_a_command_cleans_up_and_exits_143(agent: Agent) -> None:
    marker = _marker()
    agent.serve([reply(tool_calls=[("shell", {"command": marker})]), reply(content="never asked")])
    process = agent.spawn("-p", "wait", "--yes", text=True)
    try:
        assert wait_for(lambda: bool(processes_with(marker)), timeout=15), "the command never started"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=8)
    finally:
        kill_if_running(process)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    assert wait_for(lambda: not processes_with(marker), timeout=3), processes_with(marker)


def test_a_background_process_does_not_outlive_the_session(agent: Agent) -> None:
    marker = _marker()
    agent.serve([reply(tool_calls=[("shell", {"command": f"{marker} & echo started"})]), reply(content="ok")])
    result = agent.run("-p", "start something in the background", "--yes")
    assert result.returncode == 0, result.stderr
    tool_message = text(agent.bodies()[1]["messages"][-1])
    assert "started" in tool_message and "until nano-code exits" in tool_message
    assert wait_for(lambda: not processes_with(marker), timeout=3), processes_with(marker)


def test_resume_from_another_directory_is_refused(agent: Agent) -> None:
    agent.serve([reply(content="done")])
    session = agent.workspace / "s.yaml"
    assert agent.run("-p", "hi", "--record", str(session)).returncode == 0
    elsewhere = agent.workspace / "sub"
    elsewhere.mkdir()
    moved = subprocess.run(
        agent.command(["--resume", str(session), "-p", "more"]),
        cwd=elsewhere,
        env=agent.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert moved.returncode == 2
    assert "cd there to resume" in moved.stderr
    assert_one_clean_error(moved.stderr)


def test_an_endpoint_with_an_impossible_port_is_a_configuration_error(agent: Agent) -> None:
    result = agent.run("-p", "hi", env={"INFERENCE_BASE_URL": "http://127.0.0.1:99999/v1"}, timeout=10)
    assert result.returncode == 2
    assert "INFERENCE_BASE_URL" in result.stderr
    assert_one_clean_error(result.stderr)


def test_two_quick_ctrl_c_during_a_command_quit_the_interactive_session(agent: Agent) -> None:
    from cli_helpers import PROMPT, Terminal

    marker = _marker()
    agent.serve([reply(tool_calls=[("shell", {"command": marker})]), reply(content="never asked")])
    terminal = Terminal()
    process = agent.spawn("--yes", stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave)
    try:
        terminal.close_child_end()
        terminal.read_until(PROMPT)
        terminal.write("wait for me\n")
        assert wait_for(lambda: bool(processes_with(marker)), timeout=15), terminal.drain(0.2)
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)  # two presses of a person, not one coalesced signal
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 130, terminal.drain(0.5)
    finally:
        kill_if_running(process)
        terminal.close()
    assert wait_for(lambda: not processes_with(marker), timeout=3), processes_with(marker)
