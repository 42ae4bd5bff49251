"""The model client's bounds, at unit scale: bytes after decompression, time per call, its thread."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from pathlib import Path

import pytest

from nano_code.adapters.model_client import ModelClient, ResponseTooLarge, _Inflater
from nano_code.kernel.events import FailureKind, ModelFailure
from nano_code.testing.fake_server import FakeServer, reply

BODY = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "raw-deflate"])
def test_the_inflater_stops_at_its_limit(encoding: str) -> None:
    data = bytes(5_000_000)
    if encoding in ("gzip", "x-gzip"):
        packed = gzip.compress(data)
    elif encoding == "deflate":
        packed = zlib.compress(data)
    else:
        squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        packed = squeezer.compress(data) + squeezer.flush()
    inflater = _Inflater("deflate" if encoding == "raw-deflate" else encoding, limit=100_000)
    produced = 0
    with pytest.raises(ResponseTooLarge):
        for start in range(0, len(packed), 1000):
            for piece in inflater.feed(packed[start : start + 1000]):
                assert len(piece) <= 65536
                produced += len(piece)
    assert produced <= 100_000 + 65536


def test_concatenated_gzip_members_inflate_whole() -> None:
    packed = gzip.compress(b"hello ") + gzip.compress(b"world")
    assert b"".join(_Inflater("gzip", limit=1000).feed(packed)) == b"hello world"


def test_an_unknown_encoding_is_refused() -> None:
    with pytest.raises(ValueError):
        _Inflater("br", limit=10)


def test_a_silent_server_is_cut_at_the_call_deadline() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    client = ModelClient(
        f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions", None, call_timeout=0.5
    )
    try:
        started = time.monotonic()
        result = client.call(BODY)
        elapsed = time.monotonic() - started
    finally:
        client.close()
        listener.close()
        for conn in accepted:
            conn.close()
    assert isinstance(result, ModelFailure) and result.kind is FailureKind.TIMEOUT
    assert "NANO_CODE_CALL_TIMEOUT" in result.message
    assert elapsed < 3.0


def test_closing_the_client_ends_its_watchdog_thread() -> None:
    with FakeServer([reply(content="a")]) as server:
        client = ModelClient(server.base_url + "/chat/completions", None)
        client.call(BODY)
        assert any(t.name == "nano-code call deadline" for t in threading.enumerate())
        client.close()
    assert not any(t.name == "nano-code call deadline" for t in threading.enumerate())


def test_recording_through_vcrpy_still_works(tmp_path: Path) -> None:
    import vcr

    with FakeServer([reply(content="a"), reply(content="b")]) as server:
        client = ModelClient(server.base_url + "/chat/completions", None)
        try:
            with vcr.use_cassette(str(tmp_path / "c.yaml"), record_mode="all"):
                first = client.call(BODY)
                second = client.call(BODY)
        finally:
            client.close()
        assert len(server.requests) == 2
    assert not isinstance(first, ModelFailure) and first.content == "a"
    assert not isinstance(second, ModelFailure) and second.content == "b"
