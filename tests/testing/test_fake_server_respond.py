"""`FakeServer` answers from a static script or from a function of the request."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from nano_code.kernel.actions import TurnEnd
from nano_code.testing import load_session, replay, run
from nano_code.testing.fake_server import FakeServer, http_error, reply


def post(server: FakeServer, body: Any) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        server.base_url + "/chat/completions", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_static_script_is_served_in_order_then_runs_out() -> None:
    with FakeServer([reply(content="one"), http_error(429, {"error": {"message": "slow down"}})]) as server:
        first = post(server, {"messages": []})
        second = post(server, {"messages": []})
        third = post(server, {"messages": []})
    assert first[0] == 200 and json.loads(first[1])["choices"][0]["message"]["content"] == "one"
    assert second[0] == 429
    assert third[0] == 500 and b"script exhausted" in third[1]
    assert len(server.requests) == 3


def test_a_respond_function_sees_each_request_and_its_number() -> None:
    seen: list[tuple[Any, int]] = []

    def respond(request: Mapping[str, Any], number: int) -> dict[str, Any]:
        seen.append((request, number))
        return reply(content=f"you said {request['messages'][-1]['content']} as request {number}")

    with FakeServer(respond) as server:
        answers = [post(server, {"messages": [{"role": "user", "content": word}]}) for word in ("a", "b")]
    texts = [json.loads(body)["choices"][0]["message"]["content"] for _, body in answers]
    assert texts == ["you said a as request 0", "you said b as request 1"]
    assert [number for _, number in seen] == [0, 1]
    assert server.script == []


def test_a_request_that_is_not_json_reaches_respond_as_an_empty_mapping() -> None:
    with FakeServer(lambda request, number: reply(content=str(dict(request)))) as server:
        status, body = post(server, b"not json")
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == "{}"
    assert server.requests[0]["body"] is None


def test_respond_may_answer_with_an_error_or_nothing() -> None:
    def respond(request: Mapping[str, Any], number: int) -> dict[str, Any] | None:
        return http_error(503, "busy", {"Retry-After": "1"}) if number == 0 else None

    with FakeServer(respond) as server:
        assert post(server, {})[0] == 503
        status, body = post(server, {})
    assert status == 500 and b"script exhausted" in body


def test_a_respond_function_that_raises_is_reported_and_kept() -> None:
    def respond(request: Mapping[str, Any], number: int) -> dict[str, Any]:
        raise KeyError("messages")

    with FakeServer(respond) as server:
        status, body = post(server, {})
        again, _ = post(server, {})
    assert status == again == 500
    assert b"respond raised KeyError" in body
    assert len(server.errors) == 2 and isinstance(server.errors[0], KeyError)


def test_a_streamed_request_gets_the_step_as_server_sent_events() -> None:
    with FakeServer(lambda request, number: reply(content="streamed words")) as server:
        status, body = post(server, {"messages": [], "stream": True})
    assert status == 200
    assert body.startswith(b"data: ") and body.rstrip().endswith(b"data: [DONE]")


@pytest.mark.parametrize("stream", [False, True])
def test_the_agent_against_a_model_that_reacts_to_tool_output(tmp_path: Path, stream: bool) -> None:
    """A model written as a function: it looks at the last tool result before answering."""

    def respond(request: Mapping[str, Any], number: int) -> dict[str, Any]:
        last = request["messages"][-1]
        if last["role"] == "user":
            return reply(tool_calls=[("shell", {"command": "echo $((6 * 7))"})])
        if last["role"] == "tool" and "42" in last["content"]:
            return reply(content="The answer is 42.")
        return reply(content="Something went wrong.")

    workspace = tmp_path / "ws"
    workspace.mkdir()
    with FakeServer(respond) as server:
        result = run(
            "compute 6*7 with the shell",
            base_url=server.base_url,
            workspace=workspace,
            record_to=tmp_path / "s.yaml",
            stream=stream,
        )
    assert result.reason is TurnEnd.COMPLETED
    assert result.state.history[-1].content == "The answer is 42."
    assert len(server.requests) == 2 and not server.errors
    assert load_session(tmp_path / "s.yaml").interaction_count == 2
    assert replay(tmp_path / "s.yaml").status == "identical"
