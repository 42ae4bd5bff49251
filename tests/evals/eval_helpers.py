"""What the eval tests share: a small suite written to disk, and a model that reacts to its tasks."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nano_code.testing.fake_server import http_error, reply

COST_PER_REPLY = 0.001


def write_suite(folder: Path, body: str, name: str = "suite.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


TWO_TASKS = """
[[task]]
id = "alpha"
prompt = "write alpha"
check = "grep -qx right out.txt"

[[task]]
id = "beta"
prompt = "write beta"
workspace = "beta-files"
check = "grep -qx right out.txt && test -f seed.txt"
timeout = 20
"""


class TaskModel:
    """Writes out.txt in one step and then says done. `m/good` writes "right"; `m/bad` writes
    "wrong" for beta; `m/broken` answers HTTP 400. Counts the samples begun per model."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.begun: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Mapping[str, Any], number: int) -> Mapping[str, Any]:
        model = str(request.get("model"))
        messages = request.get("messages") or []
        task = next(str(m.get("content")) for m in messages if m.get("role") == "user")
        steps = sum(1 for m in messages if m.get("role") == "assistant")
        usage = {"prompt_tokens": 100, "completion_tokens": 10, "cost": COST_PER_REPLY}
        if model == "m/broken":
            return http_error(400, {"error": {"message": "model m/broken is not available\nsecond line"}})
        if steps == 0:
            with self._lock:
                self.begun[model] = self.begun.get(model, 0) + 1
            text = "wrong" if model == "m/bad" and "beta" in task else "right"
            call = ("write_file", {"path": "out.txt", "content": text + "\n"})
            return reply(tool_calls=[call], usage=usage, delay=self.delay)
        return reply(content="done", usage=usage, delay=self.delay)


def jsonl_rows(directory: Path) -> list[dict[str, Any]]:
    text = (directory / "samples.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]
