"""A scripted OpenAI-compatible server on 127.0.0.1, for tests, benchmarks and demos.

    with FakeServer([reply(content="hi")]) as server:
        url = server.base_url          # http://127.0.0.1:PORT/v1

Standalone: `python -m nano_code.testing.fake_server SCRIPT.json` (a JSON list of steps).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "FakeServer",
    "Respond",
    "completion_body",
    "context_length_error",
    "hang",
    "http_error",
    "is_summary_request",
    "reply",
    "request_tokens",
    "sse_events",
]

Respond = Callable[[Mapping[str, Any], int], Mapping[str, Any] | None]
"""A model as a function: (the request's JSON body, its number from 0) -> the step to answer
with, or None when it has nothing more to say (the server then answers HTTP 500)."""


def reply(
    content: str = "",
    tool_calls: Sequence[tuple[str, Mapping[str, Any]]] | Sequence[Mapping[str, Any]] = (),
    usage: Mapping[str, Any] | None = None,
    finish_reason: str | None = None,
    reasoning: str = "",
    delay: float = 0.0,
    chunk_delay: float = 0.0,
) -> dict[str, Any]:
    """A script step answering with a model reply. `tool_calls` items are (name, arguments)
    pairs or dicts with name, arguments and optionally id (default call_<request>_<n>)."""
    calls = [
        dict(item) if isinstance(item, Mapping) else {"name": item[0], "arguments": dict(item[1])}
        for item in tool_calls
    ]
    return {
        "reply": {
            "content": content,
            "tool_calls": calls,
            "usage": dict(usage) if usage else {"prompt_tokens": 100, "completion_tokens": 20},
            "finish_reason": finish_reason,
            "reasoning": reasoning,
        },
        "delay": delay,
        "chunk_delay": chunk_delay,
    }


def http_error(
    status: int, body: Mapping[str, Any] | str, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A script step answering with an HTTP error (or any raw response)."""
    text = body if isinstance(body, str) else json.dumps(body)
    return {"status": status, "body": text, "headers": dict(headers or {})}


def request_tokens(request: Mapping[str, Any]) -> int:
    """A request's size in tokens as this server counts them: its JSON length over 4."""
    return len(json.dumps(request)) // 4


def context_length_error(limit: int, tokens: int) -> dict[str, Any]:
    """A script step answering as OpenAI does a request of `tokens` past a window of `limit`."""
    message = (
        f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
        f"{tokens} tokens. Please reduce the length of the messages."
    )
    error = {"message": message, "type": "invalid_request_error", "param": "messages"}
    return http_error(400, {"error": {**error, "code": "context_length_exceeded"}})


def is_summary_request(request: Mapping[str, Any]) -> bool:
    """True for a compaction's summary request: its system message is nano-code's summary prompt."""
    from nano_code.prompts import SUMMARY_PROMPT

    messages = request.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], Mapping):
        return False
    return messages[0].get("role") == "system" and messages[0].get("content") == SUMMARY_PROMPT


def hang(seconds: float = 60.0) -> dict[str, Any]:
    """A script step that answers only after `seconds` (for Ctrl-C tests)."""
    return reply(content="(too late)", delay=seconds)


def _usage(reply_spec: Mapping[str, Any]) -> dict[str, Any]:
    usage = {"prompt_tokens": 0, "completion_tokens": 0, **(reply_spec.get("usage") or {})}
    usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
    return usage


def _finish_reason(reply_spec: Mapping[str, Any], calls: list[dict[str, Any]]) -> str:
    return reply_spec.get("finish_reason") or ("tool_calls" if calls else "stop")


def _calls(reply_spec: Mapping[str, Any], request_number: int) -> list[dict[str, Any]]:
    calls = []
    for n, call in enumerate(reply_spec.get("tool_calls") or []):
        arguments = call.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        call_id = call.get("id", f"call_{request_number}_{n}")
        calls.append(
            {"id": call_id, "type": "function", "function": {"name": call["name"], "arguments": arguments}}
        )
    return calls


def _envelope(kind: str, number: int, model: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-fake{number}", "object": kind, "created": 1_700_000_000 + number, "model": model}


def completion_body(reply_spec: Mapping[str, Any], request_number: int, model: str) -> bytes:
    """The reply as a non-streamed chat.completion body."""
    calls = _calls(reply_spec, request_number)
    message: dict[str, Any] = {"role": "assistant", "content": reply_spec.get("content") or None}
    if calls:
        message["tool_calls"] = calls
    if reply_spec.get("reasoning"):
        message["reasoning"] = reply_spec["reasoning"]
    body = _envelope("chat.completion", request_number, model)
    choice = {"index": 0, "message": message, "finish_reason": _finish_reason(reply_spec, calls)}
    body.update(choices=[choice], usage=_usage(reply_spec))
    return json.dumps(body).encode()


def sse_events(reply_spec: Mapping[str, Any], request_number: int, model: str) -> list[bytes]:
    """The reply as OpenAI-style SSE events: text in small pieces, arguments in fragments."""
    base = _envelope("chat.completion.chunk", request_number, model)

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    events = [event({"role": "assistant", "content": ""})]
    if reply_spec.get("reasoning"):
        events.append(event({"reasoning": reply_spec["reasoning"]}))
    content = reply_spec.get("content") or ""
    for start in range(0, len(content), 12):
        events.append(event({"content": content[start : start + 12]}))
    calls = _calls(reply_spec, request_number)
    for index, call in enumerate(calls):
        head = {"index": index, "id": call["id"], "type": "function"}
        events.append(
            event({"tool_calls": [{**head, "function": {"name": call["function"]["name"], "arguments": ""}}]})
        )
        arguments = call["function"]["arguments"]
        for start in range(0, len(arguments), 16):
            piece = {"index": index, "function": {"arguments": arguments[start : start + 16]}}
            events.append(event({"tool_calls": [piece]}))
    events.append(event({}, _finish_reason(reply_spec, calls)))
    usage_chunk = {**base, "choices": [], "usage": _usage(reply_spec)}
    return [*events, f"data: {json.dumps(usage_chunk)}\n\n".encode(), b"data: [DONE]\n\n"]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-reply (Ctrl-C tests do, on purpose) is not an error here.
        pass


class FakeServer:
    """Answers each POST with a step (`reply`, `http_error`, `hang`) from `script`, a list or a
    `Respond` function; as JSON, or SSE when the request streams. `requests` keeps every request
    ({"path", "headers", "body"}), `errors` what a respond function raised (answered HTTP 500).
    `context_limit=N` answers requests over N tokens with OpenAI's context-length error and
    `summary=TEXT` compaction's summary requests, counted in `overflows` and `summaries`."""

    def __init__(
        self,
        script: Sequence[Mapping[str, Any]] | Respond,
        model: str = "fake/scripted-model",
        *,
        context_limit: int | None = None,
        summary: str | Callable[[Mapping[str, Any]], str] | None = None,
    ) -> None:
        self.context_limit = context_limit
        self.summary = summary
        self.overflows = 0
        self.summaries = 0
        self._answered = 0  # requests handed to the script so far
        self.script: list[Mapping[str, Any]] = [] if callable(script) else list(script)
        self.respond: Respond = script if callable(script) else self._next_in_script
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.errors: list[Exception] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with server._lock:
                    number = len(server.requests)
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    try:
                        step = server._step(body if isinstance(body, dict) else {})
                    except Exception as error:  # the test's model is broken: say so, keep serving
                        server.errors.append(error)
                        message = f"fake server: respond raised {type(error).__name__}: {error}"
                        step = http_error(500, {"error": {"message": message}})
                if step is None:
                    step = http_error(500, '{"error":{"message":"fake server: script exhausted"}}')
                if step.get("delay"):
                    time.sleep(float(step["delay"]))
                if "reply" in step:
                    if isinstance(body, dict) and body.get("stream"):
                        self._send_stream(
                            sse_events(step["reply"], number, server.model),
                            float(step.get("chunk_delay") or 0),
                        )
                    else:
                        self._send(200, completion_body(step["reply"], number, server.model), {})
                    return
                self._send(int(step["status"]), str(step["body"]).encode(), step.get("headers") or {})

            def _send(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
                fields = {"Content-Type": "application/json", "Content-Length": len(payload), **headers}
                head = f"HTTP/1.1 {status} {self.responses.get(status, ('Status',))[0]}\r\n"
                head += "".join(f"{key}: {value}\r\n" for key, value in fields.items())
                self.wfile.write(f"{head}\r\n".encode() + payload)  # one write: no Nagle stall
                self.wfile.flush()

            def _send_stream(self, events: list[bytes], chunk_delay: float) -> None:
                head = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                framed = [b"%x\r\n%s\r\n" % (len(e), e) for e in events] + [b"0\r\n\r\n"]
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    if chunk_delay <= 0:
                        self.wfile.write(head + b"".join(framed))
                    else:
                        self.wfile.write(head)
                        for piece in framed:
                            self.wfile.write(piece)
                            self.wfile.flush()
                            time.sleep(chunk_delay)
                    self.wfile.flush()

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: stop() waits for serve_forever to notice.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def _step(self, request: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The step answering `request`: the context window's, the summary's, or the script's."""
        tokens = request_tokens(request)
        if self.context_limit is not None and tokens > self.context_limit:
            self.overflows += 1
            return context_length_error(self.context_limit, tokens)
        if self.summary is not None and is_summary_request(request):
            self.summaries += 1
            text = self.summary(request) if callable(self.summary) else self.summary
            step: Mapping[str, Any] | None = reply(content=text)
        else:
            step = self.respond(request, self._answered)
            self._answered += 1
        if step is not None and self.context_limit is not None and "reply" in step:
            usage = dict(step["reply"].get("usage") or {})
            usage.update(prompt_tokens=tokens, total_tokens=tokens + int(usage.get("completion_tokens") or 0))
            step = {**step, "reply": {**step["reply"], "usage": usage}}
        return step

    def _next_in_script(self, _request: Mapping[str, Any], number: int) -> Mapping[str, Any] | None:
        return self.script[number] if number < len(self.script) else None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a scripted OpenAI-compatible endpoint on 127.0.0.1.")
    parser.add_argument("script", help="JSON file: a list of script steps (see reply()/http_error())")
    args = parser.parse_args()
    with open(args.script, encoding="utf-8") as handle:
        script = json.load(handle)
    with FakeServer(script) as server:
        print(server.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
