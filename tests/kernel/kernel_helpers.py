"""Helpers shared by the kernel tests: response files, expectations, protocol checks.

Response files come from two places: `../shared/real-traffic/samples` (recorded
real traffic, only in development checkouts, read by path and never copied) and
`tests/kernel/fixtures` (hand-written bodies in the same shapes, always here).
Both are decoded and checked by the same functions below. The checks every
response file gets are written once, at the end of this file:
test_real_traffic.py runs them over the recordings, test_standalone_fixtures.py
over the fixtures.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nano_code.kernel import failures, response, stream
from nano_code.kernel.actions import AskApproval, CallModel, CheckToolCall, RetryModel, RunTool
from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply
from nano_code.kernel.machine import transition
from nano_code.kernel.state import Phase, State, initial_state
from nano_code.kernel.types import AssistantMessage, Message, Usage
from nano_code.testing import conversation_problems
from nano_code.testing.strategies import DEMO_TOOLS
from nano_code.testing.wire_strategies import byte_pieces

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SAMPLES = SHARED / "real-traffic" / "samples"
SCHEMA = SHARED / "openai-schema" / "chat-completions.schema.json"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
"""Hand-written response bodies (ours, not recordings) and our request-schema subset."""
SUBSET_SCHEMA = FIXTURES / "request-subset.schema.json"


def require(path: Path) -> Path:
    """`path`, or skip the calling test when ../shared is not part of this checkout."""
    if not path.exists():
        pytest.skip(f"{path} not found (../shared is only present in development checkouts)")
    return path


def response_files(directory: Path) -> list[str]:
    """Names of the response bodies in `directory` (sidecars and schemas excluded)."""
    if not directory.is_dir():
        return []
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith((".json", ".sse", ".chunks.jsonl"))
        if not p.name.endswith((".meta.json", ".schema.json"))
    )


def file_meta(path: Path) -> dict[str, Any]:
    """The `.meta.json` sidecar of response file `path` ({} when it has none)."""
    name = path.name
    base = name[: -len(".json")] if name.endswith(".json") else name.rsplit(".", 1)[0]
    meta = path.with_name(f"{base}.meta.json")
    if not meta.exists():
        return {}
    loaded: dict[str, Any] = json.loads(meta.read_text())
    return loaded


def file_status(path: Path) -> int:
    """HTTP status of a response file: its sidecar's, else the `_error_NNN_` in its name, else 200."""
    status = file_meta(path).get("status")
    if isinstance(status, int):
        return status
    match = re.search(r"_error_(\d{3})_", path.name)
    return int(match.group(1)) if match else 200


def chunks_as_sse(lines: Iterable[str]) -> bytes:
    """A vercel `.chunks.jsonl` fixture framed back into SSE (plus `data: [DONE]`)."""
    framed = "".join(f"data: {line}\n\n" for line in lines if line.strip())
    return (framed + "data: [DONE]\n\n").encode()


def wire_bytes(path: Path) -> bytes:
    """The body of a response file as it came over the wire (chunk files re-framed)."""
    raw = path.read_bytes()
    if path.name.endswith(".chunks.jsonl"):
        return chunks_as_sse(raw.decode().splitlines())
    return raw


def is_stream_sample(name: str) -> bool:
    return name.endswith((".sse", ".chunks.jsonl"))


def decode_file(path: Path) -> ModelReply | ModelFailure:
    """Decode a response file the way the HTTP adapter would."""
    status = file_status(path)
    meta_headers: Mapping[str, str] = file_meta(path).get("headers") or {}
    data = wire_bytes(path)
    if is_stream_sample(path.name):
        return stream.decode_stream([data])
    if status != 200:
        return failures.classify_http_error(status, meta_headers, data)
    return response.decode_body(data)


def decode_pieces(pieces: Sequence[bytes]) -> ModelReply | ModelFailure:
    """A 200 event stream fed to the decoder in `pieces`."""
    decoder = stream.ResponseDecoder(200, {"content-type": "text/event-stream; charset=utf-8"})
    for piece in pieces:
        decoder.feed(piece)
    return decoder.finish()


# ---------------------------------------------------------------- expectations

ABSENT = object()
"""The call carried no arguments at all (decoded as None)."""


@dataclass(frozen=True)
class Raw:
    """Arguments expected as exactly this text (for values that are not JSON, like "")."""

    text: str


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: Any
    """The parsed arguments object, ABSENT, or Raw(text)."""


@dataclass(frozen=True)
class Reply:
    calls: tuple[Call, ...] = ()
    content: str | None = ""
    """Exact text; None to check `content_prefix` instead."""
    content_prefix: str = ""
    finish: str | None = None
    usage: tuple[int, int, int, int, int, float | None] | None = None
    """(prompt, completion, total, cached, reasoning tokens, cost)."""
    reasoning: str | None = ""
    """Exact reasoning text; None to check `reasoning_prefix` instead."""
    reasoning_prefix: str = ""
    model: str | None = None


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    status: int | None
    says: tuple[str, ...] = field(default=())
    """Fragments the message must contain."""
    retry_after: float | None = None


def check_reply(decoded: ModelReply | ModelFailure, expected: Reply) -> None:
    assert isinstance(decoded, ModelReply), f"expected a reply, got {decoded!r}"
    assert len(decoded.tool_calls) == len(expected.calls), decoded.tool_calls
    for got, want in zip(decoded.tool_calls, expected.calls, strict=True):
        assert (got.id, got.name) == (want.id, want.name)
        if want.arguments is ABSENT:
            assert got.arguments is None
        elif isinstance(want.arguments, Raw):
            assert got.arguments == want.arguments.text
        else:
            assert got.arguments is not None
            assert json.loads(got.arguments) == want.arguments
    if expected.content is None:
        assert decoded.content.startswith(expected.content_prefix)
        assert len(decoded.content) > len(expected.content_prefix)
    else:
        assert decoded.content == expected.content
    if expected.reasoning is None:
        assert decoded.reasoning.startswith(expected.reasoning_prefix)
    else:
        assert decoded.reasoning == expected.reasoning
    assert decoded.finish_reason == expected.finish
    assert decoded.model == expected.model
    if expected.usage is None:
        assert decoded.usage is None
    else:
        prompt, completion, total, cached, reasoning_tokens, cost = expected.usage
        assert decoded.usage == Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total,
            cached_tokens=cached,
            reasoning_tokens=reasoning_tokens,
            cost=cost,
        )


def check_failure(decoded: ModelReply | ModelFailure, expected: Failure) -> None:
    assert isinstance(decoded, ModelFailure), f"expected a failure, got {decoded!r}"
    assert decoded.kind is expected.kind, decoded
    assert decoded.status == expected.status
    for fragment in expected.says:
        assert fragment in decoded.message, (fragment, decoded.message)
    assert decoded.retry_after == expected.retry_after


def check(decoded: ModelReply | ModelFailure, expected: Reply | Failure) -> None:
    if isinstance(expected, Reply):
        check_reply(decoded, expected)
    else:
        check_failure(decoded, expected)


# ---------------------------------------------------------------- protocol checks


def _is_text(content: object) -> bool:
    """A string, or (a message with a cache marker) a non-empty list of text parts."""
    if isinstance(content, list):
        return bool(content) and all(
            isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
            for part in content
        )
    return isinstance(content, str)


def body_problems(body: Mapping[str, Any]) -> list[str]:
    """A self-contained structural check of a request body (no schema needed)."""
    body = dict(body)  # the kernel's RequestBody is a lazy Mapping
    problems: list[str] = []
    if not isinstance(body.get("model"), str):
        problems.append("model is not a string")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages is not a non-empty list"]
    if messages[0].get("role") != "system":
        problems.append("the first message is not the system message")
    open_calls: set[str] = set()
    all_ids: set[str] = set()
    for position, message in enumerate(messages):
        role = message.get("role")
        where = f"messages[{position}]"
        if role not in ("system", "user", "assistant", "tool"):
            problems.append(f"{where}: unknown role {role!r}")
        if role == "system" and position:
            problems.append(f"{where}: system message after the first")
        if role in ("system", "user", "tool") and not _is_text(message.get("content")):
            problems.append(f"{where}: content is neither a string nor text parts")
        if role == "tool":
            if message.get("tool_call_id") not in open_calls:
                problems.append(f"{where}: tool message answers no open call")
            open_calls.discard(message.get("tool_call_id"))
            continue
        if open_calls:
            problems.append(f"{where}: {sorted(open_calls)} unanswered before a {role} message")
            open_calls = set()
        if role != "assistant":
            continue
        calls = message.get("tool_calls")
        content = message.get("content")
        if calls is None:
            if not _is_text(content):
                problems.append(f"{where}: assistant without tool calls has no text content")
            continue
        if not isinstance(calls, list) or not calls:
            problems.append(f"{where}: tool_calls is not a non-empty list")
            continue
        if content is not None and not _is_text(content):
            problems.append(f"{where}: content is neither text nor null")
        for call in calls:
            function = call.get("function") or {}
            if call.get("type") != "function" or not isinstance(call.get("id"), str) or not call["id"]:
                problems.append(f"{where}: malformed tool call {call!r}")
                continue
            if call["id"] in all_ids:
                problems.append(f"{where}: duplicate tool call id {call['id']!r}")
            all_ids.add(call["id"])
            open_calls.add(call["id"])
            arguments = function.get("arguments")
            if not isinstance(function.get("name"), str) or not isinstance(arguments, str):
                problems.append(f"{where}: tool call name/arguments are not strings")
                continue
            try:
                parsed = json.loads(arguments, parse_constant=_reject_constant)
            except ValueError as error:
                problems.append(f"{where}: arguments are not JSON: {error}")
                continue
            if not isinstance(parsed, dict):
                problems.append(f"{where}: arguments are not a JSON object")
    tools = body.get("tools")
    if tools is not None:
        for tool in tools:
            if tool.get("type") != "function" or not isinstance(tool.get("function", {}).get("name"), str):
                problems.append(f"malformed tool {tool!r}")
    if body.get("stream") is True and body.get("stream_options") != {"include_usage": True}:
        problems.append("a streamed request does not ask for usage")
    return problems


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not standard JSON")


def _validator_for(schema_file: Path, root_name: str) -> Any:
    import jsonschema

    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    root = {"$ref": f"#/$defs/{root_name}", "$defs": schema["$defs"]}
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator_class.check_schema(schema)
    return validator_class(root)


def _errors(validator: Any, body: Mapping[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(dict(body))]


@cache
def request_validator() -> Any:
    """A jsonschema validator for the official CreateChatCompletionRequest (skips without shared)."""
    return _validator_for(require(SCHEMA), "CreateChatCompletionRequest")


def schema_errors(body: Mapping[str, Any]) -> list[str]:
    """Where `body` breaks the official schema (../shared/openai-schema)."""
    return _errors(request_validator(), dict(body))


@cache
def subset_validator() -> Any:
    """A validator for OUR OWN subset schema (fixtures/request-subset.schema.json), always present."""
    return _validator_for(SUBSET_SCHEMA, "NanoCodeRequest")


def subset_errors(body: Mapping[str, Any]) -> list[str]:
    """Where `body` breaks our own subset of the request schema (not the official one)."""
    return _errors(subset_validator(), body)


# ---------------------------------------------------------------- driving the machine


def history_call_ids(history: Sequence[Message]) -> list[str]:
    return [c.id for m in history if isinstance(m, AssistantMessage) for c in m.tool_calls]


def draw_event(data: Any, state: Any) -> Any:
    """An event the phase of `state` accepts, drawn with hypothesis' `data`."""
    from hypothesis import strategies as st

    from nano_code.kernel.events import ApprovalDecision, Interrupt, ToolCallFacts, Verdict
    from nano_code.kernel.state import Phase
    from nano_code.testing import strategies as ns

    if data.draw(st.integers(0, 30), label="interrupt?") == 0:
        return Interrupt()
    phase = state.phase
    head = state.pending[0].call.id if state.pending else ""
    if phase is Phase.AWAITING_USER:
        return data.draw(ns.user_inputs())
    if phase is Phase.AWAITING_MODEL:
        if data.draw(st.integers(0, 4), label="failure?") == 0:
            return data.draw(ns.model_failures())
        return data.draw(ns.model_replies(state.config.tools, history_call_ids(state.history)))
    if phase is Phase.AWAITING_TOOL_FACTS:
        return ToolCallFacts(call_id=head, inside_workspace=data.draw(st.booleans()))
    if phase is Phase.AWAITING_APPROVAL:
        return ApprovalDecision(
            call_id=head,
            verdict=data.draw(st.sampled_from(Verdict)),
            reason=data.draw(st.sampled_from(["", "no"])),
        )
    return data.draw(ns.tool_results(head))


def bodies_of_a_walk(data: Any, config: Any, steps: int) -> list[dict[str, Any]]:
    """Request bodies from a random walk (drawn with hypothesis' `data`) through reachable states."""
    from nano_code.kernel.actions import CallModel, RetryModel
    from nano_code.kernel.machine import transition
    from nano_code.kernel.request import build_request
    from nano_code.kernel.state import initial_state

    state = initial_state(config)
    bodies = [build_request(config, state.history)]
    for _ in range(steps):
        state, actions = transition(state, draw_event(data, state))
        bodies.extend(dict(a.body) for a in actions if isinstance(a, (CallModel, RetryModel)))
    return bodies


# ---------------------------------------------------------------- the checks every response file gets
#
# Written once, run by test_real_traffic.py over ../shared/real-traffic/samples
# and by test_standalone_fixtures.py over tests/kernel/fixtures. Each module
# binds them to its own test names and lets `parametrize_response_files` hand
# them their cases: the name of a check's argument says which files it takes.


@dataclass(frozen=True)
class ResponseFile:
    """A response file and what a person reading it sees."""

    path: Path
    expected: Reply | Failure


EVERY_BYTE_UP_TO = 6 * 1024
"""Streams at most this long (on the wire) are split at every byte, which is
quadratic; longer ones get the random splits of `stream_split_anywhere` only."""


def parametrize_response_files(
    metafunc: pytest.Metafunc, directory: Path, expected: Mapping[str, Reply | Failure]
) -> None:
    """Give a check below the files of `directory` its argument asks for, one case each.

    `any_file`: every file `expected` lists; `stream_file`: the streams (`.sse`,
    `.chunks.jsonl`); `short_stream_file`: the streams of at most
    EVERY_BYTE_UP_TO bytes; `sse_file`: the `.sse` ones. Test ids are the file
    names. Files are only read to measure streams, and only when they exist
    (../shared may be absent while a module is collected and then deselected).
    """
    names = sorted(expected)
    streams = [name for name in names if is_stream_sample(name)]
    chosen: dict[str, list[str]] = {
        "any_file": names,
        "stream_file": streams,
        "sse_file": [name for name in streams if name.endswith(".sse")],
    }
    if "short_stream_file" in metafunc.fixturenames:
        chosen["short_stream_file"] = [
            name
            for name in streams
            if (directory / name).exists() and len(wire_bytes(directory / name)) <= EVERY_BYTE_UP_TO
        ]
    for argname, cases in chosen.items():
        if argname in metafunc.fixturenames:
            files = [ResponseFile(directory / name, expected[name]) for name in cases]
            metafunc.parametrize(argname, files, ids=cases)


def every_file_has_an_expectation(directory: Path, expected: Mapping[str, Reply | Failure]) -> set[str]:
    """The response files in `directory`, each with an expectation and each expectation with a file."""
    on_disk = set(response_files(directory))
    assert on_disk, f"no response files in {directory}"
    missing = sorted(on_disk - expected.keys())
    stale = sorted(expected.keys() - on_disk)
    assert not missing, f"files without an expectation in EXPECTED: {missing}"
    assert not stale, f"expectations for files that do not exist: {stale}"
    return on_disk


def awaiting_model(*, auto: bool) -> State:
    """A fresh kernel that was asked something and waits for the model: one without
    tools, or (`auto`) one with the demo tools, approved automatically."""
    from nano_code.kernel.events import UserInput
    from nano_code.kernel.types import ApprovalMode, KernelConfig

    config = KernelConfig(model="m", system_prompt="s")
    if auto:
        config = KernelConfig(model="m", system_prompt="s", tools=DEMO_TOOLS, approval=ApprovalMode.AUTO)
    state, _ = transition(initial_state(config), UserInput("go"))
    assert state.phase is Phase.AWAITING_MODEL
    return state


def drive(event: ModelReply | ModelFailure) -> tuple[State, list[Any]]:
    """Feed `event` to a kernel waiting for the model (`auto`), then answer its tool work
    until it calls the model again."""
    from nano_code.kernel.events import ToolCallFacts, ToolResult

    state, actions = transition(awaiting_model(auto=True), event)
    seen = list(actions)
    for _ in range(10):
        last = actions[-1] if actions else None
        if isinstance(last, RunTool):
            state, actions = transition(state, ToolResult(call_id=last.call.id, output="ok"))
        elif isinstance(last, CheckToolCall):
            state, actions = transition(state, ToolCallFacts(call_id=last.call.id, inside_workspace=True))
        else:
            break
        seen.extend(actions)
    return state, seen


def decodes_to_what_it_says(any_file: ResponseFile) -> None:
    check(decode_file(any_file.path), any_file.expected)


def drives_the_machine(any_file: ResponseFile) -> None:
    """Whatever the body says, the kernel moves on, and every request it builds next is valid."""
    decoded = decode_file(any_file.path)
    _, actions = transition(awaiting_model(auto=False), decoded)
    assert actions, "a kernel without tools did nothing with it"
    state, actions = drive(decoded)
    assert actions
    assert not any(isinstance(a, AskApproval) for a in actions)
    bodies = [dict(a.body) for a in actions if isinstance(a, (CallModel, RetryModel))]
    for body in bodies:
        assert body_problems(body) == []
        assert subset_errors(body) == []
    pending = [p.call.id for p in state.pending]
    assert conversation_problems(state.history, pending) == []
    if not (isinstance(decoded, ModelReply) and decoded.tool_calls):
        return
    # The calls are replayed: the server's id when it gave one, else a fresh
    # 9-character alphanumeric id (QUIRKS ); arguments as JSON text.
    assert bodies, "a tool round must end with the next model call"
    sent = next(m for m in bodies[-1]["messages"] if m.get("tool_calls"))
    assert [c["function"]["name"] for c in sent["tool_calls"]] == [c.name for c in decoded.tool_calls]
    for got, server in zip(sent["tool_calls"], decoded.tool_calls, strict=True):
        if server.id:
            assert got["id"] == server.id
        else:
            assert len(got["id"]) == 9 and got["id"].isalnum()
        assert isinstance(json.loads(got["function"]["arguments"]), dict)


def stream_split_in_two_at_every_byte(short_stream_file: ResponseFile) -> None:
    data = wire_bytes(short_stream_file.path)
    whole = decode_pieces([data])
    check(whole, short_stream_file.expected)
    for cut in range(len(data) + 1):
        assert decode_pieces([data[:cut], data[cut:]]) == whole, f"split at byte {cut}"


@given(data=st.data())
def stream_split_anywhere(stream_file: ResponseFile, data: st.DataObject) -> None:
    pieces = data.draw(byte_pieces(wire_bytes(stream_file.path), max_pieces=60))
    check(decode_pieces(pieces), stream_file.expected)


def sse_with_other_line_endings(sse_file: ResponseFile) -> None:
    """The same stream framed with CRLF or lone CR decodes the same."""
    data = wire_bytes(sse_file.path)
    for ending in (b"\r\n", b"\r"):
        check(decode_pieces([data.replace(b"\n", ending)]), sse_file.expected)


def stream_without_content_type_is_sniffed(stream_file: ResponseFile) -> None:
    """E-27: a stream whose Content-Type is missing is recognised from its first bytes."""
    decoder = stream.ResponseDecoder(200, {})
    decoder.feed(wire_bytes(stream_file.path))
    check(decoder.finish(), stream_file.expected)
