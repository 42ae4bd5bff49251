"""Issue 7, items 11e and 11f, and `.env` granting no authority."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Agent, tool_messages
from message_text import text
from trust_helpers import RawServer, answer, broken_off, run_measured

from nano_code.cli.run import plain_http_to_another_host
from nano_code.testing.fake_server import reply

BROKEN = "PARTIAL-ONE two three four five six"
"""Streamed 12 characters per event: 'PARTIAL-ONE ' and 'two three fo' arrive before the break."""


def _broken_then_answered(agent: Agent, tmp_path: Path, to_file: bool) -> tuple[str, str]:
    with RawServer([broken_off(BROKEN, keep_events=3), answer("FINAL-ANSWER")]) as server:
        env = agent.env({"INFERENCE_BASE_URL": server.base_url})
        command = agent.command(["-p", "hi"])
        if to_file:
            answer_file = tmp_path / "answer.txt"
            with answer_file.open("wb") as handle:
                done = run_measured(command, agent.workspace, env, timeout=20, stdout=handle)
            out = answer_file.read_text()
        else:
            done = run_measured(command, agent.workspace, env, timeout=20)
            out = done.stdout
        assert len(server.connections) == 2
    assert done.returncode == 0, done.stderr
    assert "retrying" in done.stderr, done.stderr
    return out, done.stderr


def test_11e_a_reply_that_broke_off_leaves_nothing_in_an_output_file(agent: Agent, tmp_path: Path) -> None:
    out, _ = _broken_then_answered(agent, tmp_path, to_file=True)
    assert out == "FINAL-ANSWER\n"


def test_11e_a_reply_that_broke_off_is_marked_on_a_pipe(agent: Agent, tmp_path: Path) -> None:
    out, _ = _broken_then_answered(agent, tmp_path, to_file=False)
    assert out == "PARTIAL-ONE two three fo [the reply broke off here]\nFINAL-ANSWER\n", out


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://127.0.0.1:8080/v1", False),
        ("http://127.0.0.5/v1", False),
        ("http://localhost:1234/v1", False),
        ("http://LOCALHOST/v1", False),
        ("http://api.localhost/v1", False),
        ("http://[::1]:8000/v1", False),
        ("https://x/v1", False),
        ("https://example.com/v1", False),
        ("https://192.168.1.5/v1", False),
        ("http://192.168.1.5/v1", True),
        ("http://10.0.0.1:4000/v1", True),
        ("http://example.com/v1", True),
        ("HTTP://example.com/v1", True),
        ("http://localhost.example.com/v1", True),
        ("http://127.0.0.1.nip.io/v1", True),
        ("http://[2001:db8::1]/v1", True),
    ],
)
def test_11f_plain_http_to_another_host(url: str, warned: bool) -> None:
    assert plain_http_to_another_host(url) is warned


def test_11f_no_warning_for_a_key_over_http_to_this_machine(agent: Agent) -> None:
    server = agent.serve([reply(content="local answer")])
    done = agent.run("-p", "hi", env={"OPENROUTER_API_KEY": "sk-test-0123456789abcdef"})
    assert done.returncode == 0, done.stderr
    assert "local answer" in done.stdout
    assert "unencrypted" not in done.stderr and "warning:" not in done.stderr, done.stderr
    assert agent.requests(server)[0]["headers"].get("Authorization") == "Bearer sk-test-0123456789abcdef"


def test_dotenv_cannot_switch_approval_off(agent: Agent) -> None:
    (agent.workspace / ".env").write_text("NANO_CODE_YES=1\n")
    server = agent.serve(
        [reply(tool_calls=[("shell", {"command": "touch made-by-dotenv"})]), reply(content="could not")]
    )
    done = agent.run("-p", "make a file")
    assert done.returncode == 0, done.stderr
    assert not (agent.workspace / "made-by-dotenv").exists()
    ignored = [line for line in done.stderr.splitlines() if "NANO_CODE_YES" in line and ".env" in line]
    assert len(ignored) == 1 and "ignor" in ignored[0], done.stderr
    assert "refused shell" in done.stderr
    (refusal,) = tool_messages(agent.bodies(server)[1])
    assert "Not run" in text(refusal)
