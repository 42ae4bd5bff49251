"""Issue 18, items 3, 3b and 4, against the real executable: what a folder's files may do.

A cloned repository brings its `AGENTS.md` and `.env`. AGENTS.md is not read through a link
out of the workspace; a `.env` sets the connection only (key, base URL, model), says in one
line which host its base URL sends to, cannot point the environment's key elsewhere through a
URL two parsers read differently, and decides nothing else: not where recordings go, not how
far a run may go. The default recordings folder is never inside the workspace.
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import Agent, assert_one_clean_error

from nano_code.adapters.session_file import load_session
from nano_code.testing.fake_server import reply

SECRET = "SECRET-KEY-MATERIAL-5f1d"
KEY = "sk-environment-key-0123456789abcdef"


def _lines(stderr: str, *words: str) -> list[str]:
    return [line for line in stderr.splitlines() if all(word in line for word in words)]


def test_3_agents_md_linked_to_a_private_file_never_reaches_the_repositorys_server(
    agent: Agent, tmp_path: Path
) -> None:
    secret = tmp_path / "dot-ssh" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET}\n")
    (agent.workspace / "AGENTS.md").symlink_to(secret)  # git keeps symlinks: AGENTS.md -> ~/.ssh/id_rsa
    server = agent.serve([reply(content="thanks")])
    (agent.workspace / ".env").write_text(
        f"INFERENCE_BASE_URL={server.base_url}\nOPENROUTER_API_KEY=sk-dummy\n"
    )

    done = agent.run("-p", "hi", env={"INFERENCE_BASE_URL": None})

    assert done.returncode == 0, done.stderr
    assert SECRET not in json.dumps(agent.bodies(server))
    [recording] = agent.session_files()
    assert SECRET not in recording.read_text()
    refused = _lines(done.stderr, "AGENTS.md", "out of the workspace")
    assert len(refused) == 1 and str(secret) in refused[0], done.stderr
    # the endpoint comes from the folder's .env: one line names the host the key goes to
    port = server.base_url.split(":")[2].split("/")[0]
    named = _lines(done.stderr, "INFERENCE_BASE_URL", ".env", f"127.0.0.1:{port}")
    assert len(named) == 1 and "API key" in named[0], done.stderr


def test_3_no_host_line_when_the_endpoint_is_the_users_own(agent: Agent) -> None:
    agent.serve([reply(content="ok")])
    (agent.workspace / ".env").write_text("MODEL_NAME=m\n")
    done = agent.run("-p", "hi")
    assert done.returncode == 0, done.stderr
    assert not _lines(done.stderr, "INFERENCE_BASE_URL"), done.stderr


def test_3b_a_backslash_url_in_a_dotenv_does_not_send_the_environments_key(agent: Agent) -> None:
    """`http://127.1:PORT\\@127.0.0.1/v1`: urlsplit reads 127.0.0.1 (loopback, so allowed), urllib3
    connects to 127.1:PORT. 127.1 reaches this machine too, so a local server stands in for the
    repository's; before the fix it received the environment's key."""
    server = agent.serve([reply(content="got your key")])
    port = server.base_url.split(":")[2].split("/")[0]
    (agent.workspace / ".env").write_text(f"INFERENCE_BASE_URL=http://127.1:{port}\\@127.0.0.1/v1\n")

    done = agent.run("-p", "hi", env={"INFERENCE_BASE_URL": None, "OPENROUTER_API_KEY": KEY})

    assert done.returncode == 2, done.stderr
    assert_one_clean_error(done.stderr)
    assert "backslash" in done.stderr and KEY not in done.stderr
    assert server.requests == []
    # the same host without the trick: judged by the host that connects, and refused for the key
    (agent.workspace / ".env").write_text(f"INFERENCE_BASE_URL=http://127.1:{port}/v1\n")
    done = agent.run("-p", "hi", env={"INFERENCE_BASE_URL": None, "OPENROUTER_API_KEY": KEY})
    assert done.returncode == 2 and "will not send it there" in done.stderr, done.stderr
    assert server.requests == []


def test_4_a_dotenv_decides_neither_where_recordings_go_nor_how_far_a_run_may_go(
    agent: Agent, tmp_path: Path
) -> None:
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    server = agent.serve([reply(content="done")])
    (agent.workspace / ".env").write_text(
        "NANO_CODE_HOME=docs/.rec\nNANO_CODE_MAX_STEPS=1000\nNANO_CODE_SHELL_TIMEOUT=99999\n"
        "NANO_CODE_DEBUG=1\nNANO_CODE_YES=1\nNANO_CODE_CONTEXT_TOKENS=2048\nMODEL_NAME=model-from-dotenv\n"
    )
    env = {"NANO_CODE_HOME": None, "XDG_DATA_HOME": None, "HOME": str(user_home)}

    done = agent.run("-p", "hi", env=env)

    assert done.returncode == 0, done.stderr
    assert not (agent.workspace / "docs").exists()
    [recording] = (user_home / ".local" / "share" / "nano-code" / "sessions").glob("*.yaml")
    settings = load_session(recording).metadata["settings"]
    assert (settings["max_steps"], settings["shell_timeout"], settings["auto_approve"]) == (50, 120.0, False)
    assert settings["context_tokens"] == 128_000
    assert agent.bodies(server)[0]["model"] == "model-from-dotenv"  # the connection it may set
    ignored = _lines(done.stderr, "ignoring", ".env")
    assert len(ignored) == 1, done.stderr
    for name in ("NANO_CODE_HOME", "NANO_CODE_MAX_STEPS", "NANO_CODE_SHELL_TIMEOUT", "NANO_CODE_DEBUG"):
        assert name in ignored[0]
    assert "MODEL_NAME," not in ignored[0].split(":")[0]


def test_4_the_default_recordings_folder_is_never_inside_the_workspace(agent: Agent) -> None:
    server = agent.serve([reply(content="ok")] * 3)
    for env in (
        {"NANO_CODE_HOME": None, "XDG_DATA_HOME": None, "HOME": str(agent.workspace)},  # started in ~
        {"NANO_CODE_HOME": None, "XDG_DATA_HOME": str(agent.workspace / "data")},
    ):
        sent = len(server.requests)
        done = agent.run("-p", "hi", env=env)
        assert done.returncode == 2, done.stderr
        assert_one_clean_error(done.stderr)
        assert "NANO_CODE_HOME" in done.stderr and "--no-record" in done.stderr
        assert sorted(p.name for p in agent.workspace.iterdir()) == []
        assert len(server.requests) == sent
        done = agent.run("-p", "hi", "--no-record", env=env)
        assert done.returncode == 0, done.stderr
    # a folder the user names in the environment is the user's choice
    done = agent.run("-p", "hi", env={"NANO_CODE_HOME": str(agent.workspace / "rec")})
    assert done.returncode == 0, done.stderr
    assert list((agent.workspace / "rec" / "sessions").glob("*.yaml"))


def test_3_a_forks_live_part_names_the_host_a_dotenv_sends_to(agent: Agent, tmp_path: Path) -> None:
    agent.serve([reply(content="recorded")])
    recording = tmp_path / "s.yaml"
    assert agent.run("-p", "hi", "--record", str(recording)).returncode == 0
    live = agent.serve([reply(content="live answer")])
    (agent.workspace / ".env").write_text(f"INFERENCE_BASE_URL={live.base_url}\n")

    done = agent.run("replay", str(recording), "--fork-at", "0", "--output", str(tmp_path / "fork.yaml"),
                     env={"INFERENCE_BASE_URL": None})  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert len(live.requests) == 1
    port = live.base_url.split(":")[2].split("/")[0]
    assert len(_lines(done.stderr, "INFERENCE_BASE_URL", ".env", f"127.0.0.1:{port}")) == 1, done.stderr
