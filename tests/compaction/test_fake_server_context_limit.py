"""FakeServer(context_limit=N, summary=...): a model with a small context window, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import urllib3

from nano_code.kernel import stream
from nano_code.kernel.compaction import context_limit_in
from nano_code.kernel.events import FailureKind, ModelReply
from nano_code.kernel.failures import classify_http_error
from nano_code.prompts import SUMMARY_PROMPT
from nano_code.testing.fake_server import FakeServer, is_summary_request, reply, request_tokens

HTTP = urllib3.PoolManager()


def post(server: FakeServer, body: Mapping[str, Any]) -> urllib3.BaseHTTPResponse:
    return HTTP.request(
        "POST",
        f"{server.base_url}/chat/completions",
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def step_request(text: str, stream_it: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": text}],
    }
    if stream_it:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def summary_request(stream_it: bool = False) -> dict[str, Any]:
    body = step_request("<transcript>...</transcript>", stream_it)
    body["messages"][0]["content"] = SUMMARY_PROMPT
    return body


def decoded(response: urllib3.BaseHTTPResponse) -> Any:
    decoder = stream.ResponseDecoder(response.status, dict(response.headers))
    decoder.feed(response.data)
    return decoder.finish()


def test_a_request_past_the_limit_gets_openais_context_length_error() -> None:
    with FakeServer([reply(content="fits")], context_limit=300) as server:
        big = step_request("x" * 2000)
        response = post(server, big)
        assert response.status == 400
        error = json.loads(response.data)["error"]
        assert error["code"] == "context_length_exceeded" and error["type"] == "invalid_request_error"
        failure = classify_http_error(response.status, dict(response.headers), response.data)
        assert failure.kind is FailureKind.CONTEXT_OVERFLOW
        assert context_limit_in(failure.message) == 300
        assert f"resulted in {request_tokens(big)} tokens" in failure.message
        # the script's step was not used up: the next request that fits gets it
        answer = decoded(post(server, step_request("hi")))
        assert isinstance(answer, ModelReply) and answer.content == "fits"
        assert server.overflows == 1 and len(server.requests) == 2


@pytest.mark.parametrize("stream_it", [False, True], ids=["json", "sse"])
def test_replies_report_the_requests_size_as_prompt_tokens(stream_it: bool) -> None:
    with FakeServer(
        [reply(content="ok", usage={"prompt_tokens": 1, "completion_tokens": 7})], context_limit=10_000
    ) as server:
        body = step_request("hello there", stream_it)
        answer = decoded(post(server, body))
        assert isinstance(answer, ModelReply) and answer.usage is not None
        assert answer.usage.prompt_tokens == request_tokens(body)
        assert answer.usage.completion_tokens == 7
        assert answer.usage.total_tokens == request_tokens(body) + 7


@pytest.mark.parametrize("stream_it", [False, True], ids=["json", "sse"])
def test_a_summary_request_is_answered_with_the_summary(stream_it: bool) -> None:
    seen: list[int] = []

    def respond(request: Mapping[str, Any], number: int) -> Mapping[str, Any]:
        seen.append(number)
        return reply(content=f"step reply {number}")

    def summarise(request: Mapping[str, Any]) -> str:
        return f"summary of {len(request['messages'])} messages"

    with FakeServer(respond, context_limit=10_000, summary=summarise) as server:
        first = decoded(post(server, step_request("a", stream_it)))
        summary = decoded(post(server, summary_request(stream_it)))
        second = decoded(post(server, step_request("b", stream_it)))
    assert isinstance(summary, ModelReply) and summary.content == "summary of 2 messages"
    assert isinstance(first, ModelReply) and first.content == "step reply 0"
    assert isinstance(second, ModelReply) and second.content == "step reply 1"
    assert seen == [0, 1], "the respond function counts only the requests it answers"
    assert server.summaries == 1 and server.overflows == 0


def test_summary_requests_are_told_apart_by_the_summary_prompt() -> None:
    assert is_summary_request(summary_request())
    assert not is_summary_request(step_request("hi"))
    assert not is_summary_request({"messages": "nope"})
    assert not is_summary_request({})


def test_without_the_options_nothing_changes() -> None:
    with FakeServer([reply(content="a"), reply(content="b")]) as server:
        big = decoded(post(server, step_request("x" * 100_000)))
        assert isinstance(big, ModelReply) and big.content == "a"
        assert big.usage is not None and big.usage.prompt_tokens == 100
        summary = decoded(post(server, summary_request()))
        assert isinstance(summary, ModelReply) and summary.content == "b"
