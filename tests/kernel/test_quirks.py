"""One test per quirk in shared/real-traffic/QUIRKS.md, with small inline fixtures.

These run on every clone (no ../shared needed). The fixtures are hand-made in
the shape of the recorded traffic; the section/number of each quirk is in the
test's docstring.
"""

from __future__ import annotations

import json
from typing import Any

from nano_code.kernel import failures, response, stream
from nano_code.kernel.actions import AskApproval, CallModel, RunTool
from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply, ReplyToolCall, UserInput
from nano_code.kernel.machine import transition
from nano_code.kernel.policy import retry_delay
from nano_code.kernel.state import Phase, State, initial_state
from nano_code.kernel.types import ApprovalMode, KernelConfig, RetryPolicy, Usage
from nano_code.testing.strategies import DEMO_TOOLS


def sse(*payloads: Any, ending: str = "\n", done: bool = True, event: str | None = None) -> bytes:
    out = []
    for payload in payloads:
        if isinstance(payload, str) and payload.startswith(":"):
            out.append(payload + ending + ending)
            continue
        text = payload if isinstance(payload, str) else json.dumps(payload)
        prefix = f"event: {event}{ending}" if event else ""
        out.append(f"{prefix}data: {text}{ending}{ending}")
    if done:
        out.append(f"data: [DONE]{ending}{ending}")
    return "".join(out).encode()


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m", "choices": choices, **extra}


def tool_delta(**item: Any) -> dict[str, Any]:
    return {"tool_calls": [item]}


def streamed(data: bytes) -> ModelReply:
    result = stream.decode_stream([data])
    assert isinstance(result, ModelReply), result
    return result


def body(message: dict[str, Any], finish: object = "stop", **extra: Any) -> ModelReply:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", **message}}
    if finish is not ...:
        choice["finish_reason"] = finish
    result = response.decode_body(json.dumps({"id": "x", "choices": [choice], **extra}).encode())
    assert isinstance(result, ModelReply), result
    return result


def call(call_id: str, name: str, arguments: Any = ..., **extra: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if arguments is not ...:
        function["arguments"] = arguments
    return {"id": call_id, "type": "function", "function": function, **extra}


def calls_of(reply: ModelReply) -> list[tuple[str, str, str | None]]:
    return [(c.id, c.name, c.arguments) for c in reply.tool_calls]


AUTO = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.AUTO)


def awaiting_model(config: KernelConfig = AUTO) -> State:
    state, _ = transition(initial_state(config), UserInput("go"))
    return state


# ---------------------------------------------------------------- A. ids


def test_empty_id_nonstream_gets_a_unique_id_in_history() -> None:
    """A-1: Gemini sends "id": "" and no index."""
    reply = body({"tool_calls": [call("", "current_time", "{}")]}, "tool_calls")
    assert calls_of(reply) == [("", "current_time", "{}")]
    state, actions = transition(awaiting_model(), reply)
    run = actions[-1]
    assert isinstance(run, RunTool) and run.call.id
    assert state.pending[0].call.id == run.call.id


def test_empty_id_on_continuation_deltas_keeps_the_real_id() -> None:
    """A-2: DashScope repeats "id": "" and type on every continuation delta."""
    data = sse(
        chunk(
            tool_delta(index=0, id="call_eee", type="function", function={"name": "weather", "arguments": ""})
        ),
        chunk(tool_delta(index=0, id="", type="function", function={"arguments": '{"location": "SF'})),
        chunk(tool_delta(index=0, id="", type="function", function={"arguments": '"}'})),
        chunk({}, "tool_calls"),
    )
    assert calls_of(streamed(data)) == [("call_eee", "weather", '{"location": "SF"}')]


def test_blank_name_on_continuation_keeps_the_name() -> None:
    """A-2: Mistral (GLM) sends a continuation with no id and "name": ""."""
    data = sse(
        chunk(
            tool_delta(index=0, id="chatcmpl-tool-9f", function={"name": "webSearchTool", "arguments": ""})
        ),
        chunk(tool_delta(index=0, function={"name": "", "arguments": '{"query": "Berlin"}'})),
        chunk({}, "tool_calls"),
    )
    assert calls_of(streamed(data)) == [("chatcmpl-tool-9f", "webSearchTool", '{"query": "Berlin"}')]


def test_id_and_name_repeated_in_every_delta() -> None:
    """A-3: Novita repeats id "0", type and name in each delta (no llm_versionllm_version)."""
    data = sse(
        chunk(
            tool_delta(index=0, id="0", type="function", function={"name": "llm_version", "arguments": ""})
        ),
        chunk(
            tool_delta(index=0, id="0", type="function", function={"name": "llm_version", "arguments": "{}"})
        ),
    )
    assert calls_of(streamed(data)) == [("0", "llm_version", "{}")]


def test_ids_repeated_across_turns_are_made_unique() -> None:
    """A-4: SGLang numbers ids '0', '1' per request, so ids repeat across turns."""
    state = awaiting_model()
    seen: list[str] = []
    for _ in range(2):
        reply = ModelReply(
            tool_calls=(ReplyToolCall("0", "current_time", "{}"), ReplyToolCall("0", "current_time", "{}"))
        )
        state, actions = transition(state, reply)
        while state.phase is Phase.AWAITING_TOOL_RESULT:
            run = actions[-1]
            assert isinstance(run, RunTool)
            seen.append(run.call.id)
            state, actions = transition(state, _result(run.call.id))
    assert len(seen) == 4 and len(set(seen)) == 4
    assert seen[0] == "0"


def test_generated_ids_satisfy_mistral() -> None:
    """A-5: Mistral rejects ids that are not exactly 9 characters [a-zA-Z0-9]."""
    _state, actions = transition(
        awaiting_model(), ModelReply(tool_calls=(ReplyToolCall("", "current_time", "{}"),))
    )
    run = actions[-1]
    assert isinstance(run, RunTool)
    assert len(run.call.id) == 9 and run.call.id.isalnum()


def test_stream_deltas_without_id_type_or_name() -> None:
    """A-6: vLLM sometimes omitted id (and type/name) on tool-call deltas."""
    data = sse(
        chunk(tool_delta(index=0, function={"name": "shell", "arguments": '{"command"'})),
        chunk(tool_delta(index=0, function={"arguments": ': "ls"}'})),
        chunk({}, "tool_calls"),
    )
    assert calls_of(streamed(data)) == [("", "shell", '{"command": "ls"}')]


def test_late_id_joins_the_call_at_its_index() -> None:
    """A-6: an id that arrives after the first delta of a call names that call."""
    data = sse(
        chunk(tool_delta(index=0, function={"name": "shell", "arguments": '{"command"'})),
        chunk(tool_delta(index=0, id="call_late", function={"arguments": ': "ls"}'})),
    )
    assert calls_of(streamed(data)) == [("call_late", "shell", '{"command": "ls"}')]


# ---------------------------------------------------------------- B. arguments


def test_arguments_key_missing_nonstream() -> None:
    """B-7: anthropic via OpenRouter omits `arguments` for an all-optional tool."""
    reply = body({"content": "I'll search.", "tool_calls": [call("toolu_1", "current_time")]}, "tool_calls")
    assert calls_of(reply) == [("toolu_1", "current_time", None)]
    _state, actions = transition(awaiting_model(), reply)
    run = actions[-1]
    assert isinstance(run, RunTool) and run.arguments == {} and run.call.arguments == "{}"


def test_arguments_key_missing_in_stream() -> None:
    """B-7: Venice omits `arguments` in streamed deltas of argument-less functions."""
    data = sse(
        chunk(tool_delta(index=0, id="c1", function={"name": "current_time"})), chunk({}, "tool_calls")
    )
    assert calls_of(streamed(data)) == [("c1", "current_time", None)]


def test_arguments_null() -> None:
    """B-8: Meta AI API sends arguments=null; vLLM/Ollama send null deltas."""
    assert calls_of(body({"tool_calls": [call("c1", "current_time", None)]})) == [
        ("c1", "current_time", None)
    ]
    data = sse(
        chunk(tool_delta(index=0, id="c1", function={"name": "current_time", "arguments": None})),
        chunk(tool_delta(index=0, function={"arguments": None})),
    )
    assert calls_of(streamed(data)) == [("c1", "current_time", None)]


def test_arguments_empty_string_means_no_arguments() -> None:
    """B-8: OpenRouter/Anthropic return arguments '' for no-argument tools."""
    reply = body({"tool_calls": [call("c1", "current_time", "")]}, "tool_calls")
    assert calls_of(reply) == [("c1", "current_time", "")]
    _state, actions = transition(awaiting_model(), reply)
    run = actions[-1]
    assert isinstance(run, RunTool) and run.arguments == {} and run.call.arguments == "{}"


def test_arguments_resent_whole_instead_of_appended() -> None:
    """B-9: Novita sends arguments '' then '{}'; a complete value may be re-sent."""
    data = sse(
        chunk(tool_delta(index=0, id="0", function={"name": "shell", "arguments": '{"command": "ls"}'})),
        chunk(tool_delta(index=0, id="0", function={"name": "shell", "arguments": '{"command": "ls"}'})),
    )
    assert calls_of(streamed(data)) == [("0", "shell", '{"command": "ls"}')]


def test_regression_two_different_objects_are_not_taken_as_a_resend() -> None:
    """A model that emits {..}{..} must be told its JSON is invalid, not have the
    second object silently replace the first."""
    data = sse(
        chunk(tool_delta(index=0, id="0", function={"name": "shell", "arguments": '{"command": "ls"}'})),
        chunk(tool_delta(index=0, id="0", function={"arguments": '{"command": "rm -rf x"}'})),
    )
    assert calls_of(streamed(data)) == [("0", "shell", '{"command": "ls"}{"command": "rm -rf x"}')]
    state, actions = transition(awaiting_model(), streamed(data))
    assert not any(isinstance(action, (RunTool, AskApproval)) for action in actions)
    assert "not valid JSON" in state.history[-1].content


def test_arguments_as_an_object() -> None:
    """B-10: llama-server returned arguments as a JSON object; history must send a string."""
    reply = body({"tool_calls": [call("c1", "shell", {"command": "ls -l"})]}, "tool_calls")
    assert calls_of(reply) == [("c1", "shell", '{"command": "ls -l"}')]
    data = sse(
        chunk(tool_delta(index=0, id="c1", function={"name": "shell", "arguments": {"command": "ls"}}))
    )
    assert calls_of(streamed(data)) == [("c1", "shell", '{"command": "ls"}')]
    state, actions = transition(awaiting_model(), reply)
    assert isinstance(actions[-1], RunTool)
    state, actions = transition(state, _result("c1"))
    request = actions[-1]
    assert isinstance(request, CallModel)
    sent = request.body["messages"][-2]["tool_calls"][0]["function"]["arguments"]
    assert isinstance(sent, str) and json.loads(sent) == {"command": "ls -l"}


def test_invalid_arguments_are_never_replayed() -> None:
    """B-11: DashScope rejects a history whose function.arguments are not JSON."""
    reply = ModelReply(tool_calls=(ReplyToolCall("c1", "shell", '{"command": "ls'),))
    _state, actions = transition(awaiting_model(), reply)
    request = actions[-1]
    assert isinstance(request, CallModel)
    sent_call = request.body["messages"][-2]["tool_calls"][0]
    assert sent_call["function"]["arguments"] == "{}"
    tool_message = request.body["messages"][-1]
    assert tool_message["tool_call_id"] == "c1"
    assert "not valid JSON" in tool_message["content"]


def test_groq_tool_use_failed_is_a_bad_request() -> None:
    """B-12: Groq turns the model's invalid tool args into HTTP 400 tool_use_failed."""
    error = {
        "error": {
            "code": "tool_use_failed",
            "failed_generation": "{}",
            "message": "Tool call validation failed",
        }
    }
    failure = failures.classify_http_error(400, {}, json.dumps(error).encode())
    assert failure.kind is FailureKind.BAD_REQUEST and failure.status == 400
    assert retry_delay(failure, 1, RetryPolicy()) is None


# ---------------------------------------------------------------- C. index


def test_index_missing_parallel_calls_with_distinct_ids() -> None:
    """C-13: Gemini sends each parallel call in its own chunk, no index, distinct ids."""
    data = sse(
        chunk(tool_delta(id="a", function={"name": "read_file", "arguments": '{"path": "x"}'})),
        chunk(tool_delta(id="b", function={"name": "read_file", "arguments": '{"path": "y"}'})),
    )
    assert calls_of(streamed(data)) == [
        ("a", "read_file", '{"path": "x"}'),
        ("b", "read_file", '{"path": "y"}'),
    ]


def test_index_missing_on_fragments() -> None:
    """C-13: Ollama before 0.4.7 omitted index on argument fragments."""
    data = sse(
        chunk(tool_delta(id="a", function={"name": "read_file", "arguments": '{"pa'})),
        chunk(tool_delta(function={"arguments": 'th": "x"}'})),
    )
    assert calls_of(streamed(data)) == [("a", "read_file", '{"path": "x"}')]


def test_index_reused_for_parallel_calls_with_distinct_ids() -> None:
    """C-14: Ollama /v1, SGLang, Dynamo put every parallel call at index 0."""
    data = sse(
        chunk(tool_delta(index=0, id="call_1", function={"name": "read_file", "arguments": '{"path": "x"}'})),
        chunk(tool_delta(index=0, id="call_2", function={"name": "shell", "arguments": '{"command"'})),
        chunk(tool_delta(index=0, function={"arguments": ': "ls"}'})),
    )
    assert calls_of(streamed(data)) == [
        ("call_1", "read_file", '{"path": "x"}'),
        ("call_2", "shell", '{"command": "ls"}'),
    ]


def test_index_starting_at_one_after_text() -> None:
    """C-15: Anthropic's compat stream puts the first call at index 1, plus an extra '' delta."""
    data = sse(
        chunk({"content": "Reading"}),
        chunk({"content": " it."}),
        chunk(tool_delta(index=1, id="toolu_1", function={"name": "read_file", "arguments": ""})),
        chunk(tool_delta(index=1, function={"arguments": ""})),
        chunk(tool_delta(index=1, function={"arguments": '{"pa'})),
        chunk(tool_delta(index=1, function={"arguments": 'th": "a.txt"}'})),
        chunk({}, "tool_calls"),
    )
    reply = streamed(data)
    assert reply.content == "Reading it."
    assert calls_of(reply) == [("toolu_1", "read_file", '{"path": "a.txt"}')]


def test_whole_call_in_one_delta() -> None:
    """C-16: Groq and xAI send id, name and complete arguments in one delta."""
    data = sse(
        chunk(
            tool_delta(
                id="tk85n1k4m", type="function", index=0, function={"name": "weather", "arguments": "{}"}
            )
        ),
        chunk({}, "tool_calls"),
    )
    assert calls_of(streamed(data)) == [("tk85n1k4m", "weather", "{}")]


def test_redundant_empty_structures() -> None:
    """C-17: `tool_calls: []` in deltas and `index` on non-stream tool calls."""
    data = sse(chunk({"content": "hi", "tool_calls": []}), chunk({"tool_calls": []}, "stop"))
    reply = streamed(data)
    assert reply.content == "hi" and reply.tool_calls == ()
    with_index = body({"content": "", "tool_calls": [call("c1", "shell", "{}", index=0)]}, "tool_calls")
    assert calls_of(with_index) == [("c1", "shell", "{}")]


# ---------------------------------------------------------------- D. finish, content, termination


def test_finish_reason_stop_with_tool_calls_still_runs_them() -> None:
    """D-18: OpenAI itself says "stop" when tool_choice names a function."""
    reply = body({"content": None, "tool_calls": [call("c1", "current_time", "{}")]}, "stop")
    assert reply.finish_reason == "stop"
    state, actions = transition(awaiting_model(), reply)
    assert state.phase is Phase.AWAITING_TOOL_RESULT and isinstance(actions[-1], RunTool)


def test_finish_reason_empty_string() -> None:
    """D-19: Snowflake returns finish_reason "" (with tool calls and zero-valued extras)."""
    reply = body(
        {
            "content": "",
            "function_call": {"arguments": "", "name": ""},
            "audio": {"data": "", "id": ""},
            "tool_calls": [call("toolu_1", "shell", '{"command": "ls"}', custom={"input": "", "name": ""})],
        },
        "",
    )
    assert reply.finish_reason is None
    assert calls_of(reply) == [("toolu_1", "shell", '{"command": "ls"}')]
    data = sse(chunk({"content": "a"}, ""), chunk({"content": "b"}, "stop"))
    assert streamed(data).finish_reason == "stop"


def test_no_finish_reason_in_a_stream() -> None:
    """D-20: Novita ends with usage and [DONE] but never a finish_reason."""
    data = sse(
        chunk(tool_delta(index=0, id="0", function={"name": "current_time", "arguments": "{}"})),
        chunk({"content": ""}, usage={"prompt_tokens": 57, "completion_tokens": 17, "total_tokens": 74}),
    )
    reply = streamed(data)
    assert reply.finish_reason is None and calls_of(reply) == [("0", "current_time", "{}")]
    _state, actions = transition(awaiting_model(), reply)
    assert isinstance(actions[-1], RunTool)


def test_finish_reason_length_ends_the_turn_and_says_so() -> None:
    """D-21: `length` (HF router, OpenRouter, Azure) plus extra vendor fields."""
    reply = body({"content": "<think>Hmm"}, "length", native_finish_reason="MAX_TOKENS", stop_reason=154829)
    assert reply.finish_reason == "length"
    state, actions = transition(awaiting_model(), reply)
    assert state.phase is Phase.AWAITING_USER
    assert any("token limit" in getattr(a, "detail", "") for a in actions)


def test_content_null_empty_absent_or_alongside_tool_calls() -> None:
    """D-22: content is null (OpenAI), "" (Mistral), absent (Cerebras) or text (DeepSeek)."""
    tool = [call("c1", "current_time", "{}")]
    assert body({"content": None, "tool_calls": tool}).content == ""
    assert body({"content": "", "tool_calls": tool}).content == ""
    assert body({"tool_calls": tool}).content == ""
    assert body({"content": "Let me check.", "tool_calls": tool}).content == "Let me check."


def test_content_array_with_thinking_parts() -> None:
    """D-22: Mistral streams `content` as an array of thinking blocks, then text."""
    data = sse(
        chunk(
            {
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": "17*23"}], "closed": True}
                ]
            }
        ),
        chunk(
            {
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": " = 391"}]},
                    {"type": "text", "text": "3"},
                ]
            }
        ),
        chunk({"content": "91"}, "stop"),
    )
    reply = streamed(data)
    assert (reply.reasoning, reply.content) == ("17*23 = 391", "391")


def test_stream_without_done() -> None:
    """D-23: TGI, llama-box and ik_llama.cpp did not send data: [DONE]."""
    reply = streamed(sse(chunk({"content": "hi"}), chunk({}, "stop"), done=False))
    assert (reply.content, reply.finish_reason) == ("hi", "stop")


# ---------------------------------------------------------------- E. SSE framing


def test_named_error_event_mid_stream() -> None:
    """E-24: Groq sends `event: error` with status_code 400 inside an HTTP 200 stream."""
    error = {
        "error": {"message": "Tool call validation failed", "code": "tool_use_failed", "status_code": 400}
    }
    data = sse(chunk({"reasoning": "We"}), done=False) + sse(error, event="error", done=False)
    failure = stream.decode_stream([data])
    assert isinstance(failure, ModelFailure)
    assert failure.kind is FailureKind.IN_BAND_ERROR and failure.status == 400
    assert retry_delay(failure, 1, RetryPolicy()) is None


def test_error_event_whose_data_is_not_json() -> None:
    """E-24: an `event: error` is an error even when its data is not a JSON object."""
    failure = stream.decode_stream([b"event: error\ndata: upstream exploded\n\n"])
    assert isinstance(failure, ModelFailure) and failure.kind is FailureKind.IN_BAND_ERROR
    assert "upstream exploded" in failure.message


def test_keepalive_comments_are_ignored() -> None:
    """E-25: OpenRouter sends `: OPENROUTER PROCESSING` comments (17 before data once)."""
    comments = [": OPENROUTER PROCESSING"] * 17
    reply = streamed(sse(*comments, chunk({"content": "hi"}), ": OPENROUTER PROCESSING", chunk({}, "stop")))
    assert (reply.content, reply.finish_reason) == ("hi", "stop")


def test_in_band_error_in_a_200_stream() -> None:
    """E-25: OpenRouter puts a top-level error {code:<int>} next to choices/usage after 200."""
    data = sse(
        chunk({"reasoning": "We need"}, "length"),
        chunk({"content": ""}, error={"code": 502, "message": "Upstream died"}, usage={"prompt_tokens": 43}),
    )
    failure = stream.decode_stream([data])
    assert isinstance(failure, ModelFailure)
    assert (failure.kind, failure.status) == (FailureKind.IN_BAND_ERROR, 502)
    assert "Upstream died" in failure.message
    assert retry_delay(failure, 1, RetryPolicy()) is not None


def test_in_band_error_in_a_200_body() -> None:
    """E-25: a non-stream 200 whose body is only {"error": {..., "code": 502}}."""
    failure = response.decode_body(json.dumps({"error": {"message": "Bad gateway", "code": 502}}).encode())
    assert isinstance(failure, ModelFailure)
    assert (failure.kind, failure.status) == (FailureKind.IN_BAND_ERROR, 502)
    auth = response.decode_body(b'{"error": {"message": "No auth", "code": 401}}')
    assert isinstance(auth, ModelFailure) and auth.kind is FailureKind.AUTH


def test_leading_chunk_without_choices() -> None:
    """E-26: Azure's first chunk has choices [], empty id/model and prompt_filter_results."""
    first = {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": [{}]}
    data = sse(first, chunk({"content": "Capital"}, content_filter_results={}), chunk({}, "stop"))
    reply = streamed(data)
    assert (reply.content, reply.model) == ("Capital", "m")


def test_padding_and_extra_fields_per_chunk() -> None:
    """E-27: obfuscation (OpenAI), p (Mistral), x_groq/channel (Groq), provider (OpenRouter)."""
    data = sse(
        chunk({"content": "a", "channel": "final"}, obfuscation="jP9abrn9XF3", p="abcdef", provider="Novita"),
        chunk({"reasoning": "r", "channel": "analysis"}, x_groq={"id": "req_1"}),
        chunk({}, "stop", native_finish_reason="stop", logprobs=None),
    )
    reply = streamed(data)
    assert (reply.content, reply.reasoning, reply.finish_reason) == ("a", "r", "stop")


def test_content_type_with_charset_and_sniffing() -> None:
    """E-27: text/event-stream with or without charset; no content-type at all."""
    data = sse(chunk({"content": "hi"}, "stop"))
    for headers in ({"Content-Type": "text/event-stream; charset=utf-8"}, {}):
        decoder = stream.ResponseDecoder(200, headers)
        decoder.feed(data)
        result = decoder.finish()
        assert isinstance(result, ModelReply) and result.content == "hi"


def test_crlf_line_endings() -> None:
    """SSE framing: CRLF line endings (allowed by the SSE spec)."""
    reply = streamed(sse(": keep-alive", chunk({"content": "hi"}), chunk({}, "stop"), ending="\r\n"))
    assert (reply.content, reply.finish_reason) == ("hi", "stop")


def test_lone_cr_line_endings_split_between_pieces() -> None:
    """SSE framing: lone CR line endings, even when a CR ends one piece and CR starts the next."""
    data = sse(chunk({"content": "hi"}), chunk({}, "stop"), ending="\r")
    for cut in range(len(data) + 1):
        reply = stream.decode_stream([data[:cut], data[cut:]])
        assert isinstance(reply, ModelReply) and (reply.content, reply.finish_reason) == ("hi", "stop"), cut


# ---------------------------------------------------------------- F. usage


def test_usage_in_a_final_chunk_with_no_choices() -> None:
    """F-28: with include_usage, usage comes in a last `choices: []` chunk; others have null."""
    data = sse(
        chunk({"content": "Fare"}, usage=None),
        chunk({}, "stop", usage=None),
        chunk(
            None,
            usage={
                "prompt_tokens": 1144,
                "completion_tokens": 3,
                "total_tokens": 1147,
                "prompt_tokens_details": {"cached_tokens": 1024},
            },
        ),
    )
    assert streamed(data).usage == Usage(1144, 3, 1147, cached_tokens=1024)


def test_usage_on_a_chunk_that_still_has_a_delta() -> None:
    """F-28: OpenRouter/Novita attach usage to a chunk with a choices delta."""
    data = sse(
        chunk(
            {"content": "x"},
            usage={"prompt_tokens": 57, "completion_tokens": 17, "total_tokens": 74, "cost": 0.00007159},
        )
    )
    assert streamed(data).usage == Usage(57, 17, 74, cost=7.159e-05)


def test_usage_only_in_x_groq() -> None:
    """F-28: some Groq streams carry usage only in x_groq.usage."""
    data = sse(
        chunk(
            {},
            "tool_calls",
            x_groq={
                "id": "req",
                "usage": {"prompt_tokens": 210, "completion_tokens": 15, "total_tokens": 225},
            },
        )
    )
    assert streamed(data).usage == Usage(210, 15, 225)


def test_total_tokens_is_not_prompt_plus_completion() -> None:
    """F-29: Gemini reports 109 total for 35 + 12; the server's total is kept."""
    reply = body({"content": "x"}, usage={"prompt_tokens": 35, "completion_tokens": 12, "total_tokens": 109})
    assert reply.usage == Usage(35, 12, 109)
    missing_total = body({"content": "x"}, usage={"prompt_tokens": 35, "completion_tokens": 12})
    assert missing_total.usage == Usage(35, 12, 47)


def test_cache_and_cost_fields_in_every_placement() -> None:
    """F-30: cached tokens in details (OpenAI), prompt_cache_hit_tokens (DeepSeek),
    top-level cached_tokens (HF), num_cached_tokens (Mistral); OpenRouter cost."""
    base = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    placements = [
        {"prompt_tokens_details": {"cached_tokens": 64}},
        {"prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 36},
        {"cached_tokens": 64},
        {"num_cached_tokens": 64},
    ]
    for extra in placements:
        assert body({"content": "x"}, usage={**base, **extra}).usage == Usage(100, 10, 110, cached_tokens=64)
    with_cost = {**base, "cost": 0, "is_byok": True, "cost_details": {"upstream_inference_cost": 0.0003}}
    assert body({"content": "x"}, usage=with_cost).usage == Usage(100, 10, 110, cost=0.0)


def test_usage_is_added_up_over_a_turn() -> None:
    """F: usage of every reply of a turn and of the session is summed."""
    state = awaiting_model()
    reply = ModelReply(
        tool_calls=(ReplyToolCall("c1", "current_time", "{}"),), usage=Usage(10, 2, 12, cost=0.5)
    )
    state, _ = transition(state, reply)
    state, _ = transition(state, _result("c1"))
    state, _ = transition(state, ModelReply(content="done", usage=Usage(20, 3, 23)))
    assert state.turn_usage == Usage(30, 5, 35, cost=0.5)
    assert state.session_usage == Usage(30, 5, 35, cost=0.5)


# ---------------------------------------------------------------- G. reasoning


def test_reasoning_in_three_shapes() -> None:
    """G-31: reasoning_content (DeepSeek), reasoning (Groq, Ollama, vLLM), reasoning_details (OpenRouter)."""
    assert body({"content": "", "reasoning_content": "R"}).reasoning == "R"
    assert body({"content": "", "reasoning": "R"}).reasoning == "R"
    details = [
        {"type": "reasoning.text", "text": "R", "format": "x", "index": 0},
        {"type": "reasoning.encrypted", "data": "gAAAA", "index": 1},
    ]
    assert body({"content": "", "reasoning": None, "reasoning_details": details}).reasoning == "R"
    summary = [{"type": "reasoning.summary", "summary": "S"}]
    assert body({"content": "", "reasoning_details": summary}).reasoning == "S"


def test_reasoning_and_reasoning_details_in_the_same_delta_are_not_doubled() -> None:
    """G-31: OpenRouter sends `reasoning` and `reasoning_details` with the same text."""
    data = sse(
        chunk({"reasoning": "This", "reasoning_details": [{"type": "reasoning.text", "text": "This"}]}),
        chunk({"reasoning": " is", "reasoning_details": [{"type": "reasoning.text", "text": " is"}]}),
        chunk({"reasoning": None, "reasoning_details": [{"type": "reasoning.text", "signature": "Et0B"}]}),
        chunk({"content": "4"}, "stop"),
    )
    reply = streamed(data)
    assert (reply.reasoning, reply.content) == ("This is", "4")


def test_reasoning_is_recorded_but_not_sent_back() -> None:
    """G-31: reasoning is kept in history for the record, never replayed to the server."""
    state, actions = transition(awaiting_model(), ModelReply(content="hi", reasoning="secret thoughts"))
    assert state.history[-1].reasoning == "secret thoughts"  # type: ignore[union-attr]
    state, actions = transition(state, UserInput("again"))
    request = actions[-1]
    assert isinstance(request, CallModel)
    assert "secret thoughts" not in json.dumps(dict(request.body))


# ---------------------------------------------------------------- H. error bodies


def _classify(status: int, error: Any, headers: dict[str, str] | None = None) -> ModelFailure:
    raw = error if isinstance(error, bytes) else json.dumps(error).encode()
    return failures.classify_http_error(status, headers or {}, raw)


def test_error_envelope_openai_nested() -> None:
    """H-32: {"error": {message, type, param, code: <string|null>}}."""
    failure = _classify(
        404,
        {
            "error": {
                "message": "The model `x` does not exist",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        },
    )
    assert (failure.kind, failure.status) == (FailureKind.BAD_REQUEST, 404)
    assert "The model `x` does not exist" in failure.message


def test_error_envelope_openrouter_int_code_and_raw_json_string() -> None:
    """H-32: OpenRouter's error.code is an integer and metadata.raw a JSON-encoded string."""
    raw = json.dumps({"error": {"message": "must contain the word 'json'", "type": "invalid_request_error"}})
    failure = _classify(
        400,
        {
            "error": {
                "message": "Provider returned error",
                "code": 400,
                "metadata": {"raw": raw, "provider_name": "OpenAI"},
            },
            "user_id": "u",
        },
    )
    assert failure.kind is FailureKind.BAD_REQUEST
    assert "must contain the word 'json'" in failure.message and "OpenAI" in failure.message
    plain = _classify(
        429,
        {
            "error": {
                "code": 429,
                "message": "Provider returned error",
                "metadata": {"raw": "rate-limited upstream", "provider_name": "Google"},
            }
        },
    )
    assert plain.kind is FailureKind.RATE_LIMIT and "rate-limited upstream" in plain.message


def test_error_envelope_flat_vllm_and_mistral() -> None:
    """H-32: vLLM and Mistral use a flat {"object": "error", ...} with int or numeric-string code."""
    vllm = _classify(
        400,
        {
            "object": "error",
            "message": "maximum context length is 2048 tokens",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
    )
    assert vllm.kind is FailureKind.CONTEXT_OVERFLOW
    mistral = _classify(
        400,
        {
            "object": "error",
            "message": "Tool call id was 2968-LWy3uasib",
            "type": "invalid_function_call",
            "param": None,
            "code": "3280",
        },
    )
    assert mistral.kind is FailureKind.BAD_REQUEST and "2968-LWy3uasib" in mistral.message


def test_error_envelope_azure_string_code_and_odd_spacing() -> None:
    """H-32, J-37: Azure's {"error":{"code":"404","message": "Resource not found"}}."""
    failure = _classify(404, b'{"error":{"code":"404","message": "Resource not found"}}')
    assert failure.kind is FailureKind.BAD_REQUEST and "Resource not found" in failure.message


def test_error_envelope_without_type_and_with_top_level_ids() -> None:
    """H-32: OpenRouter 401 has no type; DashScope adds top-level id/request_id."""
    auth = _classify(401, {"error": {"message": "No cookie auth credentials found", "code": 401}})
    assert auth.kind is FailureKind.AUTH and retry_delay(auth, 1, RetryPolicy()) is None
    dashscope = _classify(
        400,
        {
            "error": {
                "message": "<400> InternalError.Algo.InvalidParameter",
                "code": "invalid_parameter_error",
            },
            "id": "chatcmpl-1",
            "request_id": "r",
        },
    )
    assert dashscope.kind is FailureKind.BAD_REQUEST


def test_error_body_that_is_not_json() -> None:
    """H: proxies answer with HTML or plain text."""
    failure = _classify(502, b"<html><body>Bad Gateway</body></html>")
    assert failure.kind is FailureKind.SERVER_ERROR and "Bad Gateway" in failure.message


def test_context_overflow_in_all_its_spellings() -> None:
    """H-33: code context_length_exceeded (OpenAI), same text with another code (DeepSeek), flat vLLM."""
    openai = _classify(
        400, {"error": {"message": "too long", "code": "context_length_exceeded", "param": "messages"}}
    )
    deepseek = _classify(
        400,
        {
            "error": {
                "message": "This model's maximum context length is 65536 tokens.",
                "code": "invalid_request_error",
            }
        },
    )
    for failure in (openai, deepseek):
        assert failure.kind is FailureKind.CONTEXT_OVERFLOW
        assert retry_delay(failure, 1, RetryPolicy()) is None


def test_server_errors_with_null_code() -> None:
    """H-34: OpenAI 5xx bodies have type server_error and code null; overloads are 503."""
    for status in (500, 503):
        failure = _classify(
            status, {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": None}}
        )
        assert failure.kind is FailureKind.SERVER_ERROR
        assert retry_delay(failure, 1, RetryPolicy()) is not None


# ---------------------------------------------------------------- I. retry hints


def test_retry_after_ms_header_wins() -> None:
    """I-35: retry-after-ms is read first (openai-python)."""
    failure = _classify(
        429, {"error": {"message": "slow down"}}, {"Retry-After-Ms": "1500", "Retry-After": "9"}
    )
    assert failure.retry_after == 1.5


def test_retry_after_seconds_header() -> None:
    """I-35: retry-after as (float) seconds."""
    assert _classify(503, {"error": {"message": "busy"}}, {"retry-after": "2.5"}).retry_after == 2.5


def test_retry_after_http_date_is_no_hint() -> None:
    """I-35: an HTTP-date needs a clock the kernel does not have; backoff applies."""
    failure = _classify(503, {"error": {"message": "busy"}}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert failure.retry_after is None


def test_retry_hint_in_the_message_text() -> None:
    """I-35: OpenAI 429 messages say "Please try again in 18.642s" / "1m2.5s" / "114h18m0s"."""
    cases = {"18.642s": 18.642, "1m2.5s": 62.5, "114h18m0s": 411480.0, "120ms": 0.12}
    for text, seconds in cases.items():
        failure = _classify(
            429, {"error": {"message": f"Rate limit reached. Please try again in {text}. Visit"}}
        )
        assert failure.retry_after is not None and abs(failure.retry_after - seconds) < 1e-9, text


def test_retry_hint_longer_than_the_policy_allows_gives_up() -> None:
    """I-35: a 114-hour wait is not waited for."""
    failure = _classify(429, {"error": {"message": "Please try again in 114h18m0s."}})
    assert retry_delay(failure, 1, RetryPolicy()) is None


def test_azure_minus_one_ratelimit_headers_are_no_hint() -> None:
    """I-35: Azure has returned -1/0 x-ratelimit headers and no retry-after."""
    headers = {"x-ratelimit-remaining-requests": "-1", "x-ratelimit-reset-tokens": "0", "retry-after": "-1"}
    assert _classify(429, {"error": {"message": "busy"}}, headers).retry_after is None


# ---------------------------------------------------------------- J. envelope


def test_created_in_milliseconds_and_changing_chunk_ids() -> None:
    """J-36: created in ms; per-chunk id changing (OCI via LiteLLM) does not split a reply."""
    data = sse(
        {
            **chunk(tool_delta(index=0, id="c1", function={"name": "shell", "arguments": '{"command"'})),
            "id": "a",
            "created": 1753242299123,
        },
        {**chunk(tool_delta(index=0, function={"arguments": ': "ls"}'})), "id": "b"},
    )
    assert calls_of(streamed(data)) == [("c1", "shell", '{"command": "ls"}')]


def test_body_formatting_does_not_matter() -> None:
    """J-37: pretty-printed, compact or oddly spaced JSON decode the same."""
    payload = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]
    }
    decoded = {response.decode_body(json.dumps(payload, indent=indent).encode()) for indent in (None, 2, 4)}
    assert len(decoded) == 1


# ---------------------------------------------------------------- helpers


def _result(call_id: str) -> Any:
    from nano_code.kernel.events import ToolResult

    return ToolResult(call_id=call_id, output="ok")
