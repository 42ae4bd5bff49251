"""Is this a valid Chat Completions conversation? The rules the kernel promises, as a checker.

The system message comes first and only there; every role is known; a tool call has a unique
non-empty id, type "function", a name and JSON-object arguments as a string; each call is answered by
exactly one tool message before the next other message, and each tool message answers a call; only
pending calls may be open at the end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nano_code.kernel.policy import reject_json_constant
from nano_code.kernel.request import encode_message
from nano_code.kernel.state import State
from nano_code.kernel.types import MESSAGE_TYPES

__all__ = ["assert_valid_conversation", "conversation_problems"]

_ROLES = ("system", "user", "assistant", "tool")


def conversation_problems(conversation: Any, pending_ids: Sequence[str] = ()) -> list[str]:
    """Every way `conversation` breaks the rules above, one line each ([] when it is valid).
    `conversation` is a request body, a list of wire or kernel messages, or a `State` (whose
    pending calls may be open at the end, as `pending_ids` may otherwise)."""
    if isinstance(conversation, State):
        if not pending_ids:
            pending_ids = [pending.call.id for pending in conversation.pending]
        conversation = conversation.history
    if isinstance(conversation, Mapping):
        if "messages" not in conversation:
            return ["the body has no messages"]
        conversation = conversation["messages"]
    if isinstance(conversation, (str, bytes)) or not isinstance(conversation, Sequence):
        return [f"not a conversation: {type(conversation).__name__}"]
    messages = [encode_message(m) if isinstance(m, MESSAGE_TYPES) else m for m in conversation]
    if not messages:
        return ["no messages"]
    return _problems(messages, list(pending_ids))


def assert_valid_conversation(conversation: Any, pending_ids: Sequence[str] = ()) -> None:
    """Raise AssertionError listing every problem when `conversation` breaks the rules."""
    problems = conversation_problems(conversation, pending_ids)
    if problems:
        raise AssertionError("not a valid conversation:\n  " + "\n  ".join(problems))


def _problems(messages: list[Any], pending_ids: list[str]) -> list[str]:
    problems: list[str] = []
    first = messages[0]
    if not isinstance(first, Mapping) or first.get("role") != "system":
        problems.append("the first message is not the system message")
    seen_ids: set[str] = set()
    open_ids: list[str] = []  # the latest assistant message's calls not answered yet
    answered: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            problems.append(f"messages[{index}] is not a JSON object: {message!r:.80}")
            continue
        role = message.get("role")
        where = f"messages[{index}] ({role})"
        if role not in _ROLES:
            problems.append(f"{where}: unknown role")
            continue
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id in open_ids:
                open_ids.remove(call_id)
                answered.add(call_id)
            elif call_id in answered:
                problems.append(f"{where}: tool call {call_id!r} answered twice")
            else:
                problems.append(f"{where}: orphan tool message for {call_id!r}: it answers no open call")
            continue
        if open_ids:
            problems.append(f"{where}: tool calls {open_ids} were not answered before it")
            open_ids = []
        if role == "system" and index:
            problems.append(f"{where}: a system message after the first")
        if role == "assistant":
            answered = set()
            problems += _assistant_problems(where, message, seen_ids, open_ids)
    if sorted(open_ids) != sorted(pending_ids):
        if open_ids:
            problems.append(f"the conversation ends with unanswered tool calls {open_ids}")
        waiting = [i for i in pending_ids if i not in open_ids]
        if waiting:
            problems.append(f"calls said to be pending are not open at the end: {waiting}")
    return problems


def _assistant_problems(
    where: str, message: Mapping[str, Any], seen_ids: set[str], open_ids: list[str]
) -> list[str]:
    problems: list[str] = []
    calls = message.get("tool_calls")
    if calls is None:
        return problems
    if not isinstance(calls, list) or not calls:
        return [f"{where}: tool_calls is not a non-empty list"]
    for call in calls:
        call_id = call.get("id") if isinstance(call, Mapping) else None
        if not isinstance(call_id, str) or not call_id:
            problems.append(f"{where}: a tool call without an id: {call!r:.120}")
            continue
        if call_id in seen_ids:
            problems.append(f"{where}: tool call id {call_id!r} used twice")
        seen_ids.add(call_id)
        open_ids.append(call_id)
        function = call.get("function")
        if call.get("type") != "function" or not isinstance(function, Mapping):
            problems.append(f"{where}: tool call {call_id!r} is not a function call")
            continue
        if not isinstance(function.get("name"), str):
            problems.append(f"{where}: tool call {call_id!r} has no name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            problems.append(f"{where}: arguments of {call_id!r} are not a JSON string: {arguments!r:.120}")
            continue
        try:
            parsed = json.loads(arguments, parse_constant=reject_json_constant)
        except (ValueError, RecursionError) as error:
            problems.append(f"{where}: arguments of {call_id!r} are not JSON: {error}")
            continue
        if not isinstance(parsed, dict):
            problems.append(f"{where}: arguments of {call_id!r} are not a JSON object")
    return problems
