"""The model client: one urllib3 pool, one request per `CallModel`, its reply decoded live.

Transport trouble is a `ModelFailure` too (the kernel decides on retries). Exchanges go
to sinks (the recorder; vcrpy would buffer a stream whole). Every reply is bounded:
`max_response_bytes` after decompression and `call_timeout` seconds in all.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, ReadTimeoutError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from nano_code import __version__
from nano_code.adapters.body_encoder import encode_body
from nano_code.adapters.threads import background_thread
from nano_code.kernel.events import FailureKind, ModelFailure, ModelReply
from nano_code.kernel.stream import ResponseDecoder, StreamDelta

if TYPE_CHECKING:
    from nano_code.adapters.config import Settings

# Headers of the wire bytes, not of the decoded body the recording keeps (replay must not decode again).
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection"})


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
    reply: ModelReply | ModelFailure | None = None  # decoded once, here
    action: object = None  # the kernel action the request was made for


ExchangeSink = Callable[[Exchange], None]
OnDelta = Callable[[StreamDelta], None] | None

READ_SIZE = 65536
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class ResponseTooLarge(Exception):
    """The reply grew past its cap."""


class _Tracked:
    """Pool mix-in remembering the connection a request is using, so a watchdog can cut it."""

    in_flight: Any = None

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        self.in_flight = conn
        return conn


class _TrackedHTTPPool(_Tracked, urllib3.HTTPConnectionPool): ...


class _TrackedHTTPSPool(_Tracked, urllib3.HTTPSConnectionPool): ...


class _Deadline:
    """Cuts a call's connection when its time is up, wherever the call waits (status
    line, trickled headers, body): one watchdog thread per client, armed per call."""

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
                self._thread = background_thread(self._watch, "nano-code call deadline")
                self._thread.start()
            self._changed.notify()

    def disarm(self) -> None:
        with self._changed:
            self._until = None
            self._changed.notify()

    def stop(self) -> None:
        with self._changed:  # reentrant: disarm takes it again
            self._stopping = True
            self.disarm()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _watch(self) -> None:
        with self._changed:
            while not self._stopping:
                left = None if self._until is None else self._until - time.monotonic()
                if left is None or left > 0:
                    self._changed.wait(left)
                    continue
                # Cut again every half second: a slow connect may not have its socket yet.
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
        self._may_be_raw_deflate = encoding == "deflate"  # some servers omit the zlib wrapper
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
        on_delta: OnDelta = None,
        payload: bytes | None = None,
        action: object = None,
    ) -> ModelReply | ModelFailure:
        """Send one request and decode its response (`payload`: `body` already encoded;
        `action` goes to the exchange sinks). KeyboardInterrupt propagates."""
        self._deadline.arm(self.call_timeout)
        try:
            return self._call(
                payload or encode_body(body), self._headers(bool(body.get("stream"))), on_delta, action
            )
        finally:
            self._deadline.disarm()

    def _call(
        self, payload: bytes, headers: dict[str, str], on_delta: OnDelta, action: object
    ) -> ModelReply | ModelFailure:
        deadline = self._deadline
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
            kept = {k: v for k, v in response.headers.items() if k.lower() not in _WIRE_HEADERS}
            reason, body = response.reason or "", bytes(received)
            exchange = Exchange(
                "POST", self.url, headers, payload, response.status, reason, kept, body, reply, action
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
