"""Helpers for the trust-boundary tests (issue 7).

- `ScreenTerminal`: a pseudo-terminal whose output is fed to a pyte screen, so a test
  checks what a person would SEE (cursor moves, erased lines, window titles applied),
  not only which bytes went by.
- `RawServer`: a tiny HTTP server on 127.0.0.1 that writes exactly the bytes a test
  wants (gzip bombs, endless or trickling streams, odd headers, replies that break off).
- `run_measured`: runs a command and returns its output, wall time and peak RSS (wait4).
- Key-hunting helpers that undo every JSON escaping before searching for a secret.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyte
from cli_helpers import Terminal

from nano_code.testing.fake_server import completion_body, reply, sse_events

CONTROL_BYTES = (b"\x1b", b"\r", b"\x07", b"\x00", b"\x08", b"\x9b")
"""Bytes that must never reach a terminal raw from untrusted text (ESC, CR, BEL, NUL, BS, CSI)."""


def control_bytes_in(data: bytes) -> list[bytes]:
    return [byte for byte in CONTROL_BYTES if byte in data]


# --------------------------------------------------------------------------------------------------
# a pseudo-terminal with a screen
# --------------------------------------------------------------------------------------------------


class ScreenTerminal(Terminal):
    """A pty for one child (stdin, stdout and stderr), 120x40, rendered by pyte as it reads
    (the pty itself, writing and closing come from tests/cli's `Terminal`)."""

    def __init__(self, columns: int = 120, lines: int = 40) -> None:
        super().__init__()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.screen = pyte.Screen(columns, lines)
        self._stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self._matched = 0
        self.closed = False

    def _read_once(self, timeout: float) -> bool:
        """Read what is there (waiting up to `timeout`); False once the child closed the pty."""
        if self.closed:
            return False
        ready, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every copy of the slave is closed
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.raw += chunk
        self._stream.feed(chunk)
        return True

    def expect(self, text: str, timeout: float = 10.0) -> None:
        """Wait until `text` appears in the output after the previous match."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while True:
            found = self.raw.find(wanted, self._matched)
            if found >= 0:
                self._matched = found + len(wanted)
                return
            left = deadline - time.monotonic()
            still_open = left > 0 and self._read_once(min(left, 0.2))
            if not still_open and self.raw.find(wanted, self._matched) < 0:
                raise AssertionError(
                    f"{text!r} not seen within {timeout} s; the screen shows:\n{self.text()}\n"
                    f"raw tail: {self.raw[-600:]!r}"
                )

    def drain(self, timeout: float = 10.0) -> None:
        """Read until the child closes the terminal (or `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read_once(0.1):
            pass

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines()).rstrip("\n")


# --------------------------------------------------------------------------------------------------
# a raw HTTP server
# --------------------------------------------------------------------------------------------------


@dataclass
class Connection:
    """One request the raw server received, and the socket to answer it on."""

    sock: socket.socket
    number: int
    method: str = ""
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    started: float = 0.0
    ended: float | None = None
    sent: int = 0
    """Bytes of response written (head included)."""
    client_closed: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the server stops: endless handlers end then."""

    @property
    def wants_stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))

    def send(self, data: bytes) -> bool:
        """Write `data`; False when the client has gone."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.client_closed = True
            return False
        self.sent += len(data)
        return True

    def gone(self, wait: float) -> bool:
        """Whether the client closed its end, waiting up to `wait` seconds to find out."""
        if self.client_closed:
            return True
        try:
            ready, _, _ = select.select([self.sock], [], [], wait)
            if ready and not self.sock.recv(4096):
                self.client_closed = True
        except OSError:
            self.client_closed = True
        return self.client_closed


Handler = Callable[[Connection], None]


class RawServer:
    """Answers connection N with handlers[N] (one request per connection: Connection: close).

    Beyond the script it answers 500, like FakeServer. `connections` keeps every request.
    """

    def __init__(self, handlers: Sequence[Handler]) -> None:
        self.handlers = list(handlers)
        self.connections: list[Connection] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def __enter__(self) -> RawServer:
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._accepting.join(timeout=5)
        with contextlib.suppress(OSError):
            self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection = Connection(
                sock, len(self.connections), started=time.monotonic(), stopping=self._stop
            )
            self.connections.append(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: Connection) -> None:
        sock = connection.sock
        try:
            sock.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                piece = sock.recv(65536)
                if not piece:
                    return
                data += piece
            head, _, rest = data.partition(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            connection.method, connection.path, _ = request_line.split(" ", 2)
            for line in header_lines:
                name, _, value = line.partition(":")
                connection.headers[name.strip().lower()] = value.strip()
            length = int(connection.headers.get("content-length") or 0)
            while len(rest) < length:
                piece = sock.recv(65536)
                if not piece:
                    break
                rest += piece
            try:
                connection.body = json.loads(rest)
            except ValueError:
                connection.body = rest
            sock.settimeout(2)  # a client that stops reading must not block the server forever
            if connection.number < len(self.handlers):
                self.handlers[connection.number](connection)
            else:
                send_response(connection, 500, b'{"error":{"message":"raw server: script exhausted"}}')
        except OSError:
            connection.client_closed = True
        finally:
            connection.ended = time.monotonic()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def wait_for_connections(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.connections) >= count and all(c.ended for c in self.connections[:count]):
                return True
            time.sleep(0.02)
        return False


def head_bytes(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Status'}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def send_response(
    connection: Connection,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> None:
    all_headers = {"Content-Type": content_type, "Content-Length": str(len(body)), "Connection": "close"}
    all_headers.update(headers or {})
    connection.send(head_bytes(status, all_headers) + body)


def chunked(pieces: Sequence[bytes]) -> list[bytes]:
    return [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces if piece]


SSE_HEAD = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "close"}


def answer(content: str = "", headers: Mapping[str, str] | None = None, **reply_args: Any) -> Handler:
    """A complete, well-formed model reply (SSE when asked to stream), with extra `headers`."""

    def handle(connection: Connection) -> None:
        spec = reply(content=content, **reply_args)["reply"]
        if connection.wants_stream:
            events = sse_events(spec, connection.number, "raw/scripted-model")
            head = head_bytes(200, {**SSE_HEAD, "Transfer-Encoding": "chunked", **(headers or {})})
            connection.send(head + b"".join(chunked(events)) + b"0\r\n\r\n")
        else:
            body = completion_body(spec, connection.number, "raw/scripted-model")
            send_response(connection, 200, body, headers=headers)

    return handle


def broken_off(content: str, keep_events: int) -> Handler:
    """A streamed reply whose first `keep_events` events arrive, then the connection closes
    without the end of the chunked body."""

    def handle(connection: Connection) -> None:
        events = sse_events(reply(content=content)["reply"], connection.number, "raw/scripted-model")
        head = head_bytes(200, {**SSE_HEAD, "Transfer-Encoding": "chunked"})
        connection.send(head + b"".join(chunked(events[:keep_events])))
        time.sleep(0.3)  # let the client show what it got before the break

    return handle


def endless(head: bytes, piece: bytes, interval: float = 0.0, give_up_after: float = 20.0) -> Handler:
    """Writes `head`, then `piece` again and again (every `interval` s) until the client
    hangs up (or `give_up_after` s, a safety net for a broken client)."""

    def handle(connection: Connection) -> None:
        if not connection.send(head):
            return
        deadline = time.monotonic() + give_up_after
        batch = piece * max(1, 65536 // len(piece)) if interval <= 0 else piece
        while time.monotonic() < deadline and not connection.stopping.is_set():
            if not connection.send(batch):
                return
            if interval > 0 and connection.gone(interval):
                return

    return handle


def compression_bomb(line: bytes, inflated_size: int, encoding: str = "gzip") -> bytes:
    """`line` repeated to about `inflated_size` bytes, compressed for Content-Encoding `encoding`:
    "gzip" (one member), "deflate" (zlib-wrapped) or "gzip-members" (one gzip member per MiB,
    concatenated, as gzip allows).

    Built fast: a 1 MiB block is deflated once, ending with a full flush (which resets the
    compressor's history), so the same compressed bytes stand for every repetition."""
    block = line * ((1 << 20) // len(line))
    count = max(1, inflated_size // len(block))
    if encoding == "gzip-members":
        return gzip.compress(block, compresslevel=9, mtime=0) * count
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert first == again, "a full flush should make every block compress the same"
    body = first * count + compressor.flush(zlib.Z_FINISH)
    if encoding == "deflate":
        adler = 1
        for _ in range(count):
            adler = zlib.adler32(block, adler)
        return b"\x78\xda" + body + struct.pack(">I", adler)
    assert encoding == "gzip", encoding
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + body + struct.pack("<II", crc, (len(block) * count) & 0xFFFFFFFF)


# --------------------------------------------------------------------------------------------------
# running with measurements
# --------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_kib: int
    """Peak resident set size of the child itself (from wait4), in KiB."""


_RSS_WRAPPER = """
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""Run by a fresh, small interpreter: spawns the command and writes its own peak RSS (KiB)."""


def run_measured(
    command: Sequence[str | bytes],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    stdout: Any = subprocess.PIPE,
    preexec_fn: Callable[[], None] | None = None,
) -> Measured:
    """Run `command` (stdin /dev/null) to the end; kill it after `timeout` s and fail.

    The command is started by a small wrapper process with posix_spawn, which
    reports the command's own peak RSS: a child forked from this (large) pytest
    process would count the parent's pages copied before its exec.
    """
    started = time.monotonic()
    rss_file = Path(tempfile.mkstemp(prefix="rss-")[1])
    process = subprocess.Popen(
        [sys.executable, "-c", _RSS_WRAPPER, str(rss_file), *command],
        start_new_session=True,  # so a timeout kills the command with its wrapper
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        preexec_fn=preexec_fn,
    )
    outputs: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def collect(name: str, stream: Any) -> None:
        if stream is not None:
            outputs[name] = stream.read()

    readers = [
        threading.Thread(target=collect, args=("stdout", process.stdout), daemon=True),
        threading.Thread(target=collect, args=("stderr", process.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    timer = threading.Timer(timeout, lambda: _kill(process.pid))
    timer.start()
    try:
        _, status, _usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    try:
        max_rss_kib = int(rss_file.read_text() or 0)
    finally:
        rss_file.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(timeout=5)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    assert seconds < timeout, (
        f"killed after {timeout} s; stderr:\n{outputs['stderr'].decode(errors='replace')}"
    )
    return Measured(
        process.returncode,
        outputs["stdout"].decode(errors="replace"),
        outputs["stderr"].decode(errors="replace"),
        seconds,
        max_rss_kib,
    )


def _kill(pid: int) -> None:
    """Kill the wrapper and the command it spawned (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------------
# finding a secret in any encoding
# --------------------------------------------------------------------------------------------------

_U_ESCAPE = re.compile(r"\\+u([0-9a-fA-F]{4})")
_SHORT_ESCAPE = re.compile(r"\\+([/\"\\])")


def unescape_all(text: str) -> str:
    """Undo JSON escapes at any depth (a body inside a record doubles the backslashes),
    until nothing changes: what a reader of the text could reconstruct."""
    for _ in range(20):
        undone = _U_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
        undone = _SHORT_ESCAPE.sub(lambda m: m.group(1), undone)
        if undone == text:
            break
        text = undone
    return text


def key_forms(secret: str) -> list[str]:
    """The key literally, JSON-escaped, \\u-escaped (both cases) and with \\/."""
    return [
        secret,
        json.dumps(secret)[1:-1],
        "".join(f"\\u{ord(c):04x}" for c in secret),
        "".join(f"\\u{ord(c):04X}" for c in secret),
        secret.replace("/", "\\/"),
    ]


def json_strings(value: Any) -> Iterator[str]:
    """Every string inside `value`, and inside strings that are themselves JSON or SSE."""
    if isinstance(value, str):
        yield value
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            with contextlib.suppress(ValueError, RecursionError):
                yield from json_strings(json.loads(stripped))
        for line in value.splitlines():
            if line.startswith("data:"):
                with contextlib.suppress(ValueError, RecursionError):
                    yield from json_strings(json.loads(line[5:]))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from json_strings(key)
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


def session_strings(path: Path) -> Iterator[str]:
    """Every string of every JSON record in a session file, recursively decoded."""
    for line in path.read_text(encoding="utf-8").splitlines():
        for prefix in ("#nc ", "- ", "metadata: "):
            if line.startswith(prefix):
                yield from json_strings(json.loads(line[len(prefix) :]))
                break


def recorded_stream_texts(path: Path) -> Iterator[str]:
    """For each recorded streamed reply: its text, reasoning and tool arguments reassembled
    from the pieces (a key split over several events is whole again here, as in a replay)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("- "):
            continue
        body = json.loads(line[2:]).get("response", {}).get("body", {}).get("string", "")
        pieces: dict[str, list[str]] = {}
        for event in body.splitlines():
            if not event.startswith("data:"):
                continue
            try:
                chunk = json.loads(event[5:])
            except ValueError:
                continue
            for choice in chunk.get("choices") or [] if isinstance(chunk, dict) else []:
                delta = choice.get("delta") or {}
                for name in ("content", "reasoning"):
                    if isinstance(delta.get(name), str):
                        pieces.setdefault(name, []).append(delta[name])
                for call in delta.get("tool_calls") or []:
                    arguments = (call.get("function") or {}).get("arguments")
                    if isinstance(arguments, str):
                        pieces.setdefault(f"call {call.get('index')}", []).append(arguments)
        yield from ("".join(parts) for parts in pieces.values())


def key_leaks(text: str, secret: str) -> list[str]:
    """How `secret` shows in `text` (empty when it does not, in any form)."""
    found = [form for form in key_forms(secret) if form in text or form.lower() in text.lower()]
    if secret in unescape_all(text):
        found.append("after undoing JSON escapes")
    return found
