"""nano-code benchmarks: this project vs a bare urllib3 loop (the floor), side by side in one run.

    .venv/bin/python bench/run_all.py            # full run (a few minutes)
    .venv/bin/python bench/run_all.py --quick    # fewer repetitions, shorter timeouts
    .venv/bin/python bench/run_all.py --only cold,steps

Sections: cold (cold start to first request, --help, import time), steps
(per-step overhead at step 1 and ~200, recording/streaming on and off, the
sandbox on against a floor running the same bwrap, peak memory), replay (1000-step cassette: CLI, in-process, loaders, memory), ttft
(time to first token, recording on/off), peers (llm, mini-swe-agent when
installed in /tmp/peer). Everything talks to bench/instant_server.py on
127.0.0.1 and every child has a timeout. Prints a markdown report on stdout
(progress on stderr). Benchmarks, not tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from instant_server import InstantServer  # noqa: E402

PY = sys.executable
NANO = str(Path(PY).with_name("nano-code"))
FLOOR = str(BENCH / "floor_agent.py")
PEER_VENV = Path("/tmp/peer")
TASK = "benchmark task: run echo until told otherwise"


def log(text: str) -> None:
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


# ---------------------------------------------------------------- processes


class Env:
    """A throwaway workspace (a small git repo), NANO_CODE_HOME and a clean environment."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nano-bench-"))
        self.workspace = self.root / "ws"
        self.workspace.mkdir()
        (self.workspace / "README.md").write_text("bench workspace\n")
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "init"]):
            subprocess.run(git + args, cwd=self.workspace, check=True, capture_output=True)
        self.records = self.root / "rec"
        self.records.mkdir()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if "API_KEY" not in k and not k.startswith(("NANO_CODE_", "INFERENCE_", "MODEL_NAME"))
        }
        self.env["NANO_CODE_HOME"] = str(self.root / "home")
        # Like a real install (pip compiles site-packages): use cached bytecode.
        # With PYTHONDONTWRITEBYTECODE an editable checkout recompiles every
        # module on every start, which is not what a user pays.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.spec = self.root / "spec.json"
        self.counter = 0

    def fresh_record_path(self) -> str:
        self.counter += 1
        return str(self.records / f"run{self.counter}.yaml")

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def nano_cmd(
    env: Env,
    url: str,
    steps: int,
    record: bool,
    stream: bool,
    record_path: str | None = None,
    sandbox: bool = False,
) -> list[str]:
    """nano-code on the bench task. Commands run unsandboxed (`--sandbox off`) unless `sandbox`,
    as the floor runs them: the sandbox's own cost is measured apart (bench/sandbox_overhead.py)."""
    cmd = [
        NANO,
        "-p",
        TASK,
        "--yes",
        "--base-url",
        url,
        "--max-steps",
        str(steps + 20),
        "--stream" if stream else "--no-stream",
    ]
    if record:
        cmd += ["--record", record_path or env.fresh_record_path()]
    else:
        cmd.append("--no-record")
    if not sandbox:
        cmd += ["--sandbox", "off"]
    return cmd


def floor_cmd(env: Env, url: str, steps: int, stream: bool, sandboxed: bool = False) -> list[str]:
    cmd = [PY, FLOOR, "--base-url", url, "--spec", str(env.spec), "-p", TASK, "--max-steps", str(steps + 20)]
    return cmd + (["--stream"] if stream else []) + (["--sandboxed"] if sandboxed else [])


def run_child(
    cmd: list[str],
    env: Env,
    timeout: float,
    stdout: Any = subprocess.DEVNULL,
    server: InstantServer | None = None,
) -> dict[str, Any]:
    """Run to completion (or kill after `timeout`); wall time, exit status and this child's max RSS.

    With `server`, the server reads the child's own CPU time as each request arrives.
    """
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=env.workspace,
        env=env.env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
    )
    if server is not None:
        server.agent_pid = proc.pid
    try:
        return {"t0": t0, **reap(proc, t0, timeout)}
    finally:
        if server is not None:
            server.agent_pid = None


def reap(proc: subprocess.Popen, t0: float, timeout: float) -> dict[str, Any]:
    deadline = t0 + timeout
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            timed_out = True
            os.kill(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.002)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall": time.monotonic() - t0,
        "rc": proc.returncode,
        "max_rss_kb": usage.ru_maxrss,
        "timed_out": timed_out,
    }


def capture_spec(env: Env, server: InstantServer) -> None:
    """The floor sends nano-code's own system prompt and tool list: take them from a real request;
    sandboxed, it runs commands under the bwrap command line nano-code's sandbox builds."""
    from nano_code.adapters.sandbox import Sandbox
    from nano_code.kernel.types import SandboxMode

    server.reset(tool_steps=0, keep_bodies=True)
    run_child(nano_cmd(env, server.base_url, 0, record=False, stream=False), env, 60)
    body = server.bodies[0]
    sandbox = Sandbox(mode=SandboxMode.WORKSPACE_WRITE, network=False, workspace=env.workspace.resolve())
    spec = {"model": body["model"], "system": body["messages"][0]["content"], "tools": body["tools"]}
    env.spec.write_text(json.dumps({**spec, "bwrap": sandbox.wrap([])}))
    server.reset(keep_bodies=False)


# ---------------------------------------------------------------- 1. cold start


FLOOR_IMPORTS = "python -c 'import argparse, json, subprocess, urllib3' (the floor's imports)"
FLOOR_OWN = "the floor's own imports"
IMPORT_LAYERS = (
    ("attrs", "attrs"),
    ("the kernel modules a run imports", "{kernel}"),
    (
        "the rest of a run without recording (adapters, session, cli, driver)",
        "nano_code.cli.main, nano_code.cli.run",
    ),
    (
        "what recording adds (recorder, journal, session file and writer, provenance, snapshot)",
        "nano_code.adapters.recorder, nano_code.adapters.provenance, nano_code.adapters.snapshot",
    ),
)
"""Layers imported in this order after the floor's imports, each timed in the same fresh process."""


def import_layers_code(env: Env) -> str:
    """A `python -c` program printing the seconds each of IMPORT_LAYERS takes (perf_counter around
    each, after the floor's own imports), so that the layers add up and share one process's noise."""
    kernel = subprocess.run(
        [PY, "-c", "import sys, nano_code.cli.run; print(', '.join(sorted(sys.modules)))"],
        cwd=env.workspace,
        env=env.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split(", ")
    listed = ", ".join(name.strip() for name in kernel if name.startswith("nano_code.kernel."))
    code = "import time\nt = [time.perf_counter()]\nimport argparse, json, subprocess, urllib3\n"
    code += "t.append(time.perf_counter())\n"
    for _, modules in IMPORT_LAYERS:
        code += f"import {modules.format(kernel=listed)}\nt.append(time.perf_counter())\n"
    return code + "print(' '.join(str(b - a) for a, b in zip(t, t[1:])))\n"


def bench_cold(env: Env, server: InstantServer, runs: int, out: list[str]) -> dict[str, Any]:
    log(f"cold start: {runs} interleaved runs of each variant")
    variants = {
        "nano-code -p --no-record": lambda: nano_cmd(env, server.base_url, 0, False, False, sandbox=True),
        "nano-code -p (recording)": lambda: nano_cmd(env, server.base_url, 0, True, False, sandbox=True),
        "floor (urllib3 loop)": lambda: floor_cmd(env, server.base_url, 0, False),
    }
    first: dict[str, list[float]] = {k: [] for k in variants}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    layers_code = import_layers_code(env)
    layer_samples: list[list[float]] = []
    for _ in range(runs):
        for name, make in variants.items():
            server.reset(tool_steps=0)
            result = run_child(make(), env, 60)
            if server.records:
                first[name].append(server.records[0]["t_recv"] - result["t0"])
            wall[name].append(result["wall"])
        done = subprocess.run(
            [PY, "-c", layers_code],
            cwd=env.workspace,
            env=env.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode == 0:
            layer_samples.append([float(x) for x in done.stdout.split()])
    layer_names = [FLOOR_OWN, *(name for name, _ in IMPORT_LAYERS)]
    layers = {name: med([sample[i] for sample in layer_samples]) for i, name in enumerate(layer_names)}
    extra = {
        "nano-code --help": [NANO, "--help"],
        "python -c pass (interpreter floor)": [PY, "-c", "pass"],
        "python -c 'import urllib3'": [PY, "-c", "import urllib3"],
        FLOOR_IMPORTS: [PY, "-c", "import argparse, json, subprocess, urllib3"],
    }
    for _ in range(runs):
        for name, cmd in extra.items():
            wall.setdefault(name, []).append(run_child(cmd, env, 60)["wall"])
    floor_first = med(first["floor (urllib3 loop)"])
    out.append(f"### 1. Cold start (median of {runs} interleaved runs each)\n")
    out.append("| command | exec -> first request | vs floor | total wall (1-step task) |")
    out.append("|---|---|---|---|")
    for name in variants:
        out.append(
            f"| {name} | {ms(med(first[name]))} | {ratio(med(first[name]), floor_first)} "
            f"| {ms(med(wall[name]))} |"
        )
    out.append("\n| command | wall time | vs `python -c pass` |")
    out.append("|---|---|---|")
    base = med(wall["python -c pass (interpreter floor)"])
    for name in extra:
        out.append(f"| {name} | {ms(med(wall[name]))} | {ratio(med(wall[name]), base)} |")
    out.append(
        f"\n#### Where the start-up over the floor goes (imports timed in-process, interleaved with "
        f"the runs above, median of {runs})\n"
    )
    out.append("| part | no recording | recording | share of the floor's exec -> first request |")
    out.append("|---|---|---|---|")
    no_record, recording = med(first["nano-code -p --no-record"]), med(first["nano-code -p (recording)"])
    over = {"no recording": no_record - floor_first, "recording": recording - floor_first}
    record_only = IMPORT_LAYERS[-1][0]
    for name, seconds in list(layers.items())[1:]:
        in_no_record = ms(seconds) if name != record_only else "-"
        out.append(f"| import {name} | {in_no_record} | {ms(seconds)} | {seconds / floor_first:.2f}x |")
    imported = sum(list(layers.values())[1:-1])
    rest = {
        key: value - imported - (layers[record_only] if key == "recording" else 0)
        for key, value in over.items()
    }
    out.append(
        f"| the rest: work before the request (settings, sandbox probe's result, provenance, session file, "
        f"threads), measured as what is left | {ms(rest['no recording'])} | {ms(rest['recording'])} | "
        f"{rest['no recording'] / floor_first:.2f}x / {rest['recording'] / floor_first:.2f}x |"
    )
    out.append(
        f"| **total over the floor** | {ms(over['no recording'])} | {ms(over['recording'])} | "
        f"{over['no recording'] / floor_first:.2f}x / {over['recording'] / floor_first:.2f}x |"
    )
    out.append(
        f"\nThe floor's own imports take {ms(layers[FLOOR_OWN])} of its "
        f"{ms(floor_first)}; 1.5x the floor leaves {ms(0.5 * floor_first)} for everything above.\n"
    )
    importtime(env, server, out)
    return {"first": {k: med(v) for k, v in first.items()}, "wall": {k: med(v) for k, v in wall.items()}}


def importtime(env: Env, server: InstantServer, out: list[str]) -> None:
    """-X importtime of a real live run (recording on, the heavier path): top offenders; vcr/yaml absent?"""
    server.reset(tool_steps=0)
    cmd = [PY, "-X", "importtime", NANO, *nano_cmd(env, server.base_url, 0, True, False)[1:]]
    done = subprocess.run(
        cmd,
        cwd=env.workspace,
        env=env.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = []
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if found:
            rows.append((int(found.group(1)), int(found.group(2)), len(found.group(3)), found.group(4)))
    modules = {r[3] for r in rows}
    total = sum(r[0] for r in rows)
    top_level = sorted((r for r in rows if r[2] == 1), key=lambda r: -r[1])[:3]
    by_package: dict[str, int] = {}
    for row in rows:  # heaviest third-party/stdlib packages, counted once at their outermost import
        package = row[3].split(".")[0]
        if package != "nano_code":
            by_package[package] = max(by_package.get(package, 0), row[1])
    packages = sorted(by_package.items(), key=lambda item: -item[1])[:10]
    own = sorted((r for r in rows if r[3].startswith("nano_code")), key=lambda r: -r[0])[:5]
    heavy = [
        m
        for m in (
            "vcr",
            "yaml",
            "hypothesis",
            "attrs",
            "urllib3",
            "ssl",
            "http.client",
            "email",
            "json",
            "argparse",
            "readline",
        )
        if m in modules
    ]
    out.append(
        "#### Import time of a live `nano-code -p ... --record` run (`python -X importtime`, one run)\n"
    )
    out.append(
        f"Sum of self times: {total / 1000:.1f} ms over {len(rows)} modules. "
        f"`vcr` imported: **{'yes' if 'vcr' in modules else 'no'}**, "
        f"`yaml` imported: **{'yes' if 'yaml' in modules else 'no'}**. "
        f"Notable modules present: {', '.join(heavy)}.\n"
    )
    out.append("| top-level import | cumulative |")
    out.append("|---|---|")
    for row in top_level:
        out.append(f"| {row[3]} | {row[1] / 1000:.1f} ms |")
    out.append("\n| heaviest non-nano_code package | cumulative |")
    out.append("|---|---|")
    for package, micros in packages:
        out.append(f"| {package} | {micros / 1000:.1f} ms |")
    out.append("\n| nano_code module (self time) | self |")
    out.append("|---|---|")
    for row in own:
        out.append(f"| {row[3]} | {row[0] / 1000:.1f} ms |")
    out.append("")


# ---------------------------------------------------------------- 2. per-step overhead (+ 4. memory)


def floor_of(name: str) -> str:
    """The floor row a per-step variant is compared with: same transport, same sandbox."""
    if "sandboxed" in name:
        return "floor, json, sandboxed (same bwrap)"
    return "floor, stream" if "stream" in name else "floor, json"


def bench_steps(env: Env, server: InstantServer, steps: int, runs: int, out: list[str]) -> dict[str, Any]:
    log(f"per-step: {runs} run(s) x 8 variants of a {steps}-step session")
    variants: dict[str, Any] = {}
    for stream in (False, True):
        tag = "stream" if stream else "json"
        variants[f"nano-code, {tag}, no-record"] = lambda s=stream: nano_cmd(
            env, server.base_url, steps, False, s
        )
        variants[f"nano-code, {tag}, record"] = lambda s=stream: nano_cmd(
            env, server.base_url, steps, True, s
        )
        variants[f"floor, {tag}"] = lambda s=stream: floor_cmd(env, server.base_url, steps, s)
    variants["nano-code, json, no-record, sandboxed"] = lambda: nano_cmd(
        env, server.base_url, steps, False, False, sandbox=True
    )
    variants["floor, json, sandboxed (same bwrap)"] = lambda: floor_cmd(
        env, server.base_url, steps, False, sandboxed=True
    )
    data: dict[str, dict[str, list[float]]] = {
        k: {
            "s1": [],
            "early": [],
            "late": [],
            "rss": [],
            "wall": [],
            "b1": [],
            "blate": [],
            "cpu_early": [],
            "cpu_late": [],
        }
        for k in variants
    }
    late_lo, late_hi = max(1, steps - 9), steps  # steps 191..200 for 200
    for _ in range(runs):
        for name, make in variants.items():
            server.reset(tool_steps=steps)
            result = run_child(make(), env, 300, server=server)
            recs = server.records
            if len(recs) < steps + 1 or any("t_sent" not in r for r in recs):
                log(f"  {name}: incomplete ({len(recs)} requests, rc {result['rc']})")
                continue
            gaps = [
                recs[k]["t_recv"] - recs[k - 1]["t_sent"] for k in range(1, len(recs))
            ]  # gaps[k-1]: after step k
            d = data[name]
            d["s1"].append(gaps[0])
            d["early"].extend(gaps[0:10])
            d["late"].extend(gaps[late_lo - 1 : late_hi])
            d["rss"].append(result["max_rss_kb"] / 1024)
            d["wall"].append(result["wall"])
            d["b1"].append(recs[1]["body_bytes"])
            d["blate"].append(recs[steps]["body_bytes"])
            if all(r.get("cpu_ns") is not None for r in recs):
                # The agent's own CPU from request k to request k+1 (bash's excluded).
                cpu = [(recs[k]["cpu_ns"] - recs[k - 1]["cpu_ns"]) / 1e9 for k in range(1, len(recs))]
                d["cpu_early"].extend(cpu[0:10])
                d["cpu_late"].extend(cpu[late_lo - 1 : late_hi])
    out.append(
        f"### 2. Per-step overhead ({steps}-step session, `shell` `echo hi` each step; "
        f"{runs} run(s) per variant, interleaved)\n"
    )
    out.append(
        "Gap = server finished writing response k -> server received request k+1 (includes running "
        "`echo` through bash). Medians: step 1 over runs; early = steps 1-10 and late = steps "
        f"{late_lo}-{late_hi}, pooled over runs.\n"
    )
    out.append(
        "| variant | step 1 | early (1-10) | late | late/early | body @2 | body @late | body growth "
        "| vs floor early | vs floor late |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    summary: dict[str, Any] = {}
    for name, d in data.items():
        if not d["early"]:
            out.append(f"| {name} | (failed) |||||||||")
            continue
        floor = data[floor_of(name)]
        e, late = med(d["early"]), med(d["late"])
        fe, fl = med(floor["early"]), med(floor["late"])
        b1, bl = med(d["b1"]), med(d["blate"])
        summary[name] = {
            "s1": med(d["s1"]),
            "early": e,
            "late": late,
            "rss_mb": med(d["rss"]),
            "wall": med(d["wall"]),
            "cpu_early": med(d["cpu_early"]) if d["cpu_early"] else None,
            "cpu_late": med(d["cpu_late"]) if d["cpu_late"] else None,
        }
        out.append(
            f"| {name} | {ms(med(d['s1']))} | {ms(e)} | {ms(late)} | {late / e:.2f}x | {b1 / 1024:.1f} KiB "
            f"| {bl / 1024:.1f} KiB | {bl / b1:.1f}x | {ratio(e, fe)} | {ratio(late, fl)} |"
        )
    out.append(
        f"\n### 2b. Agent-only CPU per step ({steps}-step session; the agent's own threads, read from "
        "/proc/PID/task/*/schedstat as each request arrives, so bash and echo are excluded)\n"
    )
    out.append("| variant | early (1-10) | late | late/early | vs floor early | vs floor late |")
    out.append("|---|---|---|---|---|---|")
    for name, d in data.items():
        if not d["cpu_early"]:
            continue
        floor = data[floor_of(name)]
        ce, cl = med(d["cpu_early"]), med(d["cpu_late"])
        fce, fcl = med(floor["cpu_early"] or [0.0]), med(floor["cpu_late"] or [0.0])
        out.append(f"| {name} | {ms(ce)} | {ms(cl)} | {cl / ce:.2f}x | {ratio(ce, fce)} | {ratio(cl, fcl)} |")
    out.append(
        f"\n### 4a. Peak memory of the {steps}-step session (max RSS of the agent process, "
        f"median of {runs}; wait4 rusage)\n"
    )
    out.append("| variant | max RSS | vs floor | total wall |")
    out.append("|---|---|---|---|")
    for name, d in data.items():
        if d["rss"]:
            floor = data[floor_of(name)]
            out.append(
                f"| {name} | {med(d['rss']):.1f} MiB | {ratio(med(d['rss']), med(floor['rss']))} "
                f"| {med(d['wall']):.2f} s |"
            )
    out.append("")
    return summary


# ---------------------------------------------------------------- 3. replay (+ 4. memory)


def record_cassette(env: Env, server: InstantServer, steps: int, path: Path) -> dict[str, Any]:
    server.reset(tool_steps=steps - 1)
    result = run_child(nano_cmd(env, server.base_url, steps, True, False, str(path)), env, 600)
    result["requests"] = len(server.records)
    result["gaps"] = session_gaps(server.records)
    result["bodies"] = [r["body_bytes"] for r in server.records]
    return result


def session_gaps(records: list[dict[str, Any]]) -> list[float]:
    """gaps[k-1] = response k fully written -> request k+1 fully received."""
    if any("t_sent" not in r for r in records):
        return []
    return [records[k]["t_recv"] - records[k - 1]["t_sent"] for k in range(1, len(records))]


def long_session_table(
    env: Env, server: InstantServer, big: int, recorded: dict[str, Any], out: list[str]
) -> None:
    """Gap at steps 1-10 vs the last 10 of a `big`-step session: nano-code with/without recording, floor."""
    runs: dict[str, dict[str, Any]] = {"nano-code, json, record (the cassette run)": recorded}
    for name, cmd in (
        ("nano-code, json, no-record", nano_cmd(env, server.base_url, big, False, False)),
        ("floor, json", floor_cmd(env, server.base_url, big, False)),
    ):
        server.reset(tool_steps=big)
        result = run_child(cmd, env, 600)
        result["gaps"] = session_gaps(server.records)
        result["bodies"] = [r["body_bytes"] for r in server.records]
        runs[name] = result
    floor = runs["floor, json"]
    out.append(f"#### Per-step gap over a {big}-step session (one run each)\n")
    out.append(
        f"| variant | steps 1-10 | steps {big - 9}-{big - 1} | late/early | body @2 | body @{big} "
        "| vs floor late | max RSS |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    for name, result in runs.items():
        gaps = result["gaps"]
        if len(gaps) < big - 1:
            out.append(f"| {name} | (incomplete) |||||||")
            continue
        early, late = med(gaps[:10]), med(gaps[big - 10 : big - 1])
        floor_late = med(floor["gaps"][big - 10 : big - 1]) if len(floor["gaps"]) >= big - 1 else float("nan")
        out.append(
            f"| {name} | {ms(early)} | {ms(late)} | {late / early:.1f}x "
            f"| {result['bodies'][1] / 1024:.1f} KiB "
            f"| {result['bodies'][big - 1] / 1024:.0f} KiB | {ratio(late, floor_late)} "
            f"| {result['max_rss_kb'] / 1024:.0f} MiB |"
        )
    out.append("")


def components_table(paths: dict[int, Path], out: list[str]) -> None:
    from components import step_costs

    costs = {size: step_costs(path) for size, path in paths.items()}
    sizes = list(costs)
    out.append("#### What one step costs inside nano-code, by history length (in-process, median of 15)\n")
    out.append("| piece | " + " | ".join(f"{s} steps" for s in sizes) + " |")
    out.append("|---|" + "---|" * len(sizes))
    for key in costs[sizes[0]]:
        cells = []
        for size in sizes:
            value = costs[size][key]
            cells.append(f"{value * 1000:.2f} ms" if isinstance(value, float) else f"{value:,}")
        out.append(f"| {key} | " + " | ".join(cells) + " |")
    out.append("")


def replay_cli(env: Env, path: Path, timeout: float) -> dict[str, Any]:
    return run_child([NANO, "replay", "-q", str(path)], env, timeout)


def replay_inproc(env: Env, path: Path, timeout: float) -> dict[str, Any]:
    cmd = [PY, str(BENCH / "replay_inprocess.py"), str(path)]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=env.workspace,
        env=env.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    result = reap(proc, t0, timeout)
    assert proc.stdout is not None
    text = proc.stdout.read().decode()
    proc.stdout.close()
    if not result["timed_out"] and text.strip():
        result.update(json.loads(text.strip().splitlines()[-1]))
    return result


def timed(fn: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return med(times)


def bench_replay(env: Env, server: InstantServer, big: int, quick: bool, out: list[str]) -> dict[str, Any]:
    import yaml
    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.serializers import yamlserializer

    from nano_code.adapters.session_file import VcrSerializer, load_session

    small_sizes = (25, 50, 100)
    small_runs = {25: 5, 50: 5, 100: 3} if not quick else {25: 3, 50: 3, 100: 1}
    timeout = 20.0 if quick else 60.0
    cassettes: dict[int, Path] = {}
    log(f"replay: recording cassettes of {small_sizes} and {big} steps through the CLI")
    rec_info: dict[int, dict[str, Any]] = {}
    for size in (*small_sizes, 200, big):
        path = env.root / f"cassette-{size}.yaml"
        rec_info[size] = record_cassette(env, server, size, path)
        cassettes[size] = path
    rows = []
    cli_times: dict[int, float] = {}
    for size in small_sizes:
        log(f"  replay {size} steps: CLI x{small_runs[size]}, in-process x{small_runs[size]}")
        cli = [replay_cli(env, cassettes[size], 120) for _ in range(small_runs[size])]
        inproc = [replay_inproc(env, cassettes[size], 120) for _ in range(small_runs[size])]
        cli_times[size] = med([r["wall"] for r in cli])
        rows.append(
            (
                size,
                cassettes[size].stat().st_size,
                cli_times[size],
                med([r.get("seconds", 0) for r in inproc]),
                small_runs[size],
                med([r["max_rss_kb"] for r in cli]) / 1024,
                all(r["rc"] == 0 for r in cli),
            )
        )
    # growth exponent of CLI replay time between the two largest small sizes
    a, b = small_sizes[-2], small_sizes[-1]
    exponent = math.log(cli_times[b] / cli_times[a]) / math.log(b / a)
    predicted = cli_times[b] * (big / b) ** exponent
    big_runs = 3 if quick else 5
    log(f"  replay {big} steps: CLI and in-process x{big_runs}, interleaved, {timeout:.0f} s timeout each")
    big_clis: list[dict[str, Any]] = []
    big_inprocs: list[dict[str, Any]] = []
    for _ in range(big_runs):
        big_clis.append(replay_cli(env, cassettes[big], timeout))
        big_inprocs.append(replay_inproc(env, cassettes[big], timeout))
    big_cli = sorted(big_clis, key=lambda r: r["wall"])[big_runs // 2]  # the median run
    big_inproc = sorted(big_inprocs, key=lambda r: r.get("seconds", r["wall"]))[big_runs // 2]

    def shown(result: dict[str, Any], key: str = "wall") -> str:
        if result["timed_out"]:
            return f"> {timeout:.0f} s (killed)"
        return f"{result.get(key, result['wall']):.2f} s"

    out.append("### 3. Replay\n")
    out.append(
        "Cassettes recorded through the real CLI (`--record`, JSON replies) against the instant server. "
        "`CLI` = wall of `nano-code replay -q PATH` (process start included); `in-process` = "
        "`nano_code.testing.replay(path)` timed inside one process (interpreter and imports excluded).\n"
    )
    out.append("| steps | cassette | CLI (median) | runs | in-process | CLI steps/s | CLI max RSS |")
    out.append("|---|---|---|---|---|---|---|")
    for size, nbytes, cli_t, inproc_t, n, rss, ok in rows:
        out.append(
            f"| {size} | {nbytes / 2**20:.2f} MiB | {cli_t:.2f} s{'' if ok else ' (FAILED)'} | {n} "
            f"| {inproc_t:.2f} s | {size / cli_t:.1f} | {rss:.0f} MiB |"
        )
    big_bytes = cassettes[big].stat().st_size
    cli_rate = "-" if big_cli["timed_out"] else f"{big / big_cli['wall']:.1f}"
    out.append(
        f"| **{big}** | {big_bytes / 2**20:.2f} MiB | {shown(big_cli)} | {big_runs} | {shown(big_inproc, 'seconds')} "
        f"| {cli_rate} | {big_cli['max_rss_kb'] / 1024:.0f} MiB{' at kill' if big_cli['timed_out'] else ''} |"
    )
    floor_runs = [run_child([PY, "-c", "import urllib3, vcr"], env, 60)["wall"] for _ in range(5)]
    vcr_floor = med(floor_runs)
    inproc_100 = [replay_inproc(env, cassettes[100], 120) for _ in range(3)]
    imports_100 = med([r.get("import_seconds", 0.0) for r in inproc_100])
    out.append(
        f"\nWhere the 100-step CLI replay's {cli_times[100]:.2f} s go: starting Python and importing "
        f"urllib3 and vcrpy, which any vcrpy replay pays, {vcr_floor:.2f} s (`python -c 'import urllib3, "
        f"vcr'`, median of 5); importing the replayer with vcrpy, in-process, {imports_100:.2f} s; the replay "
        f"itself {med([r.get('seconds', 0.0) for r in inproc_100]):.2f} s.\n"
    )
    out.append(
        f"\nCLI replay time grows as steps^{exponent:.2f} between {a} and {b} steps (process start "
        f"dominates small files). Recording the {big}-step cassette took "
        f"{rec_info[big]['wall']:.1f} s ({rec_info[big]['requests']} requests).\n"
    )
    log(f"  a {big}-step session without recording, and the floor; per-step component costs")
    long_session_table(env, server, big, rec_info[big], out)
    components_table({200: cassettes[200], big: cassettes[big]}, out)

    # loaders
    log("  loaders: load_session vs vcrpy+PyYAML")
    mid = cassettes[100]
    runs_fast = 3 if quick else 5
    text_big = cassettes[big].read_text()
    text_mid = mid.read_text()
    t_json_big = timed(lambda: load_session(cassettes[big]), runs_fast)
    t_cyaml_big = timed(lambda: yaml.load(text_big, Loader=yaml.CSafeLoader), 1 if quick else 3)
    t_vcr_big = timed(
        lambda: FilesystemPersister.load_cassette(cassettes[big], yamlserializer), 1 if quick else 3
    )
    t_vcrjson_big = timed(lambda: FilesystemPersister.load_cassette(cassettes[big], VcrSerializer), runs_fast)
    t_json_mid = timed(lambda: load_session(mid), runs_fast)
    t_cyaml_mid = timed(lambda: yaml.load(text_mid, Loader=yaml.CSafeLoader), runs_fast)
    t_pyaml_mid = timed(lambda: yaml.load(text_mid, Loader=yaml.SafeLoader), 1 if quick else 3)
    mid_mb = len(text_mid.encode()) / 2**20
    big_mb = len(text_big.encode()) / 2**20
    out.append(
        f"#### Loading the cassette (medians; {big}-step file {big_mb:.0f} MiB, "
        f"100-step file {mid_mb:.1f} MiB)\n"
    )
    out.append(f"| loader | 100 steps | MiB/s | {big} steps | vs load_session |")
    out.append("|---|---|---|---|---|")
    pure_big = t_pyaml_mid * big_mb / mid_mb
    for name, t_mid, t_big in (
        ("nano-code `load_session` (line-by-line json.loads)", t_json_mid, t_json_big),
        ("vcrpy persister + nano-code `VcrSerializer`", None, t_vcrjson_big),
        ("`yaml.load` CSafeLoader (libyaml)", t_cyaml_mid, t_cyaml_big),
        ("vcrpy persister + yamlserializer (CSafeLoader)", None, t_vcr_big),
        ("`yaml.load` pure-Python SafeLoader", t_pyaml_mid, None),
    ):
        speed = f"{mid_mb / t_mid:.1f}" if t_mid else "-"
        big_cell = f"{t_big:.2f} s" if t_big is not None else f"~{pure_big:.0f} s (extrapolated by size)"
        vs = ratio(t_big if t_big is not None else pure_big, t_json_big)
        out.append(f"| {name} | {f'{t_mid * 1000:.0f} ms' if t_mid else '-'} | {speed} | {big_cell} | {vs} |")
    out.append("")
    # Measured in a process that did nothing else first: a small interpreter posix_spawns
    # the loader and reports that child's own peak (a fork of this harness would count
    # the harness's pages).
    lm = subprocess.run(
        [
            PY,
            "-c",
            "import os,sys; pid=os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ); "
            "print(os.wait4(pid, 0)[2].ru_maxrss)",
            PY,
            "-c",
            "import sys; from nano_code.adapters.session_file import load_session; load_session(sys.argv[1])",
            str(cassettes[big]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env.env,
    )
    load_rss = int(lm.stdout.strip() or 0) / 1024
    out.append(f"### 4b. Peak memory around the {big}-step cassette\n")
    out.append(f"- `load_session` alone: {load_rss:.0f} MiB max RSS for a {big_mb:.0f} MiB file.")
    out.append(
        f"- `nano-code replay -q`: {big_cli['max_rss_kb'] / 1024:.0f} MiB"
        f"{' when killed at the timeout' if big_cli['timed_out'] else ''}.\n"
    )
    return {
        "cli_1000": None if big_cli["timed_out"] else big_cli["wall"],
        "predicted": predicted,
        "exponent": exponent,
        "big_mb": big_mb,
        "load_rss": load_rss,
        "vcr_floor": vcr_floor,
    }


# ---------------------------------------------------------------- 5. time to first token


def first_text(
    cmd: list[str], env: Env, marker: bytes, timeout: float
) -> tuple[float | None, dict[str, Any]]:
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=env.workspace,
        env=env.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        bufsize=0,
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen: float | None = None
    data = b""
    import select

    while time.monotonic() - t0 < timeout:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
        if seen is None and marker in data:
            seen = time.monotonic()
    proc.stdout.close()
    result = reap(proc, t0, max(1.0, timeout - (time.monotonic() - t0)))
    return seen, result


def bench_ttft(env: Env, server: InstantServer, runs: int, out: list[str]) -> dict[str, Any]:
    log(f"TTFT: {runs} interleaved runs of each variant")
    text = "HELLO from the instant server, streamed in pieces."
    variants = {
        "nano-code --stream --no-record": lambda: nano_cmd(env, server.base_url, 0, False, True),
        "nano-code --stream --record": lambda: nano_cmd(env, server.base_url, 0, True, True),
        "floor --stream": lambda: floor_cmd(env, server.base_url, 0, True),
    }
    lag: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(runs):
        for name, make in variants.items():
            server.reset(tool_steps=0, text=text, text_chunks=5, chunk_delay=0.02)
            seen, _result = first_text(make(), env, b"HELLO", 30)
            if seen is not None and server.records and "t_text" in server.records[0]:
                lag[name].append(seen - server.records[0]["t_text"])
    server.reset(text="done", text_chunks=1, chunk_delay=0.0)
    out.append(f"### 5. Time to first token (median of {runs} interleaved runs)\n")
    out.append(
        "Streaming reply: role chunk, then 5 text chunks 20 ms apart. Lag = server wrote the first text "
        "chunk -> its first byte read from the agent's stdout pipe (unbuffered).\n"
    )
    out.append("| variant | first-token lag | vs floor |")
    out.append("|---|---|---|")
    floor = med(lag["floor --stream"])
    for name, values in lag.items():
        out.append(
            f"| {name} | {f'{med(values) * 1000:.2f} ms' if values else 'n/a'} "
            f"| {ratio(med(values), floor)} |"
        )
    out.append("")
    return {k: med(v) for k, v in lag.items()}


# ---------------------------------------------------------------- 6. peers


def bench_peers(env: Env, server: InstantServer, runs: int, out: list[str]) -> None:
    out.append("### 6. Peer agents\n")
    bin_dir = PEER_VENV / "bin"
    peer_py = bin_dir / "python"
    if not peer_py.exists():
        out.append(
            f"No peer venv at {PEER_VENV} (see README: `python3 -m venv /tmp/peer && /tmp/peer/bin/pip "
            "install llm mini-swe-agent`); skipped.\n"
        )
        return
    log(f"peers: {runs} runs each")
    peer_env = Env.__new__(Env)
    peer_env.__dict__.update(env.__dict__)
    peer_env.env = dict(env.env)
    llm_home = env.root / "llm-home"
    llm_home.mkdir(exist_ok=True)
    (llm_home / "extra-openai-models.yaml").write_text(
        f'- model_id: bench\n  model_name: bench/instant\n  api_base: "{server.base_url}"\n'
    )
    peer_env.env.update(
        {
            "LLM_USER_PATH": str(llm_home),
            "OPENAI_API_KEY": "bench-not-a-key",
            "MSWEA_CONFIGURED": "true",
            "MSWEA_SILENT_STARTUP": "1",
            "MSWEA_GLOBAL_CONFIG_DIR": str(env.root / "mswea"),
        }
    )
    cmds = {
        "nano-code --help": [NANO, "--help"],
        "llm --help": [str(bin_dir / "llm"), "--help"],
        "mini --help (mini-swe-agent)": [str(bin_dir / "mini"), "--help"],
        "import nano_code.cli.run": [PY, "-c", "import nano_code.cli.main, nano_code.cli.run"],
        "import llm.cli": [str(peer_py), "-c", "import llm.cli"],
        "import minisweagent.run.mini": [str(peer_py), "-c", "import minisweagent.run.mini"],
    }
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    rcs: dict[str, int] = {}
    for _ in range(runs):
        for name, cmd in cmds.items():
            if not Path(cmd[0]).exists():
                continue
            result = run_child(cmd, peer_env, 120)
            rcs[name] = result["rc"]
            walls[name].append(result["wall"])
    first: dict[str, list[float]] = {
        "nano-code -p --no-record": [],
        "llm -m bench --no-log": [],
        "llm -m bench (logging to SQLite)": [],
    }
    llm_bin = str(bin_dir / "llm")
    for _ in range(runs):
        for name in first:
            if name.startswith("nano"):
                cmd = nano_cmd(env, server.base_url, 0, False, False)
            elif "no-log" in name:
                cmd = [llm_bin, "-m", "bench", "--no-stream", "--no-log", TASK]
            else:
                cmd = [llm_bin, "-m", "bench", "--no-stream", TASK]
            server.reset(tool_steps=0)
            result = run_child(cmd, peer_env, 60)
            if server.records:
                first[name].append(server.records[0]["t_recv"] - result["t0"])
    base = med(walls["nano-code --help"])
    out.append(
        f"`llm` and `mini-swe-agent` installed from PyPI into a throwaway venv ({PEER_VENV}); median of "
        f"{runs} runs, interleaved.\n"
    )
    out.append("| command | wall | vs nano-code --help | exit |")
    out.append("|---|---|---|---|")
    for name, values in walls.items():
        if values:
            out.append(f"| {name} | {ms(med(values))} | {ratio(med(values), base)} | {rcs.get(name)} |")
    out.append("\n| one-shot prompt against the instant server | exec -> first request | vs nano-code |")
    out.append("|---|---|---|")
    nano_first = med(first["nano-code -p --no-record"])
    for name, values in first.items():
        cell = ms(med(values)) if values else "no request seen"
        out.append(f"| {name} | {cell} | {ratio(med(values), nano_first) if values else '-'} |")
    out.append(
        "\nmini-swe-agent's cold start to a first request was not measured: it needs a litellm model "
        "registration and an interactive config; its import/--help times above bound it from below.\n"
    )


# ---------------------------------------------------------------- main


def machine_notes() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "?"
    import urllib3

    from nano_code import __version__

    return (
        f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, Python {platform.python_version()}, "
        f"urllib3 {urllib3.__version__}, nano-code {__version__}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter timeouts (~1-2 min)")
    parser.add_argument("--only", default="cold,steps,replay,ttft,peers", help="comma-separated sections")
    parser.add_argument("--steps", type=int, default=200, help="steps of the per-step session (default 200)")
    parser.add_argument(
        "--replay-steps", type=int, default=1000, help="steps of the big cassette (default 1000)"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    cold_runs = 5 if args.quick else 15
    step_runs = 1 if args.quick else 3
    out: list[str] = []
    started = time.time()
    env = Env()
    import nano_code

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(nano_code.__file__).parent)], check=False
    )
    try:
        with InstantServer() as server:
            capture_spec(env, server)
            if "cold" in only:
                bench_cold(env, server, cold_runs, out)
            if "steps" in only:
                bench_steps(env, server, args.steps, step_runs, out)
            if "replay" in only:
                bench_replay(env, server, args.replay_steps, args.quick, out)
            if "ttft" in only:
                bench_ttft(env, server, cold_runs, out)
            if "peers" in only:
                bench_peers(env, server, 5 if args.quick else 10, out)
    finally:
        env.cleanup()
    header = [
        f"## Results: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        f"Machine: {machine_notes()}. "
        f"Command: `{' '.join([Path(PY).name, 'bench/run_all.py', *sys.argv[1:]])}` "
        f"({time.time() - started:.0f} s). All medians; ratios are this row / the floor row unless stated.",
        "",
    ]
    print("\n".join(header + out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
