"""The model client: one urllib3 connection pool, one request per kernel CallModel.

It sends the body the kernel built, feeds the response bytes to the kernel's
`ResponseDecoder` as they arrive (so streamed text shows live), and returns
the one event the response amounts to. Transport trouble (refused, DNS, TLS,
timeouts, a connection reset mid-stream) becomes a `ModelFailure` too; the
kernel decides whether to retry. This module parses nothing itself.

Recording happens here, at our adapter, in vcrpy's interaction format: vcrpy
itself would buffer a streamed response whole while recording, which kills
live streaming.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

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
from nano_code.kernel.stream import ResponseDecoder, StreamDelta

# Response headers that describe the bytes on the wire rather than the body we
# keep: the recording stores the decoded body, so replay must not decode again.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection"})


def encode_body(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


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


ExchangeSink = Callable[[Exchange], None]


class ModelClient:
    def __init__(
        self,
        url: str,
        api_key: str | None,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=1, retries=False)
        self.exchange_sinks: list[ExchangeSink] = []

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
        self, body: Mapping[str, Any], on_delta: Callable[[StreamDelta], None] | None = None
    ) -> ModelReply | ModelFailure:
        """Send one request and decode its response. KeyboardInterrupt propagates."""
        payload = encode_body(body)
        stream = bool(body.get("stream"))
        headers = self._headers(stream)
        try:
            response = self._pool.request(
                "POST",
                self.url,
                body=payload,
                headers=headers,
                preload_content=False,
                redirect=False,
                timeout=self._timeout,
            )
        except HTTPError as error:
            return _transport_failure(error, sending=True)
        decoder = ResponseDecoder(response.status, dict(response.headers))
        received = bytearray()
        complete = False
        try:
            while True:
                piece = response.read1(65536)
                if not piece:
                    break
                received += piece
                for delta in decoder.feed(piece):
                    if on_delta is not None:
                        on_delta(delta)
            complete = True
        except HTTPError as error:
            return _transport_failure(error, sending=False)
        finally:
            if complete:
                response.release_conn()
            else:
                response.close()  # a half-read connection cannot be reused
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
            )
            for sink in self.exchange_sinks:
                sink(exchange)
        return decoder.finish()

    def close(self) -> None:
        self._pool.clear()


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
