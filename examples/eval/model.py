"""A scripted model for the example suite: an OpenAI-compatible server on 127.0.0.1 that knows the
four tasks of suite.toml and answers each with the tool calls that solve it.

    python examples/eval/model.py --port 8765      # serves http://127.0.0.1:8765/v1

Two models answer (the request's `model` field picks one): `example/careful` always solves the
task; `example/hasty` is cheaper and slips: it breaks calc.py instead of fixing it on every
attempt, and miscounts names.txt on every second attempt. Each reply reports its usage and a cost,
as OpenRouter does. `respond` is also usable in Python: `FakeServer(respond)`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nano_code.testing.fake_server import completion_body, reply, request_tokens, sse_events

PRICES = {"example/careful": 3e-6, "example/hasty": 0.5e-6}
"""Dollars per prompt token (completion tokens cost four times as much)."""


def _text(content: Any) -> str:
    """A message's text, whether a string or a list of content parts."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return content if isinstance(content, str) else ""


def _plan(task: str, slip: bool) -> list[dict[str, Any]]:
    """The replies that carry out `task` (the user's prompt), step by step; `slip`: get it wrong."""
    if "hello.txt" in task:
        return [
            reply(tool_calls=[("write_file", {"path": "hello.txt", "content": "Hello, world!\n"})]),
            reply(content="Created hello.txt."),
        ]
    if "calc.add" in task:
        new = "return a * b" if slip else "return a + b"
        return [
            reply(tool_calls=[("read_file", {"path": "calc.py"})]),
            reply(
                tool_calls=[
                    ("edit_file", {"path": "calc.py", "old_string": "return a - b", "new_string": new})
                ]
            ),
            reply(content="Fixed calc.add."),
        ]
    if "names.txt" in task:
        command = "grep -c . names.txt > count.txt" if not slip else "echo 6 > count.txt"
        return [reply(tool_calls=[("shell", {"command": command})]), reply(content="Done: count.txt.")]
    if "greet" in task:
        source = 'def greet(name):\n    return f"Hello, {name}!"\n'
        return [
            reply(tool_calls=[("write_file", {"path": "greet.py", "content": source})]),
            reply(content="Wrote greet.py."),
        ]
    return [reply(content="I do not know this task.")]


class ExampleModel:
    """The respond function (request, number) -> reply, keeping per model and task how many
    attempts it has begun (a sample is told apart by its system prompt, which names its workspace)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str, str], int] = {}
        self._slips: dict[str, bool] = {}

    def __call__(self, request: Mapping[str, Any], number: int) -> dict[str, Any]:
        messages = request.get("messages") or []
        model = str(request.get("model", ""))
        task = next((_text(m.get("content")) for m in messages if m.get("role") == "user"), "")
        sample = hashlib.sha256(json.dumps(messages[:2], sort_keys=True).encode()).hexdigest()
        step = sum(1 for m in messages if m.get("role") == "assistant")
        with self._lock:
            if sample not in self._slips:
                attempt = self._attempts.get((model, task), 0) + 1
                self._attempts[(model, task)] = attempt
                self._slips[sample] = model == "example/hasty" and (
                    "calc.add" in task or ("names.txt" in task and attempt % 2 == 0)
                )
            slip = self._slips[sample]
        plan = _plan(task, slip)
        chosen = plan[min(step, len(plan) - 1)]
        prompt_tokens = request_tokens(request)
        price = PRICES.get(model, 1e-6)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 40,
            "cost": price * (prompt_tokens + 160),
        }
        return {**chosen, "reply": {**chosen["reply"], "usage": usage}}


respond = ExampleModel()


def serve(port: int) -> None:
    """Serve `respond` on 127.0.0.1:`port` until Ctrl-C (streamed or whole, as each request asks)."""
    lock = threading.Lock()
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            with lock:
                number = count[0]
                count[0] += 1
            answer = respond(body, number)["reply"]
            model = str(body.get("model", "example"))
            if body.get("stream"):
                payload = b"".join(sse_events(answer, number, model))
                content_type = "text/event-stream"
            else:
                payload, content_type = completion_body(answer, number, model), "application/json"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free one)")
    serve(parser.parse_args().port)
