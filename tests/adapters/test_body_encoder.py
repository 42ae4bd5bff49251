"""Request bodies built from per-message pieces are byte for byte `json.dumps` of the body."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from nano_code.adapters.body_encoder import _BodyEncoder, encode_body
from nano_code.kernel.request import RequestBody, build_request
from nano_code.kernel.types import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from nano_code.testing.strategies import kernel_configs

texts = st.text(max_size=40)  # any code point, surrogates included
ids = st.text(min_size=1, max_size=12)
calls = st.builds(ToolCall, id=ids, name=st.sampled_from(["shell", "read_file"]), arguments=texts)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(UserMessage, content=texts),
    st.builds(ToolMessage, tool_call_id=ids, content=texts),
    st.builds(
        AssistantMessage,
        content=st.none() | texts,
        tool_calls=st.lists(calls, max_size=3).map(tuple),
        reasoning=st.none() | texts,
    ),
)


def plain(config: object, history: tuple[Message, ...]) -> bytes:
    body = build_request(config, history)  # type: ignore[arg-type]
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


@given(kernel_configs(), texts, st.lists(messages, max_size=12), st.integers(0, 12))
def test_growing_history_encodes_exactly_like_json_dumps(
    config: object, system: str, more: list[Message], cut: int
) -> None:
    encoder = _BodyEncoder()
    history: tuple[Message, ...] = (SystemMessage(system),)
    for message in more[:cut]:  # each step extends the last, as a session does
        history = (*history, message)
        try:
            expected = plain(config, history)
        except UnicodeEncodeError:
            return  # the kernel cleans surrogates before they reach a history
        assert encoder.encode(RequestBody(config, history)) == expected  # type: ignore[arg-type]
    # A different, shorter history (a cleared conversation) reuses nothing wrongly.
    fresh = (SystemMessage(system), *more[cut:])
    try:
        expected = plain(config, fresh)
    except UnicodeEncodeError:
        return
    assert encoder.encode(RequestBody(config, fresh)) == expected  # type: ignore[arg-type]


def test_a_plain_dict_body_is_encoded_as_is() -> None:
    assert encode_body({"model": "m", "messages": []}) == b'{"model":"m","messages":[]}'


def test_the_cache_drops_messages_that_left_the_history() -> None:
    from nano_code.kernel.types import KernelConfig

    config = KernelConfig(model="m", system_prompt="s")
    encoder = _BodyEncoder()
    for round_ in range(5):
        history: tuple[Message, ...] = (SystemMessage("s"),)
        for n in range(100):
            history = (*history, UserMessage(f"{round_}-{n}"))
        encoder.encode(RequestBody(config, history))
    assert len(encoder._messages) <= 2 * 101 + 64 + 101
