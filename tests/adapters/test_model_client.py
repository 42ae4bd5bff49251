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


def test_the_request_sent_hooks_run_once_per_call_while_the_server_has_the_request() -> None:
    """The hook a recorded session starts its workspace snapshot from: it fires when the
    request is out and the client waits, so the server has it (and is thinking) by then."""
    with FakeServer([reply(content="a", delay=0.3), reply(content="b")]) as server:
        client = ModelClient(server.base_url + "/chat/completions", None)
        fired: list[tuple[int, float]] = []
        client.request_sent_hooks.append(lambda: fired.append((len(server.requests), time.monotonic())))
        try:
            started = time.monotonic()
            first = client.call(BODY)
            answered = time.monotonic()
            second = client.call(BODY)
        finally:
            client.close()
    assert not isinstance(first, ModelFailure) and not isinstance(second, ModelFailure)
    assert len(fired) == 2
    # fired while the server was still sitting on its 0.3 s delay, not after the reply
    assert started <= fired[0][1] < answered - 0.2
    # the server had read the first request by the time the hook for the second fired
    assert fired[1][0] >= 1


def test_a_request_that_cannot_be_sent_does_not_call_the_request_sent_hooks() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    client = ModelClient(f"http://127.0.0.1:{port}/v1/chat/completions", None)
    fired: list[bool] = []
    client.request_sent_hooks.append(lambda: fired.append(True))
    try:
        result = client.call(BODY)
    finally:
        client.close()
    assert isinstance(result, ModelFailure)
    assert fired == []


def test_recording_through_vcrpy_still_works_with_the_request_sent_hook(tmp_path: Path) -> None:
    """vcrpy copies attributes set on its connection onto the real one: the hook's wrapper
    must not end up calling vcrpy's getresponse from inside itself."""
    import vcr

    with FakeServer([reply(content="a"), reply(content="b")]) as server:
        client = ModelClient(server.base_url + "/chat/completions", None)
        fired: list[bool] = []
        client.request_sent_hooks.append(lambda: fired.append(True))
        try:
            with vcr.use_cassette(str(tmp_path / "c.yaml"), record_mode="all"):
                first = client.call(BODY)
                second = client.call(BODY)
        finally:
            client.close()
        assert len(server.requests) == 2
    assert not isinstance(first, ModelFailure) and first.content == "a"
    assert not isinstance(second, ModelFailure) and second.content == "b"
    assert fired == [True, True]


@pytest.mark.parametrize("error", [OSError("disk full"), RuntimeError("can't start new thread")])
def test_a_hook_that_raises_is_not_a_network_error_and_the_request_is_not_sent_twice(
    error: Exception,
) -> None:
    with FakeServer([reply(content="a"), reply(content="b")]) as server:
        client = ModelClient(server.base_url + "/chat/completions", None)
        exchanges: list[object] = []
        later: list[bool] = []

        def broken() -> None:
            raise error

        client.request_sent_hooks.extend([broken, lambda: later.append(True)])
        client.exchange_sinks.append(exchanges.append)
        try:
            with pytest.raises(type(error)) as raised:
                client.call(BODY)
            assert raised.value is error
            client.request_sent_hooks.remove(broken)
            assert not isinstance(client.call(BODY), ModelFailure)  # nothing left over
        finally:
            client.close()
        assert len(server.requests) == 2
    assert later == [True, True]  # the hook after the broken one still ran
    assert len(exchanges) == 2  # the first exchange was recorded before the error surfaced


def test_ctrl_c_during_held_work_arrives_when_it_ends() -> None:
    """The request-sent hooks import modules; a KeyboardInterrupt in the middle of an import
    can leave the import lock held (a later import in the snapshot thread then hung the
    exit). Ctrl-C meanwhile is held, then delivered to the handler that was there."""
    import signal

    from nano_code.adapters.model_client import interrupts_held

    finished = []
    with pytest.raises(KeyboardInterrupt), interrupts_held():
        signal.raise_signal(signal.SIGINT)
        finished.append("the held work ran to its end")
    assert finished == ["the held work ran to its end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_the_request_sent_hooks_interrupts_the_call_once_they_are_done() -> None:
    import signal

    with FakeServer([reply(content="a", delay=0.5)]) as server:
        client = ModelClient(server.base_url + "/chat/completions", None)
        ran: list[str] = []

        def interrupted_midway() -> None:
            signal.raise_signal(signal.SIGINT)
            ran.append("first, to its end")

        client.request_sent_hooks.extend([interrupted_midway, lambda: ran.append("second")])
        try:
            with pytest.raises(KeyboardInterrupt):
                client.call(BODY)
        finally:
            client.close()
    assert ran == ["first, to its end", "second"]
