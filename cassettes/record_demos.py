"""Re-record the shipped sessions through the real CLI against a scripted local server.

    python cassettes/record_demos.py              # all of them
    python cassettes/record_demos.py stats_fix    # just one

bugfix, edit_run_fix and retry_interrupt were recorded in session format 1 and
are kept that way on purpose: they are the format-1 files every later version
must still load, replay and resume. Re-recording one makes it format 2.
stats_fix is format 2 with a workspace snapshot beside it
(stats_fix.workspace.tar.gz), so forks of it start from the recorded files.

The replies come from `nano_code.testing.fake_server` scripts below, not from a
real model, and each session's metadata says so (`origin`). Everything else is
real: the `nano-code` executable, its HTTP client, the tools running in a
scratch workspace, the recorder. Re-run this after an intended change to the
system prompt, the tool schemas or the request format (or use
`nano-code replay --rebless`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from nano_code.testing.fake_server import FakeServer, http_error, reply  # noqa: E402

ORIGIN = "scripted local server (nano_code.testing.fake_server), not a real model"
WORKSPACE = Path("/tmp/nano-code-demo")
EXECUTABLE = Path(sys.executable).parent / "nano-code"

BUGGY_STATS = '''\
def mean(values):
    """Arithmetic mean of a non-empty list."""
    return sum(values) / len(values) - 1
'''
STATS_TEST = """\
from stats import mean

assert mean([1, 2, 3]) == 2, mean([1, 2, 3])
assert mean([5]) == 5
print("all tests passed")
"""


def fresh_workspace(files: dict[str, str]) -> Path:
    shutil.rmtree(WORKSPACE, ignore_errors=True)
    WORKSPACE.mkdir(parents=True)
    for name, text in files.items():
        (WORKSPACE / name).write_text(text)
    return WORKSPACE


def environment(server: FakeServer) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("NANO_CODE_", "OPENROUTER_", "MODEL_NAME"))
    }
    env.update(
        INFERENCE_BASE_URL=server.base_url,
        MODEL_NAME="demo/scripted-model",
        NANO_CODE_SESSION_ORIGIN=ORIGIN,
        NANO_CODE_HOME=str(WORKSPACE / ".nano-home"),
    )
    env.pop("INFERENCE_BASE_URL_OVERRIDE", None)
    return env


def run(server: FakeServer, out: Path, *args: str, interrupt_after: float | None = None) -> int:
    command = [str(EXECUTABLE), *args]
    process = subprocess.Popen(command, cwd=WORKSPACE, env=environment(server), stdin=subprocess.DEVNULL)
    if interrupt_after is not None:
        time.sleep(interrupt_after)
        process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def usage(prompt: int, completion: int, cost: float) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "cost": cost}


def record_bugfix(out: Path) -> None:
    fresh_workspace({"stats.py": BUGGY_STATS, "test_stats.py": STATS_TEST})
    script = [
        reply(tool_calls=[("shell", {"command": "python3 test_stats.py"})], usage=usage(1510, 24, 0.0046)),
        reply(tool_calls=[("read_file", {"path": "stats.py"})], usage=usage(1620, 18, 0.0049)),
        reply(
            tool_calls=[
                (
                    "edit_file",
                    {
                        "path": "stats.py",
                        "old_string": "return sum(values) / len(values) - 1",
                        "new_string": "return sum(values) / len(values)",
                    },
                )
            ],
            usage=usage(1705, 60, 0.0060),
        ),
        reply(tool_calls=[("shell", {"command": "python3 test_stats.py"})], usage=usage(1790, 24, 0.0057)),
        reply(
            content="Fixed `mean` in stats.py: it subtracted 1 from the average. `python3 test_stats.py` now passes.",
            usage=usage(1850, 30, 0.0060),
        ),
    ]
    with FakeServer(script, model="demo/scripted-model") as server:
        code = run(
            server, out, "-p", "test_stats.py fails; find the bug and fix it", "--yes", "--record", str(out)
        )
    assert code == 0, code


def record_stats_fix(out: Path) -> None:
    """The bugfix session again, in today's format, with its workspace snapshot."""
    out.with_name(out.stem + ".workspace.tar.gz").unlink(missing_ok=True)
    record_bugfix(out)


def record_edit_run_fix(out: Path) -> None:
    fresh_workspace({})
    first = "import sys\n\nfor line in open(sys.argv[1]):\n    print(line.upper(), end='')\n"
    script = [
        reply(
            tool_calls=[("write_file", {"path": "shout.py", "content": first})], usage=usage(1490, 70, 0.0050)
        ),
        reply(tool_calls=[("shell", {"command": "python3 shout.py"})], usage=usage(1580, 22, 0.0050)),
        reply(
            tool_calls=[
                (
                    "edit_file",
                    {
                        "path": "shout.py",
                        "old_string": "for line in open(sys.argv[1]):",
                        "new_string": "source = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin\nfor line in source:",
                    },
                )
            ],
            usage=usage(1700, 80, 0.0063),
        ),
        reply(
            tool_calls=[("shell", {"command": "printf 'hello\\nworld\\n' | python3 shout.py"})],
            usage=usage(1800, 30, 0.0059),
        ),
        reply(
            content="Created shout.py: it upper-cases a file, or stdin when no file is given. "
            "The first run crashed without an argument; fixed and checked with piped input.",
            usage=usage(1880, 40, 0.0063),
        ),
    ]
    with FakeServer(script, model="demo/scripted-model") as server:
        code = run(
            server,
            out,
            "-p",
            "write shout.py that upper-cases a file or stdin, and check it works",
            "--yes",
            "--record",
            str(out),
        )
    assert code == 0, code


def record_retry_interrupt(out: Path) -> None:
    fresh_workspace({"slow.sh": "#!/bin/sh\nsleep 30\necho done\n"})
    rate_limited = http_error(
        429,
        {
            "error": {
                "message": "Rate limit reached, please try again in 0.2s",
                "type": "rate_limit",
                "code": 429,
            }
        },
        {"Retry-After": "0.2"},
    )
    script = [
        rate_limited,
        reply(tool_calls=[("shell", {"command": "sh slow.sh"})], usage=usage(1500, 20, 0.0048)),
    ]
    with FakeServer(script, model="demo/scripted-model") as server:
        code = run(server, out, "-p", "run slow.sh", "--yes", "--record", str(out), interrupt_after=3.0)
    assert code == 130, code
    script = [
        reply(tool_calls=[("read_file", {"path": "slow.sh"})], usage=usage(1600, 20, 0.0050)),
        reply(
            content="slow.sh just sleeps 30 seconds and prints `done`; I stopped when you interrupted it.",
            usage=usage(1700, 30, 0.0055),
        ),
    ]
    with FakeServer(script, model="demo/scripted-model") as server:
        code = run(server, out, "--resume", str(out), "-p", "what does slow.sh do?", "--yes")
    assert code == 0, code


def main() -> None:
    chosen = set(sys.argv[1:])
    for name, record in (
        ("bugfix.yaml", record_bugfix),
        ("edit_run_fix.yaml", record_edit_run_fix),
        ("retry_interrupt.yaml", record_retry_interrupt),
        ("stats_fix.yaml", record_stats_fix),
    ):
        if chosen and Path(name).stem not in chosen:
            continue
        out = HERE / name
        out.unlink(missing_ok=True)
        record(out)
        print(f"recorded {out}")
    shutil.rmtree(WORKSPACE, ignore_errors=True)


if __name__ == "__main__":
    main()
