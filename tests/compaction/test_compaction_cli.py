"""The real CLI against a server with a small context window: a 60-step task completes.

The fake server answers OpenAI's context-length error envelope once a request
passes its limit and writes a summary when asked for one; nano-code compacts
(on the reply's prompt tokens, or on the error, learning the limit it states)
and carries on. The recording then replays identically, summaries included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from nano_code.adapters.session_file import load_session
from nano_code.session.replay import replay_session
from nano_code.testing.fake_server import FakeServer, reply

NANO = Path(sys.executable).parent / "nano-code"
STEPS = 60


def scripted_model(workspace: Path) -> tuple[Any, Any]:
    """A model that writes f00.txt .. f59.txt one per step, then answers; it reads its
    progress from the workspace, so it needs nothing the summary may have left out."""

    def respond(request: Mapping[str, Any], number: int) -> dict[str, Any]:
        done = len(list(workspace.glob("f*.txt")))
        if done >= STEPS:
            return reply(content=f"All {STEPS} files written.")
        body = "x" * 300  # each step adds a few hundred tokens: the window fills many times over
        return reply(tool_calls=[("write_file", {"path": f"f{done:02d}.txt", "content": f"{done} {body}\n"})])

    def summarise(request: Mapping[str, Any]) -> str:
        return f"Writing files f00.txt, f01.txt ... in order; {len(list(workspace.glob('f*.txt')))} written."

    return respond, summarise


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_a_60_step_task_completes_past_a_small_context_window(tmp_path: Path, stream: str) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("NANO_CODE_") and k != "OPENROUTER_API_KEY"
    }
    respond, summarise = scripted_model(workspace)
    with FakeServer(respond, context_limit=6000, summary=summarise) as server:
        env.update(
            INFERENCE_BASE_URL=server.base_url,
            NANO_CODE_HOME=str(tmp_path / "home"),
            NANO_CODE_SANDBOX="off",
            NANO_CODE_CONTEXT_TOKENS="32000",  # wrong on purpose: the server's error teaches the real one
        )
        done = subprocess.run(
            [
                str(NANO),
                "-p",
                "write the sixty files",
                "--yes",
                stream,
                "--max-steps",
                "80",
                "--record",
                str(tmp_path / "s.yaml"),
            ],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        overflows, summaries = server.overflows, server.summaries
        biggest = max(len(json.dumps(r["body"])) // 4 for r in server.requests)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"All {STEPS} files written." in done.stdout
    assert "Writing files f00.txt" not in done.stdout  # summaries are not shown as answers
    assert sorted(p.name for p in workspace.glob("f*.txt")) == [f"f{n:02d}.txt" for n in range(STEPS)]
    assert overflows >= 1  # the window was hit at least once ...
    assert summaries >= 2  # ... and the conversation was compacted more than once
    assert biggest < 6000 * 1.5  # nothing ever grew far past the window
    session = load_session(tmp_path / "s.yaml")
    assert session.interaction_count == len(server.requests)
    report = replay_session(tmp_path / "s.yaml")
    assert report.status == "identical", report.divergence.render() if report.divergence else report.error
