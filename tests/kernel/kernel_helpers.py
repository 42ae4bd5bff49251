"""Helpers shared by the kernel tests: shared-data access, decoding, protocol checks."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from nano_code.kernel import codec, stream
from nano_code.kernel.events import ModelFailure, ModelReply
from nano_code.kernel.types import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SAMPLES = SHARED / "real-traffic" / "samples"
SCHEMA = SHARED / "openai-schema" / "chat-completions.schema.json"


def require(path: Path) -> Path:
    """`path`, or skip the calling test when ../shared is not part of this checkout."""
    if not path.exists():
        pytest.skip(f"{path} not found (../shared is only present in development checkouts)")
    return path


def sample_files() -> list[str]:
    """Names of the recorded bodies (sidecars excluded); [] when shared is absent."""
    if not SAMPLES.is_dir():
        return []
    return sorted(p.name for p in SAMPLES.iterdir() if p.is_file() and not p.name.endswith(".meta.json"))


def sample_meta(name: str) -> dict[str, Any]:
    """The sidecar of sample `name` ({} when it has none)."""
    base = name[: -len(".json")] if name.endswith(".json") else name.rsplit(".", 1)[0]
    meta = SAMPLES / f"{base}.meta.json"
    if not meta.exists():
        return {}
    loaded: dict[str, Any] = json.loads(meta.read_text())
    return loaded


def sample_status(name: str) -> int:
    """HTTP status of a sample: its sidecar's, else the `_error_NNN_` in its name, else 200."""
    status = sample_meta(name).get("status")
    if isinstance(status, int):
        return status
    match = re.search(r"_error_(\d{3})_", name)
    return int(match.group(1)) if match else 200


def chunks_as_sse(lines: Iterable[str]) -> bytes:
    """A vercel `.chunks.jsonl` fixture framed back into SSE (plus `data: [DONE]`)."""
    framed = "".join(f"data: {line}\n\n" for line in lines if line.strip())
    return (framed + "data: [DONE]\n\n").encode()


def sample_wire_bytes(name: str) -> bytes:
    """The body of a sample as it came over the wire (chunk fixtures re-framed)."""
    raw = (SAMPLES / name).read_bytes()
    if name.endswith(".chunks.jsonl"):
        return chunks_as_sse(raw.decode().splitlines())
    return raw


def is_stream_sample(name: str) -> bool:
    return name.endswith((".sse", ".chunks.jsonl"))


def decode_sample(name: str) -> ModelReply | ModelFailure:
    """Decode a sample the way the HTTP adapter would."""
    status = sample_status(name)
    meta_headers: Mapping[str, str] = sample_meta(name).get("headers") or {}
    data = sample_wire_bytes(name)
    if is_stream_sample(name):
        return stream.decode_stream([data])
    if status != 200:
        return codec.classify_http_error(status, meta_headers, data)
    return codec.decode_body(data)


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


@cache
def request_validator() -> Any:
    """A jsonschema validator for CreateChatCompletionRequest (skips without shared)."""
    import jsonschema

    schema = json.loads(require(SCHEMA).read_text())
    root = {"$ref": "#/$defs/CreateChatCompletionRequest", "$defs": schema["$defs"]}
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return validator_class(root)


def schema_errors(body: Mapping[str, Any]) -> list[str]:
    validator = request_validator()
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(dict(body))]


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
