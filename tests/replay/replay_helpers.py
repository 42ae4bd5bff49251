"""Making and editing recorded sessions for the replay tests.

Sessions come from two places: the real `nano-code` executable run as a
subprocess against a local `FakeServer` (what a user does), and an in-process
session built by the same factory as `nano_code.cli.run` (fast; used where
many sessions are needed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nano_code.adapters.config import Settings
from nano_code.adapters.provenance import provenance
from nano_code.adapters.secrets import Redactor
from nano_code.adapters.session_file import JOURNAL_PREFIX, dump_line, load_session
from nano_code.adapters.session_writer import export_full
from nano_code.kernel.actions import EndTurn
from nano_code.kernel.events import ApprovalDecision
from nano_code.kernel.state import initial_state
from nano_code.session.factory import live_session, open_recorder
from nano_code.session.settings import RecordedSettings, kernel_config, read_agents_md
from nano_code.testing.fake_server import FakeServer, reply

NANO = Path(sys.executable).parent / "nano-code"
TASK = "write hello.py and run it"


def three_step_script(
    greeting: str = "hi there", usage: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Write a file, run it with the shell, answer."""
    return [
        reply(
            tool_calls=[("write_file", {"path": "hello.py", "content": f"print({greeting!r})\n"})],
            usage=usage,
        ),
        reply(tool_calls=[("shell", {"command": "python3 hello.py"})], usage=usage),
        reply(content=f"Done: hello.py prints {greeting}.", usage=usage),
    ]


def cli_env(base_url: str, home: Path, **extra: str) -> dict[str, str]:
    """The inherited environment without any nano-code settings, pointed at `base_url`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NANO_CODE_")
        and k not in ("OPENROUTER_API_KEY", "MODEL_NAME", "INFERENCE_BASE_URL")
    }
    # Approval without a sandbox is what most of these tests are about; a test of the sandbox
    # passes NANO_CODE_SANDBOX itself.
    env.update(INFERENCE_BASE_URL=base_url, NANO_CODE_HOME=str(home), NANO_CODE_SANDBOX="off")
    env.update(extra)
    return env


def offline_env(home: Path) -> dict[str, str]:
    return cli_env("http://127.0.0.1:9/v1", home)


def run_cli(
    args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float = 60, unshare: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [str(NANO), *args]
    if unshare:
        command = ["unshare", "-rn", *command]
    return subprocess.run(
        command,
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def fork_live(
    session: Path, server: FakeServer, cwd: Path, home: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`nano-code replay SESSION --fork-at 1 --yes --rerun-recorded`, the live part answered by
    `server` (the recorded prefix re-run with the user's consent: the tests' sandbox is off)."""
    args = [
        "replay",
        str(session),
        "--fork-at",
        "1",
        "--base-url",
        server.base_url,
        "--yes",
        "--rerun-recorded",
    ]
    args += extra
    return run_cli(args, cwd, cli_env(server.base_url, home))


def record_cli(
    path: Path,
    workspace: Path,
    script: Sequence[Mapping[str, Any]],
    task: str = TASK,
    extra: Sequence[str] = (),
    home: Path | None = None,
) -> tuple[subprocess.CompletedProcess[str], FakeServer]:
    """Record a session with the real executable; returns the run and the (stopped) server."""
    home = home or workspace.parent / "home"
    with FakeServer(script) as server:
        done = run_cli(
            ["--record", str(path), "--yes", "-p", task, *extra], workspace, cli_env(server.base_url, home)
        )
    assert done.returncode == 0, done.stdout + done.stderr
    return done, server


def replay_cli(*args: str, cwd: Path, home: Path, unshare: bool = False) -> subprocess.CompletedProcess[str]:
    return run_cli(["replay", *args], cwd, offline_env(home), unshare=unshare)


def replay_json(*args: str, cwd: Path, home: Path) -> tuple[int, list[dict[str, Any]]]:
    done = replay_cli("--json", *args, cwd=cwd, home=home)
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, reports


# ---------------------------------------------------------------- in-process recording


def recorded_settings(base_url: str, workspace: Path, stream: bool, max_steps: int = 50) -> dict[str, Any]:
    return RecordedSettings(
        model="test/model",
        base_url=base_url,
        max_steps=max_steps,
        stream=stream,
        auto_approve=True,
        shell_timeout=30.0,
        workspace=str(workspace),
    ).to_json()


def record_inproc(
    path: Path,
    workspace: Path,
    base_url: str,
    tasks: Sequence[str] = (TASK,),
    *,
    stream: bool = True,
    api_key: str | None = None,
    origin: str = "test",
) -> list[EndTurn]:
    """Record a session in this process, built by the factory `nano_code.cli.run` uses."""
    settings = recorded_settings(base_url, workspace, stream)
    agents_md = read_agents_md(workspace)
    config = kernel_config(settings, agents_md)
    redactor = Redactor(api_key)
    recorder = open_recorder(
        path, provenance(config, settings, workspace, agents_md, origin=origin), redactor
    )

    def refuse(action: Any) -> ApprovalDecision:
        raise AssertionError(f"auto-approve is on; nothing should ask: {action!r}")

    live = Settings(api_key=api_key, base_url=base_url, model="test/model", stream=stream, shell_timeout=30.0)
    session = live_session(
        live, initial_state(config), workspace, refuse, recorder=recorder, snapshot_beside=path
    )
    try:
        return [session.driver.run_turn(task) for task in tasks]
    finally:
        session.close()


# ---------------------------------------------------------------- editing session files


def record_lines(path: Path) -> list[tuple[int, str, dict[str, Any]]]:
    """(0-based line index, kind, data) for every interaction and journal line."""
    found = []
    for index, line in enumerate(path.read_text(encoding="utf-8").split("\n")):
        if line.startswith("- "):
            found.append((index, "interaction", json.loads(line[2:])))
        elif line.startswith(JOURNAL_PREFIX):
            found.append((index, "journal", json.loads(line[len(JOURNAL_PREFIX) :])))
    return found


def interaction_indexes(path: Path) -> list[int]:
    return [index for index, kind, _ in record_lines(path) if kind == "interaction"]


def journal_indexes(path: Path, predicate: Callable[[dict[str, Any]], bool]) -> list[int]:
    return [index for index, kind, data in record_lines(path) if kind == "journal" and predicate(data)]


def expand_bodies(path: Path) -> None:
    """Rewrite `path` with every request body whole (line for line), so that surgery on
    single lines does not break format 2's chain of body deltas."""
    expanded = path.with_name(path.name + ".expanded")
    export_full(load_session(path), expanded)
    expanded.replace(path)


def rewrite_line(path: Path, index: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the record on line `index`; the line stays one valid JSON record."""
    expand_bodies(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    line = lines[index]
    prefix = "- " if line.startswith("- ") else JOURNAL_PREFIX
    data = json.loads(line[len(prefix) :])
    change(data)
    lines[index] = prefix + dump_line(data)
    path.write_text("\n".join(lines), encoding="utf-8")


def delete_line(path: Path, index: int) -> None:
    expand_bodies(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    del lines[index]
    path.write_text("\n".join(lines), encoding="utf-8")


def swap_lines(path: Path, first: int, second: int) -> None:
    expand_bodies(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[first], lines[second] = lines[second], lines[first]
    path.write_text("\n".join(lines), encoding="utf-8")


def is_tool_result(data: Mapping[str, Any], tool: str | None = None) -> bool:
    event = data.get("event") or {}
    call = data.get("call") or {}
    return event.get("type") == "ToolResult" and (tool is None or call.get("name") == tool)


def rewrite_metadata(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the session's metadata line (kept one line of JSON)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    (index,) = [i for i, line in enumerate(lines) if line.startswith("metadata: ")]
    data = json.loads(lines[index][len("metadata: ") :])
    change(data)
    lines[index] = "metadata: " + dump_line(data)
    path.write_text("\n".join(lines), encoding="utf-8")


def request_body(interaction: Mapping[str, Any]) -> dict[str, Any]:
    body = json.loads(interaction["request"]["body"])
    assert isinstance(body, dict)
    return body
