"""The cache-billing model does what its docstring says, checked on prompts small enough to
count by hand; and a long session, as the kernel builds it, reads most of its prompt from it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from nano_code.kernel.actions import CallModel, RetryModel
from nano_code.kernel.events import ModelReply, ReplyToolCall, ToolResult, UserInput
from nano_code.kernel.types import KernelConfig, PromptCache, Server
from nano_code.testing import drive_kernel
from nano_code.testing.cache_billing import CacheBilling
from nano_code.testing.strategies import DEMO_TOOLS

MARK = {"cache_control": {"type": "ephemeral"}}


def part(text: str, marked: bool) -> Any:
    return [{"type": "text", "text": text, **MARK}] if marked else text


def tokens(value: Any) -> int:
    return math.ceil(len(json.dumps(value, separators=(",", ":"))) / 4)


def test_reads_and_writes_by_hand() -> None:
    billing = CacheBilling(minimum_tokens=1)
    system, task = "s" * 400, "t" * 40
    first = {"messages": [{"role": "system", "content": part(system, True)}, {"role": "user", "content": part(task, True)}]}  # fmt: skip
    blocks = [[], {"role": "system", "content": system}, {"role": "user", "content": task}]
    prompt = sum(tokens(b) for b in blocks)
    usage = billing.usage(first, completion_tokens=10)
    assert usage["prompt_tokens"] == prompt
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": prompt}
    assert usage["cost"] == pytest.approx(prompt * 3e-6 * 1.25 + 10 * 15e-6)

    reply = {"role": "assistant", "content": "done"}
    second = {"messages": [first["messages"][0], {"role": "user", "content": task}, reply, {"role": "user", "content": part("more", True)}]}  # fmt: skip
    added = tokens(reply) + tokens({"role": "user", "content": "more"})
    usage = billing.usage(second, completion_tokens=10)
    assert usage["prompt_tokens_details"] == {"cached_tokens": prompt, "cache_write_tokens": added}
    assert usage["cost"] == pytest.approx(prompt * 3e-6 * 0.1 + added * 3e-6 * 1.25 + 10 * 15e-6)

    plain = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": task}]}
    assert billing.usage(plain)["prompt_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}


def test_a_read_looks_back_only_so_far_from_a_marker() -> None:
    billing = CacheBilling(minimum_tokens=1, lookback=4)
    head = [{"role": "system", "content": part("s" * 100, True)}, {"role": "user", "content": "task"}]
    billing.usage({"messages": head})  # caches [tools, system]
    head = [{"role": "system", "content": "s" * 100}, head[1]]  # from here only the newest is marked
    near = [*head, *({"role": "user", "content": f"m{i}"} for i in range(2)), {"role": "user", "content": part("x", True)}]  # fmt: skip
    far = [*head, *({"role": "user", "content": f"m{i}"} for i in range(9)), {"role": "user", "content": part("x", True)}]  # fmt: skip
    assert billing.usage({"messages": far})["prompt_tokens_details"]["cached_tokens"] == 0
    assert billing.usage({"messages": near})["prompt_tokens_details"]["cached_tokens"] > 0


def test_short_prefixes_are_not_cached() -> None:
    billing = CacheBilling()  # 1024 tokens at least
    body = {"messages": [{"role": "system", "content": part("short", True)}]}
    billing.usage(body)
    assert billing.usage(body)["prompt_tokens_details"]["cached_tokens"] == 0


def session_bills(mode: PromptCache, steps: int = 30) -> CacheBilling:
    """A `steps`-step task as the kernel builds it, each tool output ~100 tokens, billed."""
    config = KernelConfig(
        model="anthropic/claude-sonnet-4.5",
        system_prompt="You are a coding agent. " * 200,
        tools=DEMO_TOOLS,
        max_steps_per_turn=steps + 1,
        prompt_cache=mode,
        server=Server.OPENROUTER,
    )
    events: list[Any] = [UserInput("fix the tests")]
    for step in range(steps):
        call = ReplyToolCall(f"c{step}", "read_file", json.dumps({"path": f"f{step}.py"}))
        events += [ModelReply(tool_calls=(call,)), ToolResult(f"c{step}", f"line {step}\n" * 50)]
    events.append(ModelReply(content="done"))
    billing = CacheBilling()
    for action in drive_kernel(config, events).actions:
        if isinstance(action, (CallModel, RetryModel)):
            billing.usage(dict(action.body))
    return billing


def test_a_30_step_session_reads_most_of_its_prompt_from_the_cache() -> None:
    marked, plain = session_bills(PromptCache.AUTO), session_bills(PromptCache.OFF)
    assert marked.prompt_tokens == plain.prompt_tokens  # the same prompt, markers left out
    assert plain.read_tokens == 0
    assert marked.read_share >= 0.85 and marked.bill_ratio <= 0.25, (marked.read_share, marked.bill_ratio)


def test_without_the_previous_requests_marker_a_wide_step_misses() -> None:
    """Why the newest message of the previous request is marked again: a step of 30 parallel
    calls puts more than 20 blocks between the new marker and the last written prefix."""
    billing = CacheBilling(minimum_tokens=1)
    start = [
        {"role": "system", "content": part("s" * 100, True)},
        {"role": "user", "content": part("task", True)},
    ]
    billing.usage({"messages": start})
    calls = {"role": "assistant", "content": None, "tool_calls": [{"id": f"c{i}"} for i in range(30)]}
    results = [{"role": "tool", "tool_call_id": f"c{i}", "content": "ok"} for i in range(30)]
    results[-1] = {**results[-1], "content": part("ok", True)}
    without = [start[0], {"role": "user", "content": "task"}, calls, *results]
    with_it = [*start, calls, *results]
    read_without = CacheBilling(minimum_tokens=1, cached=set(billing.cached)).usage({"messages": without})
    read_with = CacheBilling(minimum_tokens=1, cached=set(billing.cached)).usage({"messages": with_it})
    assert (
        read_with["prompt_tokens_details"]["cached_tokens"]
        > read_without["prompt_tokens_details"]["cached_tokens"]
    )
