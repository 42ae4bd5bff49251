"""Counterexamples that exposed real kernel bugs, kept as named tests."""

from __future__ import annotations

import json

from nano_code.kernel import failures, response, serialize, stream
from nano_code.kernel.actions import CallModel
from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply, ReplyToolCall, UserInput
from nano_code.kernel.machine import transition
from nano_code.kernel.request import build_request
from nano_code.kernel.state import PendingCall, Phase, initial_state
from nano_code.kernel.types import ApprovalMode, KernelConfig, ToolCall
from nano_code.testing.strategies import DEMO_TOOLS

CONFIG = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.ASK)


def round_trip(value: object) -> object:
    return serialize.from_json(json.loads(json.dumps(serialize.to_json(value))))


def test_regression_arguments_with_a_type_key_naming_a_kernel_class() -> None:
    """Arguments {"type": "UserInput", ...} came back from JSON as a UserInput object."""
    for arguments in ({"type": "UserInput", "text": "hi"}, {"type": "Usage"}, {"type": "function"}):
        pending = PendingCall(call=ToolCall("c1", "shell", json.dumps(arguments)), arguments=arguments)
        assert round_trip(pending) == pending


def test_regression_state_with_such_arguments_round_trips() -> None:
    state, _ = transition(initial_state(CONFIG), UserInput("go"))
    reply = ModelReply(tool_calls=(ReplyToolCall("c1", "shell", '{"command": "ls", "type": "Usage"}'),))
    state, _ = transition(state, reply)
    assert state.phase is Phase.AWAITING_APPROVAL
    assert round_trip(state) == state


def test_regression_nan_arguments_are_not_sent_back() -> None:
    """Shrunk from the state machine: a NaN in a no-parameter call's arguments reached the request body."""
    config = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.AUTO)
    state, _ = transition(initial_state(config), UserInput("go"))
    reply = ModelReply(tool_calls=(ReplyToolCall("c1", "current_time", '{"value": NaN, "limit": Infinity}'),))
    state, actions = transition(state, reply)
    request = actions[-1]
    assert isinstance(request, CallModel)
    assert request.body["messages"][-2]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert "not valid JSON" in request.body["messages"][-1]["content"]
    assert round_trip(state) == state


def test_regression_deeply_nested_error_body() -> None:
    """classify_http_error let json's RecursionError escape (it caught only ValueError)."""
    failure = failures.classify_http_error(500, {}, b'{"error":' + b"[" * 50_000)
    assert failure.kind is FailureKind.SERVER_ERROR


def test_regression_deeply_nested_metadata_raw() -> None:
    """An OpenRouter metadata.raw string holding absurdly nested JSON raised RecursionError."""
    body = json.dumps({"error": {"message": "Provider returned error", "metadata": {"raw": "[" * 50_000}}})
    failure = failures.classify_http_error(400, {}, body.encode())
    assert failure.kind is FailureKind.BAD_REQUEST and "Provider returned error" in failure.message


def test_regression_deeply_nested_tool_arguments_in_a_reply() -> None:
    """Deep but parseable arguments must become an error message for the model, not an exception."""
    config = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.AUTO)
    state, _ = transition(initial_state(config), UserInput("go"))
    deep = '{"a":' * 400 + "1" + "}" * 400
    for raw in ("[" * 100_000, deep):
        result = stream.decode_stream(
            [
                b'data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c",'
                b'"function":{"name":"current_time","arguments":' + json.dumps(raw).encode() + b"}}]}}]}\n\n"
            ]
        )
        assert isinstance(result, ModelReply)
        after, _actions = transition(state, result)
        assert after.phase is Phase.AWAITING_MODEL
        assert round_trip(after) == after


def test_failure_events_round_trip() -> None:
    failure = ModelFailure(FailureKind.RATE_LIMIT, "slow", status=429, retry_after=1.5)
    assert round_trip(failure) == failure


def _encodes(body: object) -> bool:
    json.dumps(dict(body), ensure_ascii=False).encode("utf-8")  # type: ignore[call-overload]
    return True


def test_regression_lone_surrogate_in_a_reply_cannot_break_the_next_request() -> None:
    """Review: content "\\ud800" (a lone surrogate escape) crashed encoding the next request."""
    body = (
        b'{"choices":[{"message":{"role":"assistant","content":"hi \\ud800",'
        b'"tool_calls":[{"id":"c1","type":"function","function":{"name":"shell",'
        b'"arguments":"{\\"command\\": \\"echo \\\\ud800\\"}"}}]},"finish_reason":"tool_calls"}]}'
    )
    reply = response.decode_body(body)
    assert isinstance(reply, ModelReply)
    assert reply.content == "hi \ufffd"
    state, _ = transition(initial_state(CONFIG), UserInput("go"))
    state, _actions = transition(state, reply)
    assert _encodes(build_request(state.config, state.history))
    streamed = stream.decode_stream(
        [
            b"data: "
            + json.dumps({"choices": [{"index": 0, "delta": {"content": "x\ud800y"}}]}).encode(
                "utf-8", "surrogatepass"
            )
            + b"\n\n"
        ]
    )
    assert isinstance(streamed, ModelReply) and streamed.content == "x\ufffdy"


def test_regression_undecodable_user_input_becomes_replacement_characters() -> None:
    """Review: `printf 'fix \\xff' | nano-code` read stdin with surrogateescape and crashed."""
    _state, actions = transition(initial_state(CONFIG), UserInput("fix \udcff"))
    request = actions[-1]
    assert isinstance(request, CallModel)
    assert request.body["messages"][-1]["content"] == "fix \ufffd"
    assert _encodes(request.body)


def test_regression_invalid_utf8_body_decodes_as_the_recorder_stores_it() -> None:
    """Review: live, invalid UTF-8 made the body MALFORMED, but the recording (decoded with
    replacement) replayed as a reply -- an unchanged session diverged."""
    body = b'{"choices":[{"message":{"role":"assistant","content":"caf\xe9"},"finish_reason":"stop"}]}'
    live = response.decode_body(body)
    replayed = response.decode_body(body.decode("utf-8", "replace").encode("utf-8"))
    assert isinstance(live, ModelReply) and live == replayed
    assert live.content == "caf\ufffd"


def test_regression_an_absent_key_differs_from_a_literal_missing_marker() -> None:
    """Review: the differ stood "<missing>" in for absent keys, so {} equalled {"a": "<missing>"}."""
    from nano_code.kernel.jsondiff import MISSING, differences

    found, _ = differences({}, {"a": MISSING})
    assert [(d.path, d.recorded, d.actual) for d in found] == [("$.a", MISSING, MISSING)]


def test_regression_a_non_ascii_digit_error_code_is_no_status() -> None:
    """Hypothesis (test_failure_reporting): an in-band error with code "²" passed
    str.isdigit() and then crashed int(); the decoder must stay total."""
    for code in ("²", "٤٠١", "4２9"):
        body = json.dumps({"error": {"message": "m", "code": code}}).encode()
        failure = response.decode_body(body)
        assert isinstance(failure, ModelFailure) and failure.status is None
        assert failure.kind is FailureKind.IN_BAND_ERROR
        streamed = stream.decode_stream([b"data: " + body + b"\n\n"])
        assert streamed == failure
