"""The API key never reaches a session file: not in headers, not in bodies, not in
the journal -- even when the server echoes it and the model passes it to a tool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from replay_helpers import record_inproc

from nano_code.adapters.journal import EventEntry
from nano_code.adapters.provenance import provenance
from nano_code.adapters.recorder import Recorder
from nano_code.adapters.secrets import REDACTED, Redactor, SecretLeakError
from nano_code.adapters.session_file import load_session
from nano_code.adapters.session_writer import SessionWriter
from nano_code.kernel.events import ModelReply, UserInput
from nano_code.session.recording import response_event
from nano_code.session.replay import replay_session
from nano_code.session.settings import kernel_config
from nano_code.testing.fake_server import FakeServer, reply

HEX = "0123456789abcdef"
KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# Realistic keys: a provider prefix, then random-looking characters (a key of
# eight zeros would also match inside ordinary numbers such as timestamps).
keys = st.one_of(
    st.text(HEX, min_size=16, max_size=64).map(lambda h: "sk-or-v1-" + h),
    st.text(KEY_CHARS, min_size=5, max_size=60).map(lambda t: "sk-proj-" + t),
    st.text(KEY_CHARS, min_size=8, max_size=40).map(lambda t: "gsk_" + t),
).filter(lambda k: len(set(k)) >= 8)


def _leaking_script(key: str) -> list[dict[str, object]]:
    return [
        reply(
            content=f'I found your key: {key} (and JSON-ish "{key}")',
            tool_calls=[("shell", {"command": f"echo {key}; printf '%s' '{key}' >&2"})],
        ),
        reply(content=f"The command printed {key}. Done."),
    ]


def _assert_key_absent(text: str, key: str) -> None:
    for form in {key, json.dumps(key)[1:-1], json.dumps(json.dumps(key))[1:-1]}:
        assert form not in text


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=keys, stream=st.booleans())
def test_generated_keys_never_reach_the_file(
    tmp_path_factory: pytest.TempPathFactory, key: str, stream: bool
) -> None:
    root = tmp_path_factory.mktemp("secret")
    workspace = root / "ws"
    workspace.mkdir()
    session = root / "s.yaml"
    with FakeServer(_leaking_script(key)) as server:
        record_inproc(session, workspace, server.base_url, ["run the command"], stream=stream, api_key=key)
    # The key really was used, and the tool really printed it.
    assert all(r["headers"].get("Authorization") == f"Bearer {key}" for r in server.requests)
    assert key in json.dumps(server.requests[1]["body"])

    text = session.read_text(encoding="utf-8")
    _assert_key_absent(text, key)
    assert REDACTED in text
    loaded = load_session(session)
    for interaction in loaded.interactions:
        headers = {name.lower() for name in interaction["request"]["headers"]}
        assert "authorization" not in headers
        # What replay would hand to the kernel does not contain the key either
        # (streamed replies arrive in pieces, so look at the decoded reply too).
        event = response_event(interaction)
        if isinstance(event, ModelReply):
            _assert_key_absent(json.dumps([event.content, [c.arguments for c in event.tool_calls]]), key)

    report = replay_session(session)
    assert report.status == "identical", report.divergence.render() if report.divergence else report.error


def test_redactor_check_refuses_every_form_of_the_key() -> None:
    key = 'sk-or-v1-"quoted"\\slash'
    redactor = Redactor(key)
    for line in (key, json.dumps(key), json.dumps({"k": key}), f"prefix {json.dumps(key)[1:-1]} suffix"):
        with pytest.raises(SecretLeakError):
            redactor.check(line)
    redactor.check("nothing to see here")
    assert redactor.scrub(f"a {key} b") == f"a {REDACTED} b"
    assert redactor.scrub_value({key: [key, 1, None]}) == {REDACTED: [REDACTED, 1, None]}
    # A key too short to scrub safely is not scrubbed (it would hit ordinary text).
    assert Redactor("abc").scrub("abc") == "abc"


def test_session_writer_refuses_a_line_with_the_key(tmp_path: Path) -> None:
    key = "sk-or-v1-0123456789abcdef"
    redactor = Redactor(key)
    path = tmp_path / "s.yaml"
    settings_ = {
        "model": "m",
        "base_url": "http://127.0.0.1:1/v1",
        "max_steps": 5,
        "stream": False,
        "auto_approve": True,
        "workspace": str(tmp_path),
    }
    config = kernel_config(settings_, None)
    metadata = provenance(config, settings_, tmp_path, None, origin="test")
    writer = SessionWriter(path, metadata, redactor.check)
    writer.journal({"event": {"type": "UserInput", "text": "fine"}})
    size = path.stat().st_size
    with pytest.raises(SecretLeakError):
        writer.journal({"event": {"type": "UserInput", "text": f"my key is {key}"}})
    with pytest.raises(SecretLeakError):
        writer.interaction({"request": {"headers": {"Authorization": [f"Bearer {key}"]}}})
    assert path.stat().st_size == size  # nothing of the refused lines was written
    writer.close()
    assert key not in path.read_text()

    # The header too: a key that leaked into the settings never reaches the disk.
    leaky = dict(metadata, settings={**settings_, "api_key": key})
    with pytest.raises(SecretLeakError):
        SessionWriter(tmp_path / "other.yaml", leaky, redactor.check)
    assert not (tmp_path / "other.yaml").exists()

    # The recorder scrubs journal records before the writer checks them.
    recorder = Recorder(SessionWriter(path, None, redactor.check), redactor)
    recorder._journal(EventEntry(UserInput(f"my key is {key}")))
    recorder.close()
    assert key not in path.read_text() and f"my key is {REDACTED}" in path.read_text()


def test_a_key_split_across_stream_events_is_still_scrubbed(tmp_path: Path, workspace: Path) -> None:
    """SSE sends text in 12-character pieces: the key is never whole in the raw body."""
    key = "sk-or-v1-" + "0123456789abcdef" * 4
    session = tmp_path / "s.yaml"
    with FakeServer(_leaking_script(key)) as server:
        record_inproc(session, workspace, server.base_url, ["run the command"], stream=True, api_key=key)
    loaded = load_session(session)
    first = loaded.interactions[0]["response"]
    assert first["headers"]["Content-Type"] == ["text/event-stream"]
    event = response_event(loaded.interactions[0])
    assert isinstance(event, ModelReply)
    assert event.content == f'I found your key: {REDACTED} (and JSON-ish "{REDACTED}")'
    assert json.loads(event.tool_calls[0].arguments or "") == {
        "command": f"echo {REDACTED}; printf '%s' '{REDACTED}' >&2"
    }
    assert event.usage is not None and event.usage.total_tokens == 120
    _assert_key_absent(session.read_text(), key)
    assert replay_session(session).status == "identical"
