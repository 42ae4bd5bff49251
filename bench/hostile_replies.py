"""Hostile replies at full scale: what a runaway or malicious server costs nano-code.

The trust-boundary issue measured, before the fix: 1 GB of SSE comments took
5.7 GiB RSS and 177 s and left a 3 GB recording; a 1.4 MB gzip bomb was still
inflating after 150 s at 727 MiB; a 2.9 MB one took 370 s and left a 2.5 GB
line; a keep-alive trickle never ended. This runs each against the real CLI
(`nano-code -p`, recording on), with the default caps (32 MiB per reply,
900 s per call -- the trickle uses NANO_CODE_CALL_TIMEOUT=5 so the run stays
short), and reports wall time, the child's own peak RSS (os.wait4) and the
recording's size. Every server is on 127.0.0.1; nothing is asserted.

    .venv/bin/python bench/hostile_replies.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NANO = ROOT / ".venv" / "bin" / "nano-code"
GIB = 1 << 30


def gzip_bomb(target_bytes: int) -> bytes:
    """A gzip stream of `target_bytes` zeros (about 1/1030 of that on the wire)."""
    squeezer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 24)
    parts = []
    left = target_bytes
    while left > 0:
        piece = block if left >= len(block) else bytes(left)
        parts.append(squeezer.compress(piece))
        left -= len(piece)
    parts.append(squeezer.flush())
    return b"".join(parts)


class HostileServer:
    """Answers every request the same hostile way, on 127.0.0.1."""

    def __init__(self, mode: str, bomb: bytes = b"") -> None:
        self.mode = mode
        self.bomb = bomb
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.requests = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.requests += 1
            if self.mode == "sse-comments":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
                chunk = b": keep-alive\n\n" * 4096
                sent = 0
                while sent < GIB and not self.stopping:
                    conn.sendall(chunk)
                    sent += len(chunk)
            elif self.mode == "gzip-bomb":
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                    + f"Content-Length: {len(self.bomb)}\r\n\r\n".encode()
                    + self.bomb
                )
            elif self.mode == "trickle":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
                while not self.stopping:
                    conn.sendall(b":\n")
                    time.sleep(0.5)
        except OSError:
            pass  # nano-code hung up: that is the point
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopping = True
        self.sock.close()


def run_once(mode: str, bomb: bytes, home: Path) -> dict[str, float]:
    server = HostileServer(mode, bomb)
    record = home / f"{mode}-{time.monotonic_ns()}.yaml"
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENROUTER_API_KEY", "INFERENCE_BASE_URL")
    }
    env.update(
        INFERENCE_BASE_URL=f"http://127.0.0.1:{server.port}/v1",
        NANO_CODE_HOME=str(home),
        NANO_CODE_CALL_TIMEOUT="5" if mode == "trickle" else "900",
    )
    workspace = Path(tempfile.mkdtemp(prefix="hostile-ws-"))
    started = time.monotonic()
    child = subprocess.Popen(
        [str(NANO), "-p", "hi", "--record", str(record)],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    server.stop()
    last = err.decode("utf-8", "replace").strip().splitlines()
    return {
        "wall": wall,
        "rss_mib": usage.ru_maxrss / 1024,
        "recording_kib": record.stat().st_size / 1024 if record.exists() else 0.0,
        "requests": float(server.requests),
        "exit": float(os.waitstatus_to_exitcode(status)),
        "message": next((line for line in last if "error" in line), last[-1] if last else ""),  # type: ignore[dict-item]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not NANO.exists():
        sys.exit(f"{NANO} not found: set up the venv as the README says")
    cases = [
        ("1 GiB of SSE keep-alive comments", "sse-comments", b""),
        ("gzip bomb, 1.4 MB on the wire (1.4 GB inflated)", "gzip-bomb", gzip_bomb(1_400_000_000)),
        ("gzip bomb, 2.9 MB on the wire (3.0 GB inflated)", "gzip-bomb", gzip_bomb(3_000_000_000)),
        ("keep-alive trickle forever (NANO_CODE_CALL_TIMEOUT=5)", "trickle", b""),
    ]
    print("| reply | wire size | wall (median) | peak RSS | recording | requests | exit | what the user sees |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="hostile-home-") as home_dir:
        home = Path(home_dir)
        for label, mode, bomb in cases:
            results = [run_once(mode, bomb, home) for _ in range(args.runs)]
            wire = f"{len(bomb) / 1e6:.1f} MB" if bomb else ("1 GiB" if mode == "sse-comments" else "endless")
            print(
                f"| {label} | {wire} | {statistics.median(r['wall'] for r in results):.2f} s "
                f"| {statistics.median(r['rss_mib'] for r in results):.0f} MiB "
                f"| {statistics.median(r['recording_kib'] for r in results):.0f} KiB "
                f"| {results[0]['requests']:.0f} | {results[0]['exit']:.0f} | {results[0]['message']} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
