"""The model client: one urllib3 connection pool, one request per kernel CallModel.

It sends the body the kernel built, feeds the response bytes to the kernel's
`ResponseDecoder` as they arrive (so streamed text shows live), and returns
the one event the response amounts to. Transport trouble (refused, DNS, TLS,
timeouts, a connection reset mid-stream) becomes a `ModelFailure` too; the
kernel decides whether to retry. This module parses nothing itself.

Recording happens here, at our adapter, in vcrpy's interaction format: vcrpy
itself would buffer a streamed response whole while recording, which kills
live streaming.

Every reply is bounded: at most `max_response_bytes` after decompression
(gzip and deflate are inflated here, in bounded pieces, so a compression
bomb costs no more than its cap; other encodings are refused), and at most
`call_timeout` seconds in all, however slowly the server trickles bytes. Past
either bound the attempt fails with one clear message and nothing of it is
recorded but the request.
"""

from __future__ import annotations

import contextlib
import json
import operator
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import urllib3
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3Timeout,
)

from nano_code import __version__
from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply
from nano_code.kernel.request import RequestBody, encode_message, request_head
from nano_code.kernel.stream import ResponseDecoder, StreamDelta
from nano_code.kernel.types import KernelConfig, Message

if TYPE_CHECKING:
    from nano_code.adapters.config import Settings

# Response headers that describe the bytes on the wire rather than the body we
# keep: the recording stores the decoded body, so replay must not decode again.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection"})


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _BodyEncoder:
    """Request bodies as bytes, each message encoded once for the whole session.

    A body is the conversation so far: at step n it repeats the n-1 messages
    already sent. Encoding every message anew each step makes a long session
    quadratic; here each message's JSON is kept, by the identity of the (frozen)
    message object, and a body is joined from the pieces, byte for byte what
    `json.dumps` of the whole body gives. Messages that left the history (a
    cleared or compacted conversation) are dropped when the cache outgrows it.
    """

    MARK = b'"messages":[]'

    def __init__(self) -> None:
        self._messages: dict[int, tuple[Message, bytes]] = {}
        self._last: tuple[tuple[Message, ...], bytes] = ((), b"")
        """The previous history and its messages joined: the next body usually extends it."""
        self._head: tuple[KernelConfig, bytes, bytes] | None = None

    def encode(self, body: Mapping[str, Any]) -> bytes:
        if not isinstance(body, RequestBody):
            return _dumps(body)
        config = body.config
        if self._head is None or self._head[0] is not config:
            before, _, after = _dumps(request_head(config)).partition(self.MARK)
            self._head = (config, before + b'"messages":[', b"]" + after)
        _, start, end = self._head
        history = body.history
        last_history, joined = self._last
        shared = len(last_history)
        if not (shared <= len(history) and all(map(operator.is_, history[:shared], last_history))):
            shared, joined = 0, b""  # not an extension of the last body (cleared, compacted)
        cache = self._messages
        if len(cache) > 2 * len(history) + 64:
            alive = {id(message) for message in history}
            self._messages = cache = {key: item for key, item in cache.items() if key in alive}
        pieces = [joined] if shared else []
        for message in history[shared:]:
            item = cache.get(id(message))
            if item is None or item[0] is not message:
                item = cache[id(message)] = (message, _dumps(encode_message(message)))
            pieces.append(item[1])
        joined = b",".join(pieces)
        self._last = (history, joined)
        return start + joined + end


_ENCODER = _BodyEncoder()


def encode_body(body: Mapping[str, Any]) -> bytes:
    """`body` as the bytes nano-code sends: compact JSON, UTF-8, keys in order."""
    return _ENCODER.encode(body)


@attrs.frozen
class Exchange:
    """One complete HTTP request and response, as vcrpy stores an interaction."""

    method: str
    uri: str
    request_headers: Mapping[str, str]
    request_body: bytes
    status: int
    reason: str
    response_headers: Mapping[str, str]
    response_body: bytes
    reply: ModelReply | ModelFailure | None = None
    """What the client decoded from the response (so a recorder never decodes it again)."""
    action: object = None
    """The kernel action the request was made for (its step and attempt are recorded)."""


ExchangeSink = Callable[[Exchange], None]

READ_SIZE = 65536
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class ResponseTooLarge(Exception):
    pass


class _Tracked:
    """Pool mix-in remembering the connection a request is using, so a watchdog can cut it."""

    in_flight: Any = None

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        self.in_flight = conn
        return conn


class _TrackedHTTPPool(_Tracked, urllib3.HTTPConnectionPool):
    pass


class _TrackedHTTPSPool(_Tracked, urllib3.HTTPSConnectionPool):
    pass


class _Deadline:
    """Cuts a call's connection when its time is up, wherever the call is waiting:
    for the status line, for headers trickled a byte at a time, or for the body.

    One watchdog thread per client, started with the first call and armed for
    each call (a thread per call would cost more than the call's bookkeeping).
    """

    def __init__(self, pool_for_url: Callable[[], Any]) -> None:
        self._pool_for_url = pool_for_url
        self._changed = threading.Condition()
        self._until: float | None = None
        self.passed = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> None:
        with self._changed:
            self.passed = False
            self._until = time.monotonic() + seconds
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="nano-code call deadline", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def disarm(self) -> None:
        with self._changed:
            self._until = None
            self._changed.notify()

    def stop(self) -> None:
        """End the watchdog thread (the client is closed)."""
        with self._changed:
            self._stopping = True
            self._until = None
            self._changed.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _watch(self) -> None:
        with self._changed:
            while not self._stopping:
                if self._until is None:
                    self._changed.wait()
                    continue
                left = self._until - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                # Cut, and again every half second until the call gives up: the
                # connection may not exist yet (a slow connect) when time runs out.
                self._until = time.monotonic() + 0.5
                self.passed = True
                self._cut()

    def _cut(self) -> None:
        conn = getattr(self._pool_for_url(), "in_flight", None)
        sock = getattr(conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Inflater:
    """Undoes a Content-Encoding piece by piece, never producing more than `limit` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.produced = 0
        self._inflater: Any = None
        self._may_be_raw_deflate = encoding == "deflate"
        """Some servers send deflate without its zlib wrapper: tried once, if the first bytes fail."""
        if encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS)
        elif encoding not in ("", "identity"):
            raise ValueError(encoding)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._inflater is None:
            yield self._count(data)
            return
        while data:
            try:
                piece = self._inflater.decompress(data, READ_SIZE)
            except zlib.error:
                if self._may_be_raw_deflate:
                    self._may_be_raw_deflate = False
                    self._inflater = zlib.decompressobj(wbits=-zlib.MAX_WBITS)
                    continue
                raise
            self._may_be_raw_deflate = False
            if piece:
                yield self._count(piece)
            data = self._inflater.unconsumed_tail
            if self._inflater.eof and self._inflater.unused_data:
                data = self._inflater.unused_data  # gzip allows several members
                self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
            elif not piece and not data:
                break

    def _count(self, piece: bytes) -> bytes:
        self.produced += len(piece)
        if self.produced > self.limit:
            raise ResponseTooLarge
        return piece


class ModelClient:
    def __init__(
        self,
        url: str,
        api_key: str | None,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        call_timeout: float = 900.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self.call_timeout = call_timeout
        self.max_response_bytes = max_response_bytes
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=1, retries=False)
        self._pool.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}
        self._deadline = _Deadline(lambda: self._pool.connection_from_url(self.url))
        self.exchange_sinks: list[ExchangeSink] = []

    @classmethod
    def for_settings(cls, settings: Settings) -> ModelClient:
        """A client for the server, key, timeouts and reply cap the settings name."""
        return cls(
            settings.chat_completions_url,
            settings.api_key,
            settings.connect_timeout,
            settings.read_timeout,
            call_timeout=settings.call_timeout,
            max_response_bytes=settings.max_response_bytes,
        )

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            "User-Agent": f"nano-code/{__version__}",
            "X-Title": "nano-code",
        }
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def call(
        self,
        body: Mapping[str, Any],
        on_delta: Callable[[StreamDelta], None] | None = None,
        payload: bytes | None = None,
        action: object = None,
    ) -> ModelReply | ModelFailure:
        """Send one request and decode its response. KeyboardInterrupt propagates.

        `payload` is `body` already encoded, when the caller has it; `action` is
        handed to the exchange sinks with the exchange and the decoded reply."""
        if payload is None:
            payload = encode_body(body)
        stream = bool(body.get("stream"))
        headers = self._headers(stream)
        deadline = self._deadline
        deadline.arm(self.call_timeout)
        try:
            return self._call(payload, headers, deadline, on_delta, action)
        finally:
            deadline.disarm()

    def _call(
        self,
        payload: bytes,
        headers: dict[str, str],
        deadline: _Deadline,
        on_delta: Callable[[StreamDelta], None] | None,
        action: object,
    ) -> ModelReply | ModelFailure:
        try:
            response = self._pool.request(
                "POST",
                self.url,
                body=payload,
                headers=headers,
                preload_content=False,
                decode_content=False,  # inflated here, bounded (see _Inflater)
                redirect=False,
                timeout=self._timeout,
            )
        except HTTPError as error:
            if deadline.passed:
                return _deadline_failure(self.call_timeout)
            return _transport_failure(error, sending=True)
        if deadline.passed:
            response.close()
            return _deadline_failure(self.call_timeout)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        try:
            inflater = _Inflater(encoding, self.max_response_bytes)
        except ValueError:
            response.close()
            return ModelFailure(
                FailureKind.BAD_RESPONSE,
                f"the server sent its reply with Content-Encoding {_short(encoding)[:40]!r}, which "
                "nano-code does not decode (it asks for none)",
                status=response.status,
            )
        decoder = ResponseDecoder(response.status, dict(response.headers))
        received = bytearray()
        complete = False
        try:
            while True:
                raw = response.read1(READ_SIZE)
                if deadline.passed:
                    return _deadline_failure(self.call_timeout)
                if not raw:
                    break
                for piece in inflater.feed(raw):
                    received += piece
                    for delta in decoder.feed(piece):
                        if on_delta is not None:
                            on_delta(delta)
            complete = True
        except ResponseTooLarge:
            return ModelFailure(
                FailureKind.BAD_RESPONSE,
                f"the server's reply grew past {self.max_response_bytes:,} bytes "
                "(NANO_CODE_MAX_RESPONSE_BYTES); nano-code stopped reading it",
                status=response.status,
            )
        except zlib.error as error:
            return ModelFailure(
                FailureKind.MALFORMED,
                f"the server's {encoding} reply could not be decompressed: {_short(error)}",
                status=response.status,
            )
        except (HTTPError, OSError) as error:
            if deadline.passed:
                return _deadline_failure(self.call_timeout)
            if not isinstance(error, HTTPError):
                raise
            return _transport_failure(error, sending=False)
        finally:
            if complete:
                response.release_conn()
            else:
                response.close()  # a half-read connection cannot be reused
        reply = decoder.finish()
        if self.exchange_sinks:
            exchange = Exchange(
                method="POST",
                uri=self.url,
                request_headers=headers,
                request_body=payload,
                status=response.status,
                reason=response.reason or "",
                response_headers={
                    k: v for k, v in response.headers.items() if k.lower() not in _WIRE_HEADERS
                },
                response_body=bytes(received),
                reply=reply,
                action=action,
            )
            for sink in self.exchange_sinks:
                sink(exchange)
        return reply

    def close(self) -> None:
        self._deadline.stop()
        self._pool.clear()


def _deadline_failure(limit: float) -> ModelFailure:
    return ModelFailure(
        FailureKind.TIMEOUT,
        f"the server's reply took longer than {limit:g} s in all (NANO_CODE_CALL_TIMEOUT); "
        "nano-code stopped waiting",
    )


def _transport_failure(error: Exception, sending: bool) -> ModelFailure:
    reason = getattr(error, "reason", None) or error
    # NewConnectionError subclasses ConnectTimeoutError in urllib3: test it first.
    if isinstance(error, NewConnectionError) or isinstance(reason, NewConnectionError):
        return ModelFailure(FailureKind.TRANSPORT, f"cannot connect to the server: {_short(reason)}")
    if isinstance(error, SSLError) or isinstance(reason, SSLError):
        return ModelFailure(FailureKind.TRANSPORT, f"TLS error: {_short(reason)}")
    if isinstance(error, (ReadTimeoutError, Urllib3Timeout)) or isinstance(reason, Urllib3Timeout):
        return ModelFailure(FailureKind.TIMEOUT, f"timed out waiting for the server ({_short(reason)})")
    if isinstance(error, ProtocolError) and not sending:
        return ModelFailure(FailureKind.TRANSPORT, f"the connection broke mid-response: {_short(reason)}")
    return ModelFailure(FailureKind.TRANSPORT, f"network error: {_short(reason)}")


def _short(error: object) -> str:
    text = str(error)
    # urllib3 prefixes messages with the connection: "HTTPConnection(host=..., port=...): Failed ..."
    for marker in (">: ", "): "):
        if marker in text:
            text = text.split(marker, 1)[1]
            break
    return " ".join(text.split())[:200]
