"""A session's settings travel as one typed, frozen record; overrides are checked, not dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from replay_helpers import TASK, record_inproc

from nano_code.adapters.config import Settings
from nano_code.adapters.session_file import load_session
from nano_code.kernel.request import build_request
from nano_code.kernel.types import PromptCache, Server, SystemMessage
from nano_code.session.settings import (
    DEFAULT_TOOL_OUTPUT_CHARS,
    RecordedSettings,
    SettingsError,
    kernel_config,
    recorded_settings,
)
from nano_code.testing import replay
from nano_code.testing.fake_server import FakeServer, reply

settings_values = st.builds(
    RecordedSettings,
    model=st.text(max_size=20),
    base_url=st.text(max_size=30),
    max_steps=st.integers(1, 1000),
    stream=st.booleans(),
    auto_approve=st.booleans(),
    shell_timeout=st.floats(0.1, 1e4),
    workspace=st.text(max_size=30),
    max_tool_output_chars=st.integers(200, 10**6),
    prompt_cache=st.sampled_from(["auto", "on", "off"]),
    prompt_cache_key=st.none() | st.text(max_size=40),
)


@given(settings_values)
def test_settings_round_trip_through_json(settings: RecordedSettings) -> None:
    assert RecordedSettings.from_json(settings.to_json()) == settings


def test_wrong_types_and_missing_settings_are_errors() -> None:
    good = RecordedSettings(
        model="m",
        base_url="u",
        max_steps=3,
        stream=True,
        auto_approve=False,
        shell_timeout=5.0,
        workspace="/w",
    ).to_json()
    with pytest.raises(SettingsError):
        RecordedSettings.from_json({**good, "max_steps": "3"})
    with pytest.raises(SettingsError):
        RecordedSettings.from_json({k: v for k, v in good.items() if k != "model"})
    with pytest.raises(SettingsError):
        RecordedSettings.from_json(None)
    old = {
        k: v for k, v in good.items() if k != "max_tool_output_chars"
    }  # a file from before it was recorded
    assert RecordedSettings.from_json(old).max_tool_output_chars == DEFAULT_TOOL_OUTPUT_CHARS
    assert RecordedSettings.from_json({**good, "from_the_future": 1}).model == "m"


@pytest.fixture
def long_output(tmp_path: Path, workspace: Path) -> Path:
    session = tmp_path / "s.yaml"
    script = [reply(tool_calls=[("shell", {"command": "printf 'x%.0s' $(seq 1000)"})]), reply(content="ok")]
    with FakeServer(script) as server:
        record_inproc(session, workspace, server.base_url, [TASK], stream=False)
    return session


def test_the_tool_output_cap_is_recorded_and_an_override_of_it_is_honoured(long_output: Path) -> None:
    assert (
        load_session(long_output).metadata["settings"]["max_tool_output_chars"] == DEFAULT_TOOL_OUTPUT_CHARS
    )
    assert replay(long_output).status == "identical"
    report = replay(long_output, config_overrides={"max_tool_output_chars": 300})
    assert report.status == "diverged" and report.divergence is not None
    assert any(d.path.startswith("$.messages[") for d in report.divergence.differences)


def test_an_unknown_override_is_an_error_not_ignored(long_output: Path) -> None:
    report = replay(long_output, config_overrides={"max_tool_output": 300})
    assert report.status == "error"
    assert (
        report.error is not None
        and "unknown setting" in report.error
        and "max_tool_output_chars" in report.error
    )


def test_prompt_cache_settings_old_files_new_files_and_openais_key(tmp_path: Path) -> None:
    """Files from before markers replay without them; a new session records its choice, and one
    on OpenAI's own server a key of its own, so its requests land on one cache."""
    old = {"model": "anthropic/claude-sonnet-4.5", "base_url": "https://openrouter.ai/api/v1", "max_steps": 5, "stream": True, "auto_approve": False, "workspace": "/w"}  # fmt: skip
    config = kernel_config(old, None)
    assert config.prompt_cache is PromptCache.OFF and config.server is Server.OPENROUTER
    assert all(
        isinstance(m["content"], str) for m in build_request(config, (SystemMessage("s"),))["messages"]
    )

    here = Settings(base_url="https://api.openai.com/v1", model="gpt-5.6", home=tmp_path)
    first, second = (recorded_settings(here, tmp_path, stream=True) for _ in range(2))
    assert (
        first.prompt_cache == "auto"
        and first.prompt_cache_key
        and first.prompt_cache_key != second.prompt_cache_key
    )
    config = kernel_config(first, None)
    assert config.server is Server.OPENAI
    assert build_request(config, (SystemMessage("s"),))["prompt_cache_key"] == first.prompt_cache_key
    elsewhere = recorded_settings(
        Settings(base_url="http://127.0.0.1:9/v1", home=tmp_path), tmp_path, stream=True
    )
    assert elsewhere.prompt_cache_key is None and kernel_config(elsewhere, None).server is Server.OTHER
    assert kernel_config({**old, "base_url": "not a url at all ::"}, None).server is Server.OTHER
