"""What the sandbox costs per shell call: `true` through the shell tool, with and without bubblewrap.

    .venv/bin/python bench/sandbox_overhead.py              # 5 rounds of 40 calls per variant
    .venv/bin/python bench/sandbox_overhead.py --rounds 3 --calls 20

Each round runs every variant `--calls` times, interleaved call by call so
that a noisy machine slows them alike; the report gives, per variant, the
median of all calls and of each round's median, and the difference and ratio
to the unsandboxed call. Also timed: `probe()`, the one trial run nano-code
makes per process to learn whether bubblewrap works. Benchmarks, not tests:
nothing here asserts. Needs a working `bwrap` (prints why not otherwise).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nano_code.adapters import sandbox
from nano_code.adapters.sandbox import Sandbox
from nano_code.adapters.tool import ToolContext
from nano_code.adapters.tools import run_tool
from nano_code.kernel.types import SandboxMode


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=40, help="calls per variant per round")
    options = parser.parse_args()

    sandbox.probe.cache_clear()
    probe_time = timed(sandbox.probe)
    reason = sandbox.probe()
    if reason is not None:
        print(f"no sandbox to measure: {reason}")
        return 1
    probe_times = []
    for _ in range(10):
        sandbox.probe.cache_clear()
        probe_times.append(timed(sandbox.probe))

    with tempfile.TemporaryDirectory(prefix="nano-code-bench-") as directory:
        workspace = Path(directory).resolve()

        def context(mode: SandboxMode | None, network: bool = False) -> ToolContext:
            box = None if mode is None else Sandbox(mode, network=network, workspace=workspace)
            return ToolContext(workspace=workspace, sandbox=box)

        variants = {
            "no sandbox": context(None),
            "workspace-write": context(SandboxMode.WORKSPACE_WRITE),
            "workspace-write + network": context(SandboxMode.WORKSPACE_WRITE, network=True),
            "read-only": context(SandboxMode.READ_ONLY),
        }
        for ctx in variants.values():  # warm up: page cache, first fork of each binary
            for _ in range(3):
                assert run_tool("shell", {"command": "true"}, ctx).exit_status == 0
        samples: dict[str, list[list[float]]] = {name: [] for name in variants}
        for round_number in range(options.rounds):
            per_round: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(options.calls):
                for name, ctx in variants.items():
                    per_round[name].append(timed(lambda ctx=ctx: run_tool("shell", {"command": "true"}, ctx)))
            for name in variants:
                samples[name].append(per_round[name])
            sys.stderr.write(f"[bench] round {round_number + 1}/{options.rounds} done\n")

    base = statistics.median([t for run in samples["no sandbox"] for t in run])
    print(
        f"# sandbox overhead: `true` through the shell tool ({options.rounds} rounds x {options.calls} calls)\n"
    )
    print(f"probe(): first call {ms(probe_time)}, median of 10 more {ms(statistics.median(probe_times))}\n")
    print("| variant | median per call | round medians | minus no sandbox | ratio |")
    print("|---|---|---|---|---|")
    for name, runs in samples.items():
        median = statistics.median([t for run in runs for t in run])
        rounds = ", ".join(f"{statistics.median(run) * 1000:.2f}" for run in runs)
        print(f"| {name} | {ms(median)} | {rounds} | {ms(median - base)} | {median / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
