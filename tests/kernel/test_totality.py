"""Untrusted input never raises: anything at all becomes an event, and every event drives `transition`.

Like h11's fuzzer: the decoders are fed arbitrary bytes, arbitrary JSON values
and arbitrary SSE-ish text, in arbitrary pieces and under any status; the
result is always a ModelReply or a ModelFailure, and feeding it to a machine
that awaits the model is always a valid transition.
"""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st
from kernel_helpers import body_problems

from nano_code.kernel import failures, response, stream
from nano_code.kernel.actions import CallModel, RetryModel
from nano_code.kernel.events import ModelFailure, ModelReply, ToolResult, UserInput
from nano_code.kernel.machine import PHASE_TABLE, transition
from nano_code.kernel.state import Phase, initial_state
from nano_code.kernel.types import ApprovalMode, KernelConfig
from nano_code.testing import conversation_problems
from nano_code.testing.strategies import DEMO_TOOLS, json_values
from nano_code.testing.wire_strategies import byte_pieces, sse_ish_bytes

CONFIG = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.AUTO)
STATUSES = st.sampled_from(
    [200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503]
)
HEADERS = st.dictionaries(
    st.sampled_from(["content-type", "Content-Type", "retry-after", "Retry-After-Ms", "x-should-retry"]),
    st.sampled_from(
        ["text/event-stream", "application/json", "1.5", "-3", "nan", "inf", "Wed, 21 Oct 2015", ""]
    ),
    max_size=3,
)

DEEP = b"[" * 50_000
ODD_BODIES = [
    DEEP,
    b'{"error":' + DEEP,
    json.dumps({"error": {"message": "x", "metadata": {"raw": "[" * 50_000}}}).encode(),
    b'{"choices":[{"message":{"content":' + b"[" * 3000,
    b"\xff\xfe\x00garbage",
    b'{"choices":[{"message":{"tool_calls":[{"function":{"name":"shell","arguments":'
    + b"{" * 2000
    + b"}]}}]}",
]


def drive(event: ModelReply | ModelFailure) -> None:
    """Feed `event` to a machine awaiting the model, then follow any tool calls to the end."""
    state, _ = transition(initial_state(CONFIG), UserInput("go"))
    state, actions = transition(state, event)
    assert state.phase in PHASE_TABLE[Phase.AWAITING_MODEL][type(event)][1]
    while state.phase is Phase.AWAITING_TOOL_RESULT:
        state, actions = transition(state, ToolResult(state.pending[0].call.id, "ok"))
    assert not conversation_problems(state.history, [p.call.id for p in state.pending])
    for action in actions:
        if isinstance(action, (CallModel, RetryModel)):
            assert not body_problems(action.body), body_problems(action.body)


def decode_response(status: int, headers: dict[str, str], pieces: list[bytes]) -> ModelReply | ModelFailure:
    decoder = stream.ResponseDecoder(status, headers)
    for piece in pieces:
        assert isinstance(decoder.feed(piece), list)
    result = decoder.finish()
    assert isinstance(result, (ModelReply, ModelFailure))
    return result


@given(body=st.binary(max_size=300))
@example(body=b"")
def test_arbitrary_bytes_as_a_body(body: bytes) -> None:
    for event in (response.decode_body(body), failures.classify_http_error(500, {}, body)):
        drive(event)


def test_pathological_bodies() -> None:
    for body in ODD_BODIES:
        drive(response.decode_body(body))
        for status in (400, 429, 500):
            drive(failures.classify_http_error(status, {"retry-after": "1"}, body))
        drive(stream.decode_stream([b"data: " + body + b"\n\n"]))
        drive(stream.decode_stream([b"event: error\ndata: " + body + b"\n\n"]))


@given(value=json_values(20))
def test_arbitrary_json_as_a_body(value: object) -> None:
    raw = json.dumps(value).encode()
    drive(response.decode_body(raw))
    drive(failures.classify_http_error(400, {}, raw))
    drive(response.decode_completion(value))


@given(value=json_values(20), wrap=st.sampled_from(["bare", "choices", "message", "delta", "tool", "error"]))
def test_arbitrary_json_in_every_slot(value: object, wrap: str) -> None:
    """Arbitrary values where the decoder expects choices, messages, deltas, tool calls, errors."""
    shapes = {
        "bare": value,
        "choices": {"choices": value},
        "message": {"choices": [{"message": value, "finish_reason": value}], "usage": value, "model": value},
        "delta": {"choices": [{"delta": value, "finish_reason": value, "index": value}], "usage": value},
        "tool": {"choices": [{"message": {"tool_calls": [value, {"id": value, "function": value}]}}]},
        "error": {"error": value, "message": value, "code": value, "object": "error"},
    }
    payload = shapes[wrap]
    drive(response.decode_completion(payload))
    drive(response.decode_body(json.dumps(payload).encode()))
    drive(stream.decode_stream([b"data: " + json.dumps(payload).encode() + b"\n\n"]))
    assembler = stream.StreamAssembler()
    assembler.add_chunk(payload)
    drive(assembler.result())


@given(data=st.data(), status=STATUSES, headers=HEADERS)
def test_arbitrary_sse_ish_text_in_arbitrary_pieces(
    data: st.DataObject, status: int, headers: dict[str, str]
) -> None:
    raw = data.draw(sse_ish_bytes())
    pieces = data.draw(byte_pieces(raw, max_pieces=10))
    drive(decode_response(status, headers, pieces))


@given(data=st.data(), status=STATUSES, headers=HEADERS)
def test_arbitrary_bytes_in_arbitrary_pieces(
    data: st.DataObject, status: int, headers: dict[str, str]
) -> None:
    raw = data.draw(st.binary(max_size=200))
    drive(decode_response(status, headers, data.draw(byte_pieces(raw, max_pieces=6))))


@given(
    status=STATUSES,
    headers=HEADERS,
    body=st.binary(max_size=100) | json_values().map(lambda v: json.dumps(v).encode()),
)
def test_classify_http_error_is_total(status: int, headers: dict[str, str], body: bytes) -> None:
    failure = failures.classify_http_error(status, headers, body)
    assert failure.status == status
    assert failure.retry_after is None or failure.retry_after >= 0.0
    drive(failure)
