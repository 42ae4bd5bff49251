"""The API key is found and hidden in every form JSON allows, at any depth of escaping."""

from __future__ import annotations

import json
import random

from hypothesis import given
from hypothesis import strategies as st

from nano_code.adapters.model_client import Exchange
from nano_code.adapters.recorder import interaction_record
from nano_code.adapters.secrets import REDACTED, Redactor, SecretLeakError

KEY_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
"""Keys are printable ASCII without spaces (the config refuses anything else)."""
keys = st.text(KEY_CHARS, min_size=6, max_size=40).filter(lambda key: not key.isdigit())


def json_encodings(key: str, seed: int) -> list[str]:
    """The key as JSON text may spell it: literal, short escapes, \\u escapes in any mix and case."""
    rng = random.Random(seed)

    def char(c: str, mode: int) -> str:
        if mode == 0:
            return json.dumps(c)[1:-1]  # literal, or \" \\ as JSON requires
        if mode == 1:
            return f"\\u{ord(c):04x}"
        if mode == 2:
            return f"\\u{ord(c):04X}"
        return "\\/" if c == "/" else json.dumps(c)[1:-1]

    return [
        json.dumps(key)[1:-1],
        json.dumps(key, ensure_ascii=True)[1:-1],
        "".join(char(c, 1) for c in key),
        "".join(char(c, 2) for c in key),
        "".join(char(c, rng.randrange(4)) for c in key),
    ]


@given(keys, st.integers(0, 2**32), st.text(max_size=30), st.text(max_size=30))
def test_every_json_spelling_of_the_key_is_scrubbed_and_the_body_stays_json(
    key: str, seed: int, before: str, after: str
) -> None:
    redactor = Redactor(key)
    for spelled in json_encodings(key, seed):
        body = '{"error": {"message": "' + json.dumps(before)[1:-1] + spelled + json.dumps(after)[1:-1] + '"}}'
        assert json.loads(body)["error"]["message"] == before + key + after  # it really is the key
        scrubbed = redactor.scrub(body)
        redactor.check(scrubbed)  # nothing left that the writer would refuse
        message = json.loads(scrubbed)["error"]["message"]  # still valid JSON
        assert key not in message and REDACTED in message
        # Nested one level deeper (a body inside a record line): still found.
        line = json.dumps({"body": body})
        try:
            redactor.check(line)
        except SecretLeakError:
            pass
        else:
            raise AssertionError("the writer's check missed the key inside a nested body")


def test_a_literal_key_is_scrubbed_from_plain_text() -> None:
    redactor = Redactor("sk-or-v1-secretvalue")
    assert redactor.scrub("key=sk-or-v1-secretvalue.") == f"key={REDACTED}."
    assert redactor.scrub("nothing here") == "nothing here"


def test_short_and_all_digit_keys_are_not_scrubbed_from_text() -> None:
    assert Redactor("abc").scrub("abcabc") == "abcabc"
    assert Redactor("1234567890").scrub("call 1234567890") == "call 1234567890"


def test_a_header_whose_name_holds_the_key_is_dropped_not_fatal() -> None:
    key = "sk-test-0123456789abcdef"
    redactor = Redactor(key)
    exchange = Exchange(
        method="POST",
        uri="http://127.0.0.1:9/v1/chat/completions",
        request_headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        request_body=b"{}",
        status=200,
        reason="OK",
        response_headers={f"x-echo-{key}": "1", "x-note": f"saw {key}", "content-type": "application/json"},
        response_body=b'{"choices": []}',
    )
    record = interaction_record(exchange, redactor, {})
    text = json.dumps(record)
    redactor.check(text)
    assert "Authorization" not in record["request"]["headers"]
    assert not any(key in name for name in record["response"]["headers"])
    assert record["response"]["headers"]["x-note"] == [f"saw {REDACTED}"]


def test_regression_a_key_ending_in_a_backslash_leaves_valid_json() -> None:
    """Shrunk by hypothesis: the pattern took one backslash of `\\\\` and broke the string."""
    key = "00000\\"
    body = '{"error": {"message": "' + json.dumps(key)[1:-1] + '"}}'
    scrubbed = Redactor(key).scrub(body)
    assert json.loads(scrubbed)["error"]["message"] == REDACTED
