"""Prompt-cache markers through the real CLI: on by default for the default model (Claude), off on
request or for other families, and a server that refuses them costs one request, is said once,
and is followed by replay and resume alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cli_helpers import Agent
from message_text import text, unmarked

from nano_code.adapters.session_file import load_session
from nano_code.session.replay import replay_session
from nano_code.testing.fake_server import FakeServer, http_error, reply

REFUSAL = "messages.1.content.0.cache_control: Extra inputs are not permitted"


def marked_positions(body: Mapping[str, Any]) -> list[int]:
    return [
        i
        for i, message in enumerate(body["messages"])
        if isinstance(message["content"], list) and "cache_control" in message["content"][0]
    ]


def two_steps() -> list[dict[str, Any]]:
    return [reply(tool_calls=[("shell", {"command": "echo one"})]), reply(content="done")]


def test_the_default_model_marks_the_system_prompt_and_the_newest_messages(agent: Agent) -> None:
    agent.serve(two_steps())
    result = agent.run("-p", "say one", "--yes")
    assert result.returncode == 0, result.stderr
    first, second = agent.bodies()
    assert first["model"] == "anthropic/claude-sonnet-4.5"
    assert marked_positions(first) == [0, 1]  # the system prompt (and tools), the task
    assert marked_positions(second) == [0, 1, 3]  # ... the previous request's end, the tool result
    assert unmarked(second)["messages"][:2] == unmarked(first)["messages"]
    (session,) = agent.session_files()
    assert load_session(session).metadata["settings"]["prompt_cache"] == "auto"
    assert replay_session(session).status == "identical"


def test_off_and_other_families_send_todays_body(agent: Agent) -> None:
    agent.serve([reply(content="a"), reply(content="b")])
    assert agent.run("-p", "x", env={"NANO_CODE_PROMPT_CACHE": "off"}).returncode == 0
    assert agent.run("-p", "x", env={"MODEL_NAME": "qwen3-coder"}).returncode == 0
    for body in agent.bodies():
        assert all(isinstance(m["content"], str) for m in body["messages"]), body
    bad = agent.run("-p", "x", env={"NANO_CODE_PROMPT_CACHE": "sometimes"})
    assert bad.returncode == 2 and "NANO_CODE_PROMPT_CACHE" in bad.stderr


def refusing_server() -> FakeServer:
    """A strict server: a 400 for any request with a cache marker, else a two-step task."""
    answered = []

    def respond(request: Mapping[str, Any], number: int) -> dict[str, Any]:
        if "cache_control" in json.dumps(request):
            return http_error(400, {"error": {"message": REFUSAL, "type": "invalid_request_error"}})
        answered.append(number)
        return two_steps()[0] if len(answered) % 2 else reply(content="done")

    return FakeServer(respond)


def test_a_refusing_server_costs_one_request_said_once_and_replay_and_resume_follow(agent: Agent) -> None:
    server = refusing_server().start()
    agent.servers.append(server)
    agent.base_url = server.base_url
    result = agent.run("-p", "say one", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("refused the prompt-cache markers") == 1, result.stderr
    assert "Traceback" not in result.stderr
    bodies = agent.bodies()
    assert len(bodies) == 3  # refused, resent without markers, the second step
    assert marked_positions(bodies[0]) and not any(marked_positions(b) for b in bodies[1:])
    assert bodies[1] == unmarked(bodies[0])
    (session,) = agent.session_files()
    assert replay_session(session).status == "identical"

    resumed = agent.run("--resume", str(session), "-p", "and again", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert "refused" not in resumed.stderr  # the switch was rebuilt from the recorded 400
    later = agent.bodies()[3:]
    assert later and not any(marked_positions(b) for b in later)
    assert text(later[0]["messages"][-1]) == "and again"
    assert replay_session(session).status == "identical"


def cached_usage(prompt: int) -> dict[str, Any]:
    details = {"cached_tokens": prompt - 100, "cache_write_tokens": 60}
    return {"prompt_tokens": prompt, "completion_tokens": 10, "prompt_tokens_details": details, "cost": 0.002}


def test_cache_reads_and_writes_are_shown_where_users_look(agent: Agent) -> None:
    script = [
        reply(tool_calls=[("shell", {"command": "echo one"})], usage=cached_usage(1000)),
        reply(content="done", usage=cached_usage(2000)),
    ]
    agent.serve(script * 2)
    result = agent.run("-p", "say one", "--yes")
    assert result.returncode == 0, result.stderr
    assert "3,000 in (2,800 read from cache, 120 written) / 20 out" in result.stderr, result.stderr
    as_json = agent.run("-p", "say one", "--yes", "--json")
    (end,) = [line for line in map(json.loads, as_json.stdout.splitlines()) if line.get("type") == "EndTurn"]
    assert (end["usage"]["cached_tokens"], end["usage"]["cache_write_tokens"]) == (2800, 120)


def test_a_resumed_session_continues_the_same_prefix(agent: Agent) -> None:
    agent.serve([*two_steps(), reply(content="more done")])
    assert agent.run("-p", "say one", "--yes").returncode == 0
    (session,) = agent.session_files()
    resumed = agent.run("--resume", str(session), "-p", "and more", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    before, after = unmarked(agent.bodies()[1]), unmarked(agent.bodies()[2])
    assert after["messages"][: len(before["messages"])] == before["messages"]
    assert after["messages"][len(before["messages"]) :] == [
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "and more"},
    ]
    assert marked_positions(agent.bodies()[2]) == [0, 3, 5]  # the previous request ended at its tool result


def test_the_flag_wins_over_the_environment_and_a_resume_keeps_the_recorded_choice(agent: Agent) -> None:
    agent.serve([reply(content="a"), reply(content="b")])
    on = agent.run(
        "-p", "x", "--prompt-cache", "on", env={"MODEL_NAME": "qwen3-coder", "NANO_CODE_PROMPT_CACHE": "off"}
    )
    assert on.returncode == 0, on.stderr
    assert marked_positions(agent.bodies()[0]) == [0, 1]
    (session,) = agent.session_files()
    resumed = agent.run("--resume", str(session), "-p", "y", "--prompt-cache", "off")
    assert resumed.returncode == 0 and "ignoring --prompt-cache" in resumed.stderr
    assert marked_positions(agent.bodies()[1]) == [0, 1, 3]
