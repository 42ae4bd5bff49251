"""What `nano-code eval --engine ray` costs over `--engine local`: once per run, and per sample.

    .venv/bin/pip install -e '.[ray]'
    .venv/bin/ray start --head --num-cpus=2 --disable-usage-stats --include-dashboard=false
    .venv/bin/python bench/eval_ray.py [--address 127.0.0.1:6379] [--samples 40] [--rounds 3]

The example suite's four tasks (examples/eval) against its scripted model (examples/eval/model.py,
a separate process on 127.0.0.1), `nano-code eval --jobs 2` in a subprocess, the two engines
interleaved round by round:
  per run     the same command again on its finished DIR (nothing left to run): start-up, the
              suite's hash, and for ray joining the cluster and leaving it;
  per sample  (wall of the run of `--samples` samples - per run) / samples x 2 (two at a time);
  own         the median of the samples' `duration_s` (copy, agent, check: timed where it ran).
A Ray sample also packs its task's workspace (once per task), unpacks it on the worker, and sends
its session back to the driver. Medians over rounds. A benchmark, not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eval_overhead import EXAMPLE, MODEL, NANO, environment, example_tasks, start_model


def timed_eval(url: str, engine: str, address: str, epochs: int, out: Path, scratch: Path) -> float:
    command = [str(NANO), "eval", str(EXAMPLE / "suite.toml"), "--model", MODEL, "--epochs", str(epochs)]
    command += ["--output", str(out), "--base-url", url, "--jobs", "2", "--engine", engine]
    command += ["--ray-address", address] if engine == "ray" else []
    started = time.monotonic()
    subprocess.run(command, check=True, cwd=scratch, env=environment(scratch / "home"), capture_output=True)
    return time.monotonic() - started


def median_duration(samples_csv: Path) -> float:
    """The median of the samples' own `duration_s` (measured where each sample ran)."""
    with open(samples_csv, newline="") as handle:
        return statistics.median(float(row["duration_s"]) for row in csv.DictReader(handle))


def measure(address: str, samples: int, rounds: int) -> None:
    epochs = max(1, samples // len(example_tasks()))
    samples = epochs * len(example_tasks())
    server, url = start_model()
    per_run: dict[str, list[float]] = {"local": [], "ray": []}
    per_sample: dict[str, list[float]] = {"local": [], "ray": []}
    inside: dict[str, list[float]] = {"local": [], "ray": []}
    try:
        for round_number in range(1, rounds + 1):
            for engine in ("local", "ray"):
                with tempfile.TemporaryDirectory(prefix="nano-code-bench-") as name:
                    scratch = Path(name)
                    full = timed_eval(url, engine, address, epochs, scratch / "out", scratch)
                    empty = timed_eval(url, engine, address, epochs, scratch / "out", scratch)
                    inside[engine].append(median_duration(scratch / "out" / "samples.csv"))
                per_run[engine].append(empty)
                per_sample[engine].append((full - empty) / samples * 2)
                print(
                    f"round {round_number}: {engine}: run {full:.2f} s, per run {empty * 1000:.0f} ms, "
                    f"per sample {per_sample[engine][-1] * 1000:.1f} ms",
                    file=sys.stderr,
                )
    finally:
        server.terminate()
        server.wait()
    run = {engine: statistics.median(values) for engine, values in per_run.items()}
    sample = {engine: statistics.median(values) for engine, values in per_sample.items()}
    own = {engine: statistics.median(values) for engine, values in inside.items()}
    print(f"\n{samples} samples per run, --jobs 2, median of {rounds} rounds\n")
    print("| engine | per run (nothing to run) | per sample (wall x 2 / samples) | a sample's own duration_s |")
    print("|---|---|---|---|")
    for engine in ("local", "ray"):
        print(
            f"| {engine} | {run[engine] * 1000:.0f} ms | {sample[engine] * 1000:.1f} ms "
            f"| {own[engine] * 1000:.1f} ms |"
        )
    ratio = sample["ray"] / sample["local"]
    print(
        f"\nray over local: {(run['ray'] - run['local']) * 1000:+.0f} ms per run, "
        f"{(sample['ray'] - sample['local']) * 1000:+.1f} ms per sample ({(ratio - 1) * 100:+.1f} %)"
    )
    print(
        "all rounds (per sample, ms): "
        + "; ".join(f"{e}: " + ", ".join(f"{v * 1000:.1f}" for v in vs) for e, vs in per_sample.items())
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default="127.0.0.1:6379", help="a running Ray cluster")
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    measure(args.address, args.samples, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
