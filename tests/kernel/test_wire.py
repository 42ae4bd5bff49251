"""Streamed and non-streamed renderings of a reply decode to the same ModelReply.

`wire_replies` draws a reply; `completion_bodies` and `sse_streams` render it
the way real servers do (QUIRKS.md shapes, fragmenting and framing). Both
decodings must give the reply back exactly, however the stream is cut into
pieces on its way in.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nano_code.kernel import response, stream
from nano_code.kernel.events import ModelReply
from nano_code.testing.wire_strategies import byte_pieces, completion_bodies, sse_streams, wire_replies


def decode_pieces(pieces: list[bytes], content_type: str = "text/event-stream") -> object:
    decoder = stream.ResponseDecoder(200, {"Content-Type": content_type} if content_type else {})
    for piece in pieces:
        decoder.feed(piece)
    return decoder.finish()


@given(data=st.data())
def test_streamed_and_whole_replies_decode_the_same(data: st.DataObject) -> None:
    reply = data.draw(wire_replies(), label="reply")
    body = data.draw(completion_bodies(reply), label="body")
    sse = data.draw(sse_streams(reply), label="sse")
    whole = response.decode_body(body)
    streamed = stream.decode_stream([sse])
    assert whole == reply
    assert streamed == whole


@given(data=st.data())
def test_stream_cut_anywhere_decodes_the_same(data: st.DataObject) -> None:
    reply = data.draw(wire_replies(max_calls=2), label="reply")
    sse = data.draw(sse_streams(reply), label="sse")
    pieces = data.draw(byte_pieces(sse), label="pieces")
    assert decode_pieces(pieces) == reply


@given(data=st.data())
def test_content_type_is_sniffed_when_missing(data: st.DataObject) -> None:
    reply = data.draw(wire_replies(max_calls=1), label="reply")
    wire = data.draw(st.sampled_from(["sse", "body"]))
    payload = data.draw(sse_streams(reply) if wire == "sse" else completion_bodies(reply))
    pieces = data.draw(byte_pieces(payload, max_pieces=8))
    assert decode_pieces(pieces, content_type="") == reply


def test_regression_whole_reply_example() -> None:
    """A hand-checked rendering, so a broken renderer cannot make the property vacuous."""
    reply = ModelReply(content="hi", finish_reason="stop")
    sse = (
        b'data: {"choices":[{"index":0,"delta":{"content":"h"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":"i"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    assert stream.decode_stream([sse]) == reply
    assert response.decode_body(b'{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}]}') == reply
