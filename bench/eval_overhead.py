"""What `nano-code eval` costs over running the same tasks by hand, and its memory as samples grow.

    .venv/bin/python bench/eval_overhead.py overhead [--samples 100] [--rounds 3]
    .venv/bin/python bench/eval_overhead.py memory [--counts 1000,3000,10000] [--jobs 8]

overhead: the example suite's four tasks (examples/eval) against its scripted model
(examples/eval/model.py, a separate process on 127.0.0.1), `--samples` samples per variant,
2 at a time, interleaved round by round:
  eval       `nano-code eval --jobs 2`: one process; per sample a fresh workspace copy, the agent,
             the check in the sandbox, the session and its row written to DIR;
  eval in-process  `run_eval(..., jobs=2)` in this process: eval without its process start;
  bare CLI   `nano-code -p TASK` in a fresh copy of the task's workspace, one run after another,
             2 at a time (recording on, as a user gets it; no check);
  loop + check  `run_task_live` then the task's check, in threads in this process: an eval sample
             without the harness (workspaces copied beforehand, untimed; no DIR): eval over it
             is the harness's own cost (copies, reading the session back, DIR writes and fsyncs);
  loop       the same without the check: the agent loop alone, recorded, sandboxed.
Per sample = wall time / samples x 2 (two run at once). Medians over rounds.

memory: the eval process's own peak RSS (VmHWM of exactly that process, polled, and os.wait4's
ru_maxrss) for `--counts` samples of tiny tasks (one reply, check `true`), `--jobs` at a time.
Benchmarks, not tests: nothing here asserts. Every server is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NANO = ROOT / ".venv" / "bin" / "nano-code"
EXAMPLE = ROOT / "examples" / "eval"
MODEL = "example/careful"


def start_model() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "model.py"), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def environment(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("NANO_CODE_", "OPENROUTER_", "MODEL_NAME"))
    }
    return {**env, "NANO_CODE_HOME": str(home)}


def example_tasks() -> list[tuple[str, str, Path | None]]:
    from nano_code.evals import load_suite

    return [
        (task.id, task.prompt, Path(task.workspace) if task.workspace else None)
        for task in load_suite(EXAMPLE / "suite.toml").tasks
    ]


def eval_variant(url: str, samples: int, scratch: Path) -> float:
    epochs = samples // len(example_tasks())
    out = scratch / f"eval-{time.monotonic_ns()}"
    command = [str(NANO), "eval", str(EXAMPLE / "suite.toml"), "--model", MODEL, "--epochs", str(epochs)]
    command += ["--output", str(out), "--base-url", url, "--jobs", "2"]
    started = time.monotonic()
    subprocess.run(command, check=True, cwd=scratch, env=environment(scratch / "home"), capture_output=True)
    return (time.monotonic() - started) / (epochs * len(example_tasks())) * 2


def eval_in_process_variant(url: str, samples: int, scratch: Path) -> float:
    from nano_code.evals import run_eval

    epochs = samples // len(example_tasks())
    started = time.monotonic()
    run_eval(
        EXAMPLE / "suite.toml",
        [MODEL],
        epochs,
        scratch / "out",
        base_url=url,
        jobs=2,
        environ=environment(scratch),
    )
    return (time.monotonic() - started) / (epochs * len(example_tasks())) * 2


def in_pairs(samples: int, one: Callable[[int], None]) -> float:
    """Run `one(i)` for i < samples, two at a time; wall seconds per sample x 2."""
    queue = list(range(samples))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                index = queue.pop()
            one(index)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (time.monotonic() - started) / samples * 2


def fresh_workspace(scratch: Path, index: int, source: Path | None) -> Path:
    workspace = scratch / f"ws-{time.monotonic_ns()}-{index}"
    if source is None:
        workspace.mkdir()
    else:
        shutil.copytree(source, workspace, symlinks=True)
    return workspace


def bare_cli_variant(url: str, samples: int, scratch: Path) -> float:
    tasks = example_tasks()
    env = environment(scratch / "home")

    def one(index: int) -> None:
        _, prompt, source = tasks[index % len(tasks)]
        workspace = fresh_workspace(scratch, index, source)
        command = [str(NANO), "-p", prompt, "--model", MODEL, "--base-url", url]
        subprocess.run(command, cwd=workspace, env=env, capture_output=True, check=False)

    return in_pairs(samples, one)


def loop_variant(url: str, samples: int, scratch: Path, check: bool = False) -> float:
    from nano_code.adapters.config import Settings
    from nano_code.evals import load_suite, run_task_live
    from nano_code.session.check import run_check
    from nano_code.session.factory import choose_sandbox

    tasks = load_suite(EXAMPLE / "suite.toml").tasks
    settings = Settings(base_url=url, model=MODEL, home=scratch / "home")
    sources = [Path(task.workspace) if task.workspace else None for task in tasks]
    workspaces = [fresh_workspace(scratch, index, sources[index % len(tasks)]) for index in range(samples)]

    def one(index: int) -> None:
        task, workspace = tasks[index % len(tasks)], workspaces[index]
        sandbox, notice = choose_sandbox(None, False, workspace)
        record_to = scratch / f"loop-{time.monotonic_ns()}-{index}.yaml"
        run_task_live(
            task.prompt,
            settings,
            workspace,
            sandbox=sandbox,
            sandbox_notice=notice,
            record_to=record_to,
            origin="bench",
        )
        if check:
            run_check(task.check, workspace, task.timeout, sandbox)

    return in_pairs(samples, one)


def loop_and_check_variant(url: str, samples: int, scratch: Path) -> float:
    return loop_variant(url, samples, scratch, check=True)


def overhead(samples: int, rounds: int) -> None:
    server, url = start_model()
    variants = {
        "eval": eval_variant,
        "eval in-process": eval_in_process_variant,
        "bare CLI": bare_cli_variant,
        "loop + check": loop_and_check_variant,
        "loop": loop_variant,
    }
    seen: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_number in range(1, rounds + 1):
            for name, variant in variants.items():
                with tempfile.TemporaryDirectory(prefix="nano-code-bench-") as scratch:
                    seen[name].append(variant(url, samples, Path(scratch)))
                print(
                    f"round {round_number}: {name} {seen[name][-1] * 1000:.1f} ms per sample", file=sys.stderr
                )
    finally:
        server.terminate()
        server.wait()
    medians = {name: statistics.median(values) for name, values in seen.items()}
    print(f"\n{samples} samples per variant, 2 at a time, median of {rounds} rounds (wall per sample x 2)\n")
    print("| variant | per sample | eval over it |")
    print("|---|---|---|")
    for name, value in medians.items():
        ratio = medians["eval"] / value
        print(f"| {name} | {value * 1000:.1f} ms | {ratio:.2f}x ({(ratio - 1) * 100:+.1f} %) |")
    print(
        "\nall rounds: "
        + "; ".join(f"{n}: " + ", ".join(f"{v * 1000:.1f}" for v in vs) for n, vs in seen.items())
    )


TINY_SUITE = """
[[task]]
id = "tiny-{n}"
prompt = "say done ({n})"
check = "true"
"""


def memory(counts: list[int], jobs: int) -> None:
    server, url = start_model()
    rows = []
    try:
        for count in counts:
            with tempfile.TemporaryDirectory(prefix="nano-code-bench-") as scratch_name:
                scratch = Path(scratch_name)
                suite = scratch / "suite.toml"
                suite.write_text("".join(TINY_SUITE.format(n=n) for n in range(10)))
                command = [str(NANO), "eval", str(suite), "--model", MODEL, "--epochs", str(count // 10)]
                command += ["--output", str(scratch / "out"), "--base-url", url, "--jobs", str(jobs)]
                rows.append((count, *peak_rss(command, scratch)))
                print(f"{count} samples: {rows[-1][1:]}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait()
    print(f"\ntiny tasks (one reply, check `true`), --jobs {jobs}\n")
    print("| samples | wall | samples/s | peak RSS (VmHWM, the eval process) | ru_maxrss (wait4) |")
    print("|---|---|---|---|---|")
    for count, wall, hwm, maxrss in rows:
        print(
            f"| {count:,} | {wall:.0f} s | {count / wall:.1f} | {hwm / 1024:.1f} MiB | {maxrss / 1024:.1f} MiB |"
        )


def peak_rss(command: list[str], scratch: Path) -> tuple[float, float, float]:
    """(wall seconds, the process's VmHWM in KiB polled until it ends, wait4's ru_maxrss in KiB)."""
    started = time.monotonic()
    env = environment(scratch / "home")
    child = subprocess.Popen(
        command, cwd=scratch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    hwm = 0.0
    while True:
        pid, _, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        try:
            with open(f"/proc/{child.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, float(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.1)
    child.returncode = 0
    return time.monotonic() - started, hwm, float(usage.ru_maxrss)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="?", choices=("overhead", "memory", "both"), default="both")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--counts", default="1000,3000,10000")
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()
    if args.what in ("overhead", "both"):
        overhead(args.samples, args.rounds)
    if args.what in ("memory", "both"):
        memory([int(n) for n in args.counts.split(",")], args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
