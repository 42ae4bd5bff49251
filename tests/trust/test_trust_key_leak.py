"""Issue 7, item 6 (and 11b): the API key never reaches a recording, the terminal or a replay,
whatever JSON encoding a server sends it back in, in an error body or in a header name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import Agent
from trust_helpers import (
    RawServer,
    answer,
    key_leaks,
    recorded_stream_texts,
    session_strings,
    unescape_all,
)

from nano_code.testing.fake_server import http_error, reply, sse_events

KEY = "sk-test-0123456789abcdef"
SLASH_KEY = "sk-test/0123456789abcdef"
"""A key with a slash, so that JSON's `\\/` form of it means something."""


def every_char_escaped(secret: str) -> str:
    return "".join(f"\\u{ord(char):04x}" for char in secret)


def mixed_escapes(secret: str) -> str:
    """Every other character as an upper-case \\u escape, a slash as \\/."""
    out = []
    for index, char in enumerate(secret):
        if char == "/":
            out.append("\\/")
        elif index % 2:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)


def error_json(text: str) -> str:
    """An error body, written by hand so the escapes in `text` reach the wire as they are."""
    return (
        '{"error": {"message": "invalid api key: '
        + text
        + '", "code": 400, "type": "invalid_request_error"}}'
    )


CASES = {
    "400, every char \\u-escaped": (KEY, lambda k: http_error(400, error_json(every_char_escaped(k)))),
    "400, mixed escapes": (KEY, lambda k: http_error(400, error_json(mixed_escapes(k)))),
    "400, \\/ and \\u": (SLASH_KEY, lambda k: http_error(400, error_json(mixed_escapes(k)))),
    "400, plain": (KEY, lambda k: http_error(400, error_json(k))),
    "200 in-band, every char \\u-escaped": (
        KEY,
        lambda k: http_error(200, error_json(every_char_escaped(k))),
    ),
    "200 in-band, \\/ and \\u": (SLASH_KEY, lambda k: http_error(200, error_json(mixed_escapes(k)))),
    "200 in-band in the stream": (
        KEY,
        lambda k: http_error(
            200,
            "data: " + error_json(mixed_escapes(k)) + "\n\ndata: [DONE]\n\n",
            headers={"Content-Type": "text/event-stream"},
        ),
    ),
}


def assert_no_key_anywhere(key: str, session: Path, *texts: str) -> None:
    raw = session.read_bytes().decode("utf-8")
    assert not key_leaks(raw, key), f"the key is in the recording: {key_leaks(raw, key)}"
    for text in session_strings(session):
        assert key not in unescape_all(text), f"the key is in a recorded string: {text[:300]!r}"
    for text in recorded_stream_texts(session):
        assert key not in unescape_all(text), f"a recorded stream reassembles the key: {text[:300]!r}"
    for text in texts:
        assert not key_leaks(text, key), f"the key was shown: {key_leaks(text, key)} in {text[-1000:]!r}"


@pytest.mark.parametrize("case", list(CASES))
def test_6_key_sent_back_escaped_is_scrubbed_everywhere(agent: Agent, tmp_path: Path, case: str) -> None:
    key, step = CASES[case]
    agent.serve([step(key), step(key)])
    session = tmp_path / "leak.yaml"
    env = {"OPENROUTER_API_KEY": key}
    done = agent.run("-p", "hi", "--record", str(session), env=env, timeout=20)
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert "invalid api key" in done.stderr, done.stderr  # the error is still shown, without the key
    assert "refusing to write the session" not in done.stderr
    assert session.is_file()
    assert any(line.startswith("- ") for line in session.read_text().splitlines()), "the exchange is recorded"

    replayed = agent.run("replay", str(session), timeout=20)
    replayed_json = agent.run("replay", "--json", str(session), timeout=20)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert_no_key_anywhere(
        key,
        session,
        done.stdout,
        done.stderr,
        replayed.stdout,
        replayed.stderr,
        replayed_json.stdout,
        replayed_json.stderr,
    )


def test_11b_a_header_name_holding_the_key_is_dropped_and_the_session_goes_on(
    agent: Agent, tmp_path: Path
) -> None:
    headers = {f"X-Echo-{KEY}": "1", "X-Echo-Value": f"Bearer {KEY}", "X-Harmless": "kept"}
    session = tmp_path / "header.yaml"
    with RawServer([answer("HEADER-ANSWER", headers=headers)]) as server:
        done = agent.run(
            "-p",
            "hi",
            "--record",
            str(session),
            env={"OPENROUTER_API_KEY": KEY, "INFERENCE_BASE_URL": server.base_url},
            timeout=20,
        )
    assert done.returncode == 0, done.stderr
    assert "HEADER-ANSWER" in done.stdout
    assert "SecretLeakError" not in done.stderr and "refusing" not in done.stderr
    assert_no_key_anywhere(KEY, session, done.stdout, done.stderr)
    (interaction,) = [
        json.loads(line[2:]) for line in session.read_text().splitlines() if line.startswith("- ")
    ]
    recorded = {name.lower() for name in interaction["response"]["headers"]}
    assert "x-harmless" in recorded
    assert not [name for name in recorded if "sk-test" in name]
    replayed = agent.run("replay", str(session), timeout=20)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "HEADER-ANSWER" in replayed.stdout


def _content_events(text: str) -> str:
    """A streamed reply's text events only (12 characters each: a key is split over several)."""
    events = sse_events(reply(content=text)["reply"], 0, "fake/model")
    return b"".join(events[:-3]).decode()  # without finish, usage and [DONE]


def test_6_key_split_over_stream_events_is_scrubbed(agent: Agent, tmp_path: Path) -> None:
    """The model echoes the key (say, after reading .env); the stream splits it up."""
    agent.serve([reply(content=f"the key is {KEY} ok")])
    session = tmp_path / "split.yaml"
    done = agent.run("-p", "hi", "--record", str(session), env={"OPENROUTER_API_KEY": KEY}, timeout=20)
    assert done.returncode == 0, done.stderr
    replayed = agent.run("replay", str(session), timeout=20)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "the key is <redacted> ok" in replayed.stdout
    assert_no_key_anywhere(KEY, session, done.stdout, done.stderr, replayed.stdout, replayed.stderr)


def test_6_key_split_over_stream_events_before_an_in_band_error(agent: Agent, tmp_path: Path) -> None:
    body = _content_events(f"the key is {KEY} ok")
    body += 'data: {"error": {"message": "overloaded", "code": 400}}\n\n'
    step = http_error(200, body, headers={"Content-Type": "text/event-stream"})
    agent.serve([step, step])
    session = tmp_path / "split-error.yaml"
    done = agent.run("-p", "hi", "--record", str(session), env={"OPENROUTER_API_KEY": KEY}, timeout=20)
    assert done.returncode == 1, done.stderr
    assert "overloaded" in done.stderr
    replayed = agent.run("replay", str(session), timeout=20)
    assert_no_key_anywhere(KEY, session, done.stdout, done.stderr, replayed.stdout, replayed.stderr)
