"""How fast `nano-code view` renders a session, and how fast Chromium loads the page.

    .venv/bin/python bench/view_speed.py                    # 100, 1000 and 5000 steps
    .venv/bin/python bench/view_speed.py --steps 100 1000 --runs 3

Each session is recorded once by the real agent (`nano_code.testing.run`) against the scripted
server: every step a shell call (`echo`, its output a few lines), the last an answer; the files
are kept in --cache (default /tmp/nano-code-bench-view) for the next run. Timed, medians of
--runs: rendering in-process (`sessions_view`: load, tables, kernel fold, HTML), the CLI
(`nano-code view`, process start included), and Chromium (Debian's, headless, via Playwright)
loading the page offline: `goto` until the load event, and the navigation's own duration. The
linear check compares the time per step of the largest size with the smallest. Benchmarks, not
tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nano_code.testing import FakeServer, reply, run
from nano_code.view.build import sessions_view

CHROMIUM = "/usr/bin/chromium"


def recorded(steps: int, cache: Path) -> Path:
    """A session of `steps` model calls, recorded once and kept (`.done` marks a whole one)."""
    path = cache / f"view-{steps}.yaml"
    done = path.with_suffix(".done")
    if done.exists():
        return path
    workspace = cache / f"ws-{steps}"
    workspace.mkdir(parents=True, exist_ok=True)
    servers: list[FakeServer] = []

    def respond(request: Any, number: int) -> Any:
        servers[0].requests.clear()  # it keeps every request body: gigabytes at 5,000 steps
        if number + 1 < steps:
            return reply(
                tool_calls=[("shell", {"command": f"echo step {number}; echo line two; echo three"})]
            )
        return reply(content="done")

    path.unlink(missing_ok=True)
    started = time.perf_counter()
    with FakeServer(respond) as server:
        servers.append(server)
        run(
            "echo many times",
            base_url=server.base_url,
            workspace=workspace,
            record_to=path,
            max_steps=steps + 1,
        )
    done.touch()
    print(f"recorded {steps} steps in {time.perf_counter() - started:.1f} s -> {path}", file=sys.stderr)
    return path


def median_time(call: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def browser_times(page_path: Path, runs: int) -> tuple[float, float] | None:
    """(goto until load, the navigation's duration) in seconds, medians; None without a browser."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path(CHROMIUM).exists():
        return None
    walls, navigations = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        for _ in range(runs):
            context = browser.new_context(offline=True)
            page = context.new_page()
            started = time.perf_counter()
            page.goto(page_path.as_uri(), wait_until="load")
            walls.append(time.perf_counter() - started)
            navigations.append(page.evaluate("performance.getEntriesByType('navigation')[0].duration") / 1000)
            context.close()
        browser.close()
    return statistics.median(walls), statistics.median(navigations)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/nano-code-bench-view"))
    options = parser.parse_args()
    options.cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for steps in options.steps:
        session = recorded(steps, options.cache)
        render = median_time(lambda session=session: sessions_view([session]), options.runs)
        page_path = options.cache / f"view-{steps}.html"
        command = [sys.executable, "-m", "nano_code", "view", str(session), "-o", str(page_path)]
        cli = median_time(lambda command=command: subprocess.run(command, check=True, capture_output=True), 3)
        loads = browser_times(page_path, options.runs)
        rows.append((steps, session.stat().st_size, page_path.stat().st_size, render, cli, loads))
    print(
        "| steps | session file | page | render (in-process) | `nano-code view` | Chromium load | navigation |"
    )
    print("|---|---|---|---|---|---|---|")
    for steps, session_bytes, page_bytes, render, cli, loads in rows:
        load, navigation = (f"{loads[0]:.2f} s", f"{loads[1]:.2f} s") if loads else ("-", "-")
        print(
            f"| {steps:,} | {session_bytes / 2**20:.2f} MiB | {page_bytes / 2**20:.2f} MiB | {render:.2f} s "
            f"| {cli:.2f} s | {load} | {navigation} |"
        )
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        per_step = [(row[3] / row[0], (row[5][0] / row[0]) if row[5] else None) for row in (small, large)]
        print()
        print(
            f"render time per step: {per_step[0][0] * 1000:.2f} ms at {small[0]:,} steps, "
            f"{per_step[1][0] * 1000:.2f} ms at {large[0]:,} ({per_step[1][0] / per_step[0][0]:.2f}x)"
        )
        if per_step[0][1] and per_step[1][1]:
            print(
                f"Chromium load per step: {per_step[0][1] * 1000:.2f} ms at {small[0]:,} steps, "
                f"{per_step[1][1] * 1000:.2f} ms at {large[0]:,} ({per_step[1][1] / per_step[0][1]:.2f}x)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
