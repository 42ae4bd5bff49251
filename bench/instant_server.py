"""An instant OpenAI-compatible mock server on 127.0.0.1 for the benchmarks.

Every POST /chat/completions is answered at once, as JSON or (when the request
asks to stream) as SSE, always in ONE socket write (headers + body) with Nagle
disabled -- otherwise stdlib http.server stalls ~40 ms per response on delayed
ACKs and the benchmark measures TCP, not the agent.

The reply is stateless: it counts the `tool` messages after the last `user`
message; while fewer than `tool_steps`, it calls `shell` with `echo hi`,
then it answers with text. So one server serves many sequential sessions.

Server-side timestamps (time.monotonic, which is system-wide on Linux and so
comparable with a timestamp taken by the harness before exec) are kept per
request in `records`: `t_recv` (request body fully read), `t_sent` (response
fully written), `t_text` (first content chunk written, streaming only) and
`body_bytes`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "bench/instant"
TOOL_COMMAND = "echo hi"


def _tool_count(body: Any) -> int:
    if not isinstance(body, dict):
        return 0
    count = 0
    for message in body.get("messages") or []:
        role = message.get("role") if isinstance(message, dict) else None
        if role == "user":
            count = 0
        elif role == "tool":
            count += 1
    return count


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _frame(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


def task_cpu_ns(pid: int | None, seen: dict[int, int] | None = None) -> int | None:
    """CPU time the process `pid` itself has used (all its threads, not its children), in ns.

    /proc/PID/task/*/schedstat's first field has nanosecond resolution, where
    /proc/PID/stat's utime/stime count 10 ms ticks -- too coarse for one step. A thread
    that has ended is gone from /proc/PID/task: with `seen` (thread id -> its last reading,
    kept by the caller across readings of one process) its time up to the last reading
    still counts, so the total never goes down when a thread ends.
    """
    if pid is None:
        return None
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as stat:
                ns = int(stat.read().split()[0])
            total += ns
            if seen is not None:
                seen[int(task)] = ns
    except (OSError, ValueError, IndexError):
        return None
    if seen is not None:
        live = set(os.listdir(f"/proc/{pid}/task")) if os.path.isdir(f"/proc/{pid}/task") else set()
        total += sum(ns for tid, ns in seen.items() if str(tid) not in live)
    return total


class InstantServer:
    """`with InstantServer(tool_steps=N) as server: server.base_url` ..."""

    def __init__(
        self, tool_steps: int = 0, text: str = "done", text_chunks: int = 1, chunk_delay: float = 0.0
    ):
        self.tool_steps = tool_steps
        self.text = text
        self.text_chunks = text_chunks
        self.chunk_delay = chunk_delay
        self.records: list[dict[str, Any]] = []
        self.bodies: list[Any] = []
        self.keep_bodies = False
        self.agent_pid: int | None = None
        self.threads_seen: dict[int, int] = {}
        """The agent's threads' last CPU readings (`task_cpu_ns`); cleared by `reset`."""
        """The agent being measured: its own CPU time is read when each request arrives."""
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                t_recv = time.monotonic()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                record: dict[str, Any] = {
                    "t_recv": t_recv,
                    "body_bytes": length,
                    "cpu_ns": task_cpu_ns(owner.agent_pid, owner.threads_seen),
                }
                with owner._lock:
                    record["n"] = len(owner.records)
                    owner.records.append(record)
                    if owner.keep_bodies:
                        owner.bodies.append(body)
                done = _tool_count(body)
                stream = isinstance(body, dict) and bool(body.get("stream"))
                n = record["n"]
                if done < owner.tool_steps:
                    call = {
                        "id": f"call_{n}_{done}",
                        "type": "function",
                        "function": {"name": "shell", "arguments": json.dumps({"command": TOOL_COMMAND})},
                    }
                    message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
                    finish = "tool_calls"
                else:
                    message = {"role": "assistant", "content": owner.text}
                    finish = "stop"
                if stream:
                    self._stream(n, message, finish, record)
                else:
                    payload = json.dumps(
                        {
                            "id": f"chatcmpl-{n}",
                            "object": "chat.completion",
                            "created": 1_700_000_000,
                            "model": MODEL,
                            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
                        }
                    ).encode()
                    head = (
                        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(payload)}\r\n\r\n"
                    ).encode()
                    self.wfile.write(head + payload)  # one write
                    self.wfile.flush()
                record["t_sent"] = time.monotonic()

            def _stream(self, n: int, message: dict[str, Any], finish: str, record: dict[str, Any]) -> None:
                base = {
                    "id": f"chatcmpl-{n}",
                    "object": "chat.completion.chunk",
                    "created": 1_700_000_000,
                    "model": MODEL,
                }

                def delta(d: dict[str, Any], reason: str | None = None) -> bytes:
                    return _sse({**base, "choices": [{"index": 0, "delta": d, "finish_reason": reason}]})

                first = [delta({"role": "assistant", "content": ""})]
                texts: list[bytes] = []
                rest: list[bytes] = []
                if message.get("tool_calls"):
                    call = message["tool_calls"][0]
                    rest.append(
                        delta(
                            {
                                "tool_calls": [
                                    {
                                        "index": 0,
                                        "id": call["id"],
                                        "type": "function",
                                        "function": {"name": "shell", "arguments": ""},
                                    }
                                ]
                            }
                        )
                    )
                    rest.append(
                        delta(
                            {
                                "tool_calls": [
                                    {"index": 0, "function": {"arguments": call["function"]["arguments"]}}
                                ]
                            }
                        )
                    )
                else:
                    text = message["content"]
                    size = max(1, -(-len(text) // owner.text_chunks))
                    texts = [delta({"content": text[i : i + size]}) for i in range(0, len(text), size)]
                rest.append(delta({}, finish))
                rest.append(
                    _sse(
                        {
                            **base,
                            "choices": [],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
                        }
                    )
                )
                rest.append(b"data: [DONE]\n\n")
                head = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                delay = owner.chunk_delay
                try:
                    if delay <= 0 or not texts:
                        self.wfile.write(
                            head + b"".join(_frame(e) for e in first + texts + rest) + b"0\r\n\r\n"
                        )
                    else:
                        self.wfile.write(head + _frame(first[0]))
                        self.wfile.flush()
                        for index, event in enumerate(texts):
                            time.sleep(delay)
                            self.wfile.write(_frame(event))
                            self.wfile.flush()
                            if index == 0:
                                record["t_text"] = time.monotonic()
                        time.sleep(delay)
                        self.wfile.write(b"".join(_frame(e) for e in rest) + b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def reset(self, **settings: Any) -> None:
        with self._lock:
            self.records = []
            self.bodies = []
            self.threads_seen = {}
            for key, value in settings.items():
                setattr(self, key, value)

    def __enter__(self) -> InstantServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Serve the instant mock on 127.0.0.1 for N seconds.")
    parser.add_argument("--tool-steps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with InstantServer(tool_steps=args.tool_steps) as server:
        print(server.base_url, flush=True)
        time.sleep(args.seconds)
