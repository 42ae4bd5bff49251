"""view/text.py, the one place text becomes HTML: markup stays characters, hidden characters show,
long text is cut with a note and folded."""

from __future__ import annotations

import html

from hypothesis import given
from hypothesis import strategies as st

from nano_code.view.text import FOLD_CHARS, SHOWN_CHARS, block, bounded, money, seconds, text


def test_markup_becomes_characters() -> None:
    shown = text("<script>alert(1)</script><img src=x onerror=\"y()\"> & 'q'")
    assert "<" not in shown and ">" not in shown and '"' not in shown and "'" not in shown
    assert html.unescape(shown) == "<script>alert(1)</script><img src=x onerror=\"y()\"> & 'q'"


def test_hidden_characters_are_shown_as_escapes() -> None:
    shown = text("a\x00b\u202ec\u2066d\x1b[31me\u200bf\ud800g")
    assert shown == "a\\x00b\\u202ec\\u2066d\\x1b[31me\\u200bf\\ud800g"
    shown.encode("utf-8")  # a lone surrogate would not encode: it is escaped first


def test_newlines_and_tabs_stay() -> None:
    assert text("a\n\tb") == "a\n\tb"


@given(st.text())
def test_any_text_is_inert_and_writable(value: str) -> None:
    shown = text(value)
    assert not set(shown) & set("<>\"'\x00")
    shown.encode("utf-8")


def test_long_text_is_cut_to_its_head_and_tail_with_a_note() -> None:
    value = "".join(f"{n}\n" for n in range(100_000))
    cut = bounded(value)
    assert len(cut) < SHOWN_CHARS + 200
    assert cut.startswith("0\n1\n") and cut.endswith("99999\n")
    assert f"characters not shown, of {len(value):,}" in cut
    assert bounded("short") == "short"


def test_long_blocks_fold_short_ones_do_not() -> None:
    assert block("one line").startswith("<pre>")
    folded = block("x" * (FOLD_CHARS + 1), "output", label="output")
    assert folded.startswith('<details class="fold"><summary>output ')
    assert "1 lines" in folded and '<pre class="output">' in folded
    assert block("\n".join("abc" for _ in range(40))).startswith("<details")


def test_amounts() -> None:
    assert money(0.0272) == "$0.0272" and money(None) == "" and money(0.0) == "$0"
    assert seconds(850) == "850 ms" and seconds(3200) == "3.2 s" and seconds(245_000) == "4 min 05 s"
