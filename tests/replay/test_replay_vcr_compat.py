"""A session file is a plain vcrpy cassette, and it carries its provenance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import urllib3
import vcr
import yaml
from git_helpers import git
from replay_helpers import TASK, cli_env, record_cli, record_inproc, request_body, run_cli, three_step_script

import nano_code
from nano_code.adapters.provenance import workspace_fingerprint
from nano_code.adapters.session_file import VcrSerializer, load_session
from nano_code.session.replay import replay_session
from nano_code.testing.fake_server import FakeServer, reply

ODD_TASK = 'héllo ✓ tab\t line\u2028sep nel\x85 bom\ufeff emoji 😀 "quotes" \\ back'


def test_plain_vcrpy_serves_a_recorded_interaction(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "s.yaml"
    with FakeServer(three_step_script()) as server:
        record_inproc(session, workspace, server.base_url, [TASK], stream=False)
    first = load_session(session).interactions[0]

    with vcr.use_cassette(str(session), record_mode="none") as cassette:
        assert len(cassette) == 3
        pool = urllib3.PoolManager()
        response = pool.request("POST", first["request"]["uri"], body=first["request"]["body"].encode())
        assert response.status == 200
        assert response.data.decode() == first["response"]["body"]["string"]
        assert json.loads(response.data)["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
            "write_file"
        )
        assert cassette.play_count == 1


def test_yaml_and_the_line_reader_agree(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "s.yaml"
    script = [reply(content=ODD_TASK[::-1])]
    with FakeServer(script) as server:
        record_inproc(session, workspace, server.base_url, [ODD_TASK], stream=True)
    text = session.read_text(encoding="utf-8")
    assert "héllo ✓" in text  # non-ASCII stays readable UTF-8

    plain = yaml.safe_load(text)
    assert plain["version"] == 1
    assert plain["metadata"]["format"] == "nano-code-session"
    assert len(plain["interactions"]) == 1
    assert VcrSerializer.deserialize(text) == plain

    loaded = load_session(session)
    assert loaded.journal[0]["event"]["text"] == ODD_TASK
    assert request_body(loaded.interactions[0])["messages"][1]["content"] == ODD_TASK
    assert replay_session(session).status == "identical"


def test_provenance_in_the_metadata(tmp_path: Path, workspace: Path) -> None:
    key = "sk-or-v1-feedfacecafebeef0123456789"
    git(workspace, "init", "-q")
    (workspace / "README").write_text("a project\n")
    git(workspace, "add", "README")
    git(workspace, "commit", "-q", "-m", "first")
    head = git(workspace, "rev-parse", "HEAD")
    (workspace / "AGENTS.md").write_text("Always say please.\n")  # untracked: dirty

    session = tmp_path / "s.yaml"
    with FakeServer(three_step_script()) as server:
        env = cli_env(server.base_url, tmp_path / "home", OPENROUTER_API_KEY=key)
        args = ["--record", str(session), "--yes", "--model", "test/provenance", "--no-stream", "-p", TASK]
        done = run_cli(args, workspace, env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.requests[0]["headers"]["Authorization"] == f"Bearer {key}"
        port = server.port

    text = session.read_text()
    assert key not in text
    loaded = load_session(session)
    meta = loaded.metadata
    assert meta["nano_code_version"] == nano_code.__version__
    assert meta["model"] == "test/provenance"
    assert meta["server_host"] == "127.0.0.1"
    assert meta["settings"]["base_url"] == f"http://127.0.0.1:{port}/v1"
    assert meta["generation"] == {
        "stream": False,
        "temperature": None,
        "seed": None,
        "max_completion_tokens": None,
    }
    assert meta["origin"] == "live"
    assert meta["agents_md"] == "Always say please.\n"
    assert meta["parent"] is None

    bodies = [request_body(i) for i in loaded.interactions]
    for body in bodies:
        system = body["messages"][0]
        assert system["role"] == "system"
        assert meta["system_prompt_sha256"] == hashlib.sha256(system["content"].encode()).hexdigest()
        assert "Always say please." in system["content"]
        assert body["model"] == "test/provenance"
        sent = {t["function"]["name"]: t["function"]["parameters"] for t in body["tools"]}
        assert sent == {s["name"]: s["parameters"] for s in meta["tool_schemas"]}

    fingerprint = meta["workspace"]["fingerprint"]
    assert meta["workspace"]["path"] == str(workspace.resolve())
    assert fingerprint["kind"] == "git"
    assert fingerprint["head"] == head
    assert fingerprint["dirty"] is True
    assert fingerprint["status_sha256"]

    replayed = replay_session(session)
    assert replayed.status == "identical", replayed


def test_origin_comes_from_the_environment(tmp_path: Path, workspace: Path) -> None:
    session = tmp_path / "s.yaml"
    with FakeServer([reply(content="ok")]) as server:
        env = cli_env(server.base_url, tmp_path / "home", NANO_CODE_SESSION_ORIGIN="benchmark")
        done = run_cli(["--record", str(session), "-p", "hi"], workspace, env)
    assert done.returncode == 0, done.stderr
    assert load_session(session).metadata["origin"] == "benchmark"


def test_workspace_fingerprints(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "sub").mkdir(parents=True)
    (plain / "a.txt").write_text("one")
    (plain / "sub" / "b.txt").write_text("two")
    first = workspace_fingerprint(plain)
    assert first["kind"] == "content" and first["files"] == 2
    assert workspace_fingerprint(plain) == first
    (plain / "a.txt").write_text("ONE")
    assert workspace_fingerprint(plain)["sha256"] != first["sha256"]

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "f").write_text("x")
    git(repo, "add", "f")
    git(repo, "commit", "-q", "-m", "c")
    clean = workspace_fingerprint(repo)
    assert clean == {
        "kind": "git",
        "head": git(repo, "rev-parse", "HEAD"),
        "dirty": False,
        "status_sha256": None,
    }
    (repo / "f").write_text("y")
    assert workspace_fingerprint(repo)["dirty"] is True


def test_cli_provenance_of_a_plain_directory(tmp_path: Path, workspace: Path) -> None:
    (workspace / "data.txt").write_text("some data\n")
    session = tmp_path / "s.yaml"
    record_cli(session, workspace, [reply(content="fine")], task="look")
    fingerprint = load_session(session).metadata["workspace"]["fingerprint"]
    expected = workspace_fingerprint(workspace)
    assert fingerprint == expected and fingerprint["kind"] == "content" and fingerprint["files"] == 1
