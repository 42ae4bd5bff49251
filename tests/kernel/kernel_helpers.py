"""Helpers shared by the kernel tests: response files, expectations, protocol checks.

Response files come from two places: `../shared/real-traffic/samples` (recorded
real traffic, only in development checkouts, read by path and never copied) and
`tests/kernel/fixtures` (hand-written bodies in the same shapes, always here).
Both are decoded and checked by the same functions below.
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

from nano_code.kernel import codec, stream
from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply
from nano_code.kernel.types import AssistantMessage, Message, SystemMessage, ToolMessage, Usage, UserMessage

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


def sample_files() -> list[str]:
    """Names of the recorded bodies (sidecars excluded); [] when shared is absent."""
    return response_files(SAMPLES)


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


def sample_meta(name: str) -> dict[str, Any]:
    """The sidecar of sample `name` ({} when it has none)."""
    return file_meta(SAMPLES / name)


def sample_status(name: str) -> int:
    return file_status(SAMPLES / name)


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


def sample_wire_bytes(name: str) -> bytes:
    return wire_bytes(SAMPLES / name)


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
        return codec.classify_http_error(status, meta_headers, data)
    return codec.decode_body(data)


def decode_sample(name: str) -> ModelReply | ModelFailure:
    return decode_file(SAMPLES / name)


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


def conversation_problems(history: Sequence[Message], pending_ids: Sequence[str] = ()) -> list[str]:
    """Everything that makes `history` an invalid Chat Completions conversation.

    `pending_ids` are the calls of the last assistant message that are still
    being worked on; only they may be unanswered, and only at the end.
    """
    problems: list[str] = []
    if not history or not isinstance(history[0], SystemMessage):
        problems.append("the first message is not the system message")
    if any(isinstance(m, SystemMessage) for m in history[1:]):
        problems.append("a system message appears after the first message")
    seen_ids: set[str] = set()
    open_calls: list[str] = []
    answered: set[str] = set()
    for position, message in enumerate(history):
        if isinstance(message, ToolMessage):
            if message.tool_call_id not in open_calls:
                problems.append(
                    f"message {position}: tool message for {message.tool_call_id!r} answers no open call"
                )
            elif message.tool_call_id in answered:
                problems.append(f"message {position}: call {message.tool_call_id!r} answered twice")
            answered.add(message.tool_call_id)
            continue
        if isinstance(message, (AssistantMessage, UserMessage)):
            unanswered = [i for i in open_calls if i not in answered]
            if unanswered:
                problems.append(f"message {position}: calls {unanswered} unanswered before it")
            open_calls, answered = [], set()
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls:
                if call.id in seen_ids:
                    problems.append(f"message {position}: tool call id {call.id!r} is not unique")
                seen_ids.add(call.id)
                open_calls.append(call.id)
    unanswered = [i for i in open_calls if i not in answered]
    if sorted(unanswered) != sorted(pending_ids):
        problems.append(f"unanswered calls at the end {unanswered} != pending {list(pending_ids)}")
    return problems


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
        if role in ("system", "user", "tool") and not isinstance(message.get("content"), str):
            problems.append(f"{where}: content is not a string")
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
            if not isinstance(content, str):
                problems.append(f"{where}: assistant without tool calls has no text content")
            continue
        if not isinstance(calls, list) or not calls:
            problems.append(f"{where}: tool_calls is not a non-empty list")
            continue
        if content is not None and not isinstance(content, str):
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
    from nano_code.kernel.machine import Phase
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
    from nano_code.kernel.codec import build_request
    from nano_code.kernel.machine import initial_state, transition

    state = initial_state(config)
    bodies = [build_request(config, state.history)]
    for _ in range(steps):
        state, actions = transition(state, draw_event(data, state))
        bodies.extend(dict(a.body) for a in actions if isinstance(a, (CallModel, RetryModel)))
    return bodies
