"""The real command from start to finish: a run with tools, several steps and a recording
completes its task, and a run that ends before any request ends with one clear line."""

from __future__ import annotations

import subprocess

import pytest
from cli_helpers import Agent, assert_one_clean_error
from message_text import text

from nano_code.testing.fake_server import reply


@pytest.mark.parametrize(
    "flags",
    [["--no-record", "--no-stream"], ["--stream"], ["--no-stream", "--sandbox", "off"]],
    ids=["no-record", "recording-stream", "recording-json"],
)
def test_a_run_finishes_its_task_through_tools_and_several_steps(agent: Agent, flags: list[str]) -> None:
    server = agent.serve(
        [
            reply(tool_calls=[("shell", {"command": "echo one"})]),
            reply(tool_calls=[("write_file", {"path": "note.txt", "content": "two\n"})]),
            reply(content="all done"),
        ]
    )
    done = agent.run("-p", "run two steps", "--yes", *flags)
    assert done.returncode == 0, done.stderr
    assert "all done" in done.stdout
    assert (agent.workspace / "note.txt").read_text() == "two\n"
    assert len(server.requests) == 3
    tool_outputs = [text(m) for m in server.requests[2]["body"]["messages"] if m["role"] == "tool"]
    assert "one" in tool_outputs[0]
    if "--no-record" not in flags:
        [recording] = agent.session_files()
        replayed = subprocess.run(
            [str(agent.command([])[0]), "replay", "-q", str(recording)],
            capture_output=True,
            text=True,
            env=agent.env(),
            timeout=60,
        )
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_a_run_that_ends_before_any_request_still_ends_cleanly(agent: Agent) -> None:
    """No request ever goes out (a configuration error): one clear line."""
    done = agent.run("-p", "hi", "--no-record", env={"INFERENCE_BASE_URL": "http://127.0.0.1:99999/v1"})
    assert done.returncode == 2
    assert_one_clean_error(done.stderr)
