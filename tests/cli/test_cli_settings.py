"""Settings as the executable sees them (.env < environment < flags), plus --version and --help."""

from __future__ import annotations

import sys

from cli_helpers import Agent

from nano_code import __version__
from nano_code.testing.fake_server import reply


def test_dotenv_then_environment_then_flag_decide_the_model(agent: Agent) -> None:
    server = agent.serve([reply(content="ok")] * 3)
    (agent.workspace / ".env").write_text("MODEL_NAME=model-from-dotenv\n")

    runs = [
        agent.run("-p", "hi", "--model", "model-from-flag", env={"MODEL_NAME": "model-from-env"}),
        agent.run("-p", "hi", env={"MODEL_NAME": "model-from-env"}),
        agent.run("-p", "hi"),
    ]

    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr for r in runs]
    assert [body["model"] for body in agent.bodies(server)] == [
        "model-from-flag",
        "model-from-env",
        "model-from-dotenv",
    ]


def test_base_url_from_dotenv_is_used(agent: Agent) -> None:
    server = agent.serve([reply(content="reached through .env")])
    (agent.workspace / ".env").write_text(f"INFERENCE_BASE_URL={server.base_url}\n")

    result = agent.run("-p", "hi", env={"INFERENCE_BASE_URL": None})

    assert result.returncode == 0, result.stderr
    assert "reached through .env" in result.stdout
    assert server.requests[0]["path"] == "/v1/chat/completions"


def test_a_bad_setting_is_a_one_line_usage_error(agent: Agent) -> None:
    server = agent.serve([reply(content="never sent")])
    result = agent.run("-p", "hi", env={"NANO_CODE_MAX_STEPS": "abc"})

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "NANO_CODE_MAX_STEPS" in lines[0]
    assert "abc" in lines[0]
    assert server.requests == []


def test_version(agent: Agent) -> None:
    result = agent.run("--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"nano-code {__version__}"


def test_help_shows_usage_and_examples(agent: Agent) -> None:
    result = agent.run("--help")

    assert result.returncode == 0
    assert result.stdout.startswith("usage: nano-code")
    assert "examples:" in result.stdout
    assert 'nano-code -p "' in result.stdout
    for setting in ("OPENROUTER_API_KEY", "INFERENCE_BASE_URL", "MODEL_NAME"):
        assert setting in result.stdout
    assert result.stderr == ""


def test_python_dash_m_runs_the_same_cli(agent: Agent) -> None:
    result = agent.run(command=[sys.executable, "-m", "nano_code", "--help"])

    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert "examples:" in result.stdout


def test_an_unknown_flag_is_a_usage_error(agent: Agent) -> None:
    result = agent.run("--no-such-flag")

    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr
