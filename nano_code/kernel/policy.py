"""Decisions, as pure functions: retries, approval, truncation, argument checks."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from nano_code.kernel.events import FailureKind, ModelFailure
from nano_code.kernel.types import ApprovalMode, RetryPolicy, SandboxMode, ToolSpec

NEVER_RETRIED = frozenset(
    {FailureKind.AUTH, FailureKind.BAD_REQUEST, FailureKind.CONTEXT_OVERFLOW, FailureKind.BAD_RESPONSE}
)


def is_transient_status(status: int | None) -> bool:
    """Whether an HTTP status says "try again": 408, 409, 429 or 5xx (as openai-python retries)."""
    return status is not None and (status in (408, 409, 429) or 500 <= status <= 599)


def retry_delay(failure: ModelFailure, attempt: int, policy: RetryPolicy) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to give up (also when the
    server asks to wait longer than `max_server_wait`)."""
    status = failure.status
    if failure.kind in NEVER_RETRIED or attempt >= policy.max_attempts:
        return None
    if failure.kind is FailureKind.IN_BAND_ERROR and status is not None and not is_transient_status(status):
        return None
    if failure.retry_after is not None:
        wait = max(0.0, failure.retry_after)
        return wait if wait <= policy.max_server_wait else None
    # The exponent is capped: 2.0 ** 1024 overflows.
    return min(policy.max_delay, policy.base_delay * (2.0 ** min(attempt - 1, 64)))


def _seconds_text(seconds: float) -> str:
    """`99999`, `10800`, `2.5`: whole seconds without a fraction, others briefly."""
    if seconds >= 10 or seconds == int(seconds):
        return f"{seconds:.0f}"
    return f"{seconds:.3g}"


def give_up_reason(failure: ModelFailure, attempt: int, policy: RetryPolicy) -> str:
    """Why `retry_delay` gave up: the failure's message, and the server's wait if that was why."""
    if failure.retry_after is None or failure.retry_after <= policy.max_server_wait:
        return failure.message
    if retry_delay(attrs.evolve(failure, retry_after=None), attempt, policy) is None:
        return failure.message  # not retried anyway: the wait is not the reason
    return (
        f"{failure.message} (the server asked to wait {_seconds_text(failure.retry_after)} s, "
        f"longer than nano-code waits: {_seconds_text(policy.max_server_wait)} s)"
    )


def cut_middle(text: str, limit: int) -> str:
    """The head and tail of `text` within about `limit` characters, with a marker of the cut."""
    if len(text) <= limit:
        return text
    head_size = limit * 2 // 5
    tail = text[len(text) - (limit - head_size) :]
    return join_head_and_tail(text[:head_size], tail, len(text) - limit, "characters")


def join_head_and_tail(head: str, tail: str, omitted: int, unit: str) -> str:
    """The single place that writes the 'this much was cut' marker."""
    return f"{head}\n[... {omitted} {unit} omitted ...]\n{tail}"


class Approval(enum.Enum):
    RUN = "run"
    ASK = "ask"
    NEEDS_FACTS = "needs_facts"
    """The answer depends on where the path points: ask the driver first."""


def approval_requirement(
    spec: ToolSpec,
    mode: ApprovalMode,
    always_approved: frozenset[str],
    inside_workspace: bool | None,
    sandbox: SandboxMode = SandboxMode.OFF,
) -> Approval:
    """Whether a well-formed call may run without asking: what mutates or leaves the workspace
    asks unless approved for good. A sandbox only removes questions: a sandboxed tool, and
    under `workspace-write` a write inside the workspace, run freely."""
    if mode is ApprovalMode.AUTO or spec.name in always_approved:
        return Approval.RUN
    if sandbox is not SandboxMode.OFF and spec.sandboxed:
        return Approval.RUN
    confined_write = sandbox is SandboxMode.WORKSPACE_WRITE and spec.path_parameter is not None
    if spec.mutates and not confined_write:
        return Approval.ASK
    if spec.path_parameter is None:
        return Approval.RUN
    if inside_workspace is None:
        return Approval.NEEDS_FACTS
    return Approval.RUN if inside_workspace else Approval.ASK


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


MAX_ARGUMENT_DEPTH = 64
"""Deeper arguments are refused: the state holding them must still serialise."""


def _nested_deeper_than(value: object, limit: int) -> bool:
    level: list[Any] = [value]  # the values `limit` levels down, after the loop
    for _ in range(limit):
        level = [child for item in level if isinstance(item, (dict, list)) for child in _children(item)]
    return any(isinstance(item, (dict, list)) for item in level)


def _children(container: dict[Any, Any] | list[Any]) -> Iterable[Any]:
    return container.values() if isinstance(container, dict) else container


def reject_json_constant(name: str) -> Any:
    """For json.loads: NaN and Infinity are not JSON; strict servers refuse them (QUIRKS B-11)."""
    raise ValueError(f"{name} is not a JSON value")


def parse_arguments(spec: ToolSpec | None, name: str, raw: str | None) -> dict[str, Any] | str:
    """The call's arguments as a dict (none when absent or empty), or a message telling the
    model what is wrong. Nothing is guessed or filled in."""
    if spec is None:
        return f"Error: there is no tool named {name!r}. Use one of the tools you were given."
    if raw is None or raw.strip() == "":
        arguments: object = {}
    else:
        try:
            arguments = json.loads(raw, parse_constant=reject_json_constant)
        except (ValueError, RecursionError) as error:
            return (
                f"Error: the arguments of this {name} call are not valid JSON ({error}); "
                "the call was not run. Send the call again with a complete JSON object."
            )
    if not isinstance(arguments, dict):
        return f"Error: the arguments of this {name} call must be a JSON object; the call was not run."
    if _nested_deeper_than(arguments, MAX_ARGUMENT_DEPTH):
        return (
            f"Error: the arguments of this {name} call are nested more than {MAX_ARGUMENT_DEPTH} levels "
            "deep; the call was not run."
        )
    problem = check_argument_values(spec, arguments)
    return arguments if problem is None else problem


def check_argument_values(spec: ToolSpec, arguments: Mapping[str, Any]) -> str | None:
    """Why `arguments` do not fit the tool's schema (required, unknown, types, `minimum`), or
    None. Runs before approval: the user is never asked about a call that could not run."""
    name = spec.name
    raw_properties = spec.parameters.get("properties")
    properties: Mapping[str, Any] = raw_properties if isinstance(raw_properties, Mapping) else {}
    if spec.parameters.get("additionalProperties") is False:
        unknown = [key for key in arguments if key not in properties]
        if unknown:
            return (
                f"Error: {name} has no parameter(s) {', '.join(map(repr, unknown))}; "
                f"its parameters are {', '.join(properties)}. The call was not run."
            )
    missing = [p for p in spec.required_parameters if p not in arguments]
    if missing:
        return f"Error: {name} needs the parameter(s) {', '.join(missing)}; the call was not run."
    for key, value in arguments.items():
        schema = properties.get(key)
        if not isinstance(schema, Mapping):
            continue
        expected = _JSON_TYPES.get(str(schema.get("type")))
        if expected is not None:
            wrong = (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected)
            if wrong:
                return (
                    f"Error: parameter {key!r} of {name} must be of type {schema.get('type')}; "
                    "the call was not run."
                )
        minimum = schema.get("minimum")
        if isinstance(minimum, (int, float)) and isinstance(value, (int, float)) and value < minimum:
            return f"Error: parameter {key!r} of {name} must be at least {minimum}; the call was not run."
    return None


def format_tool_output(output: str, exit_status: int | None, limit: int) -> str:
    """What the model reads for a tool result: capped output plus the exit status."""
    text = cut_middle(output, limit)
    if exit_status is not None:
        text = f"{text}\n[exit status: {exit_status}]" if text else f"[exit status: {exit_status}]"
    return text
