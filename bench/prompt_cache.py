"""What prompt caching saves on nano-code's default model, measured with the real CLI.

nano-code runs a long task against a local server that bills the way Anthropic's cache does
(`nano_code.testing.cache_billing`: prefix hashes written at markers, read within 20 blocks
before one, reads 0.1x and writes 1.25x the input price). Each session runs with markers
(`NANO_CODE_PROMPT_CACHE=auto`, the default) and without (`off`, what nano-code sent before):

- a 30-step session (one turn, a shell call per step);
- a 200-step session in an 8,000-token context window, so the conversation is compacted
  four times (each compaction starts a new prefix; the summary call carries no markers).

Reported: the share of prompt tokens read from the cache, and the bill against the uncached
bill (every prompt token at the input price). Also the per-step cost of placing markers:
building and encoding one request body at the 200-step history length, marked and unmarked,
median of many runs in-process, and the CLI's wall time per step for both (interleaved).

    .venv/bin/python bench/prompt_cache.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from nano_code.testing.cache_billing import CacheBilling
from nano_code.testing.fake_server import FakeServer, is_summary_request, reply

NANO = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "nano-code"
SUMMARY = "Summary: the task is to list numbers with the shell, step after step; nothing failed so far."


def session(steps: int, mode: str, context_tokens: int | None = None) -> tuple[CacheBilling, float, int]:
    """Run a `steps`-step task with markers `mode`; its billing, wall seconds and request count."""
    billing = CacheBilling()
    done = [0]

    def respond(request: Mapping[str, Any], _number: int) -> dict[str, Any]:
        if is_summary_request(request):
            return reply(content=SUMMARY, usage=billing.usage(request, completion_tokens=60))
        done[0] += 1
        usage = billing.usage(request)
        if done[0] > steps:
            return reply(content="Listed them all.", usage=usage)
        return reply(tool_calls=[("shell", {"command": f"seq {done[0]} {done[0] + 40}"})], usage=usage)

    with tempfile.TemporaryDirectory() as root, FakeServer(respond) as server:
        workspace = Path(root) / "ws"
        workspace.mkdir()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("NANO_CODE_", "OPENROUTER"))
        }
        env.update(
            INFERENCE_BASE_URL=server.base_url,
            NANO_CODE_HOME=str(Path(root) / "home"),
            NANO_CODE_SANDBOX="off",
            NANO_CODE_PROMPT_CACHE=mode,
            NANO_CODE_MAX_STEPS=str(steps + 10),
        )
        if context_tokens:
            env["NANO_CODE_CONTEXT_TOKENS"] = str(context_tokens)
        start = time.perf_counter()
        result = subprocess.run(
            [str(NANO), "-p", "list numbers with the shell", "--yes"],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"nano-code failed ({mode}): {result.stderr[-2000:]}")
        return billing, wall, len(server.requests)


def marker_cost(steps: int = 200, repeat: int = 400) -> tuple[float, float]:
    """Median microseconds to build and encode one body at `steps` steps, marked and unmarked."""
    from nano_code.adapters.body_encoder import _BodyEncoder
    from nano_code.kernel.request import RequestBody
    from nano_code.kernel.types import (
        AssistantMessage,
        KernelConfig,
        PromptCache,
        Server,
        SystemMessage,
        ToolCall,
        ToolMessage,
        UserMessage,
    )
    from nano_code.session.settings import kernel_config

    recorded = {
        "model": "anthropic/claude-sonnet-4.5",
        "base_url": "https://openrouter.ai/api/v1",
        "max_steps": 300,
        "stream": True,
        "auto_approve": True,
        "workspace": "/w",
        "prompt_cache": "auto",
    }
    base = kernel_config(recorded, None)
    history: list[Any] = [SystemMessage(base.system_prompt), UserMessage("list numbers")]
    for step in range(steps):
        history.append(
            AssistantMessage(tool_calls=(ToolCall(f"c{step}", "shell", '{"command": "seq 1 40"}'),))
        )
        history.append(ToolMessage(f"c{step}", "\n".join(map(str, range(40)))))
    medians = []
    for config in (base, attrs.evolve(base, prompt_cache=PromptCache.OFF)):
        assert isinstance(config, KernelConfig) and config.server is Server.OPENROUTER
        encoder = _BodyEncoder()
        frozen = tuple(history)
        encoder.encode(RequestBody(config, frozen[:-2]))  # the previous step's body: messages cached
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            encoder.encode(RequestBody(config, frozen))
            times.append(time.perf_counter() - began)
        medians.append(statistics.median(times) * 1e6)
    return medians[0], medians[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="interleaved runs of the 30-step session per mode"
    )
    args = parser.parse_args()
    print("| session | markers | requests | prompt tokens | read from cache | written | bill vs uncached |")
    print("|---|---|---|---|---|---|---|")
    walls: dict[str, list[float]] = {"auto": [], "off": []}
    for label, steps, window in (("30 steps", 30, None), ("200 steps, compacted", 200, 8_000)):
        for run in range(args.runs if steps == 30 else 1):
            for mode in ("auto", "off"):
                billing, wall, requests = session(steps, mode, window)
                if steps == 30:
                    walls[mode].append(wall / requests)
                if run == 0:
                    label = label if steps == 30 else f"200 steps, {requests - steps - 1} compactions"
                    print(
                        f"| {label} | {mode} | {requests} | {billing.prompt_tokens:,} | {billing.read_share:.1%} "
                        f"| {billing.written_tokens:,} | {billing.bill_ratio:.3f}x |"
                    )
    marked, plain = marker_cost()
    print()
    print(
        f"building + encoding one body at 200 steps: {marked:.0f} us marked, {plain:.0f} us unmarked (median)"
    )
    auto, off = statistics.median(walls["auto"]), statistics.median(walls["off"])
    print(f"CLI wall time per request, 30-step session: {auto * 1e3:.1f} ms marked, {off * 1e3:.1f} ms unmarked "
          f"(median of {args.runs} interleaved runs; ratio {auto / off:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
