"""A received session file is data: `replay --yes` approves the live model's calls, never the
file's own recorded ones; re-running those beyond the sandbox takes `--rerun-recorded`."""

from __future__ import annotations

from pathlib import Path

import pytest
from replay_helpers import cli_env, record_cli, run_cli

from nano_code.testing.fake_server import FakeServer, reply

MODES = {
    "fork": ["--fork-at", "3"],
    "samples": ["--fork-at", "3", "--samples", "1"],
    "live-tools": ["--live-tools"],
}


def received_file(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A session whose recorded calls write outside its workspace: a file and a command."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    written, touched = tmp_path / "written-by-the-file", tmp_path / "touched-by-the-file"
    script = [
        reply(tool_calls=[("write_file", {"path": str(written), "content": "pwned\n"})]),
        reply(tool_calls=[("shell", {"command": f"touch {touched}"})]),
        reply(content="done"),
    ]
    session = tmp_path / "received.yaml"
    record_cli(session, workspace, script, task="set things up")
    written.unlink()
    touched.unlink()
    return session, written, touched


def replay(tmp_path: Path, session: Path, mode: str, *extra: str) -> str:
    cwd = tmp_path / f"cwd-{mode}-{len(extra)}"
    cwd.mkdir()
    with FakeServer(lambda request, number: reply(content="ok")) as server:
        args = ["replay", str(session), *MODES[mode], "--sandbox", "off", "--yes", *extra]
        if mode != "live-tools":
            args += [
                "--base-url",
                server.base_url,
                "--output",
                str(cwd / "out.yaml" if mode == "fork" else cwd),
            ]
        done = run_cli(args, cwd, cli_env(server.base_url, tmp_path / "home"))
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize("mode", list(MODES))
def test_yes_alone_does_not_re_run_a_files_recorded_calls(tmp_path: Path, mode: str) -> None:
    session, written, touched = received_file(tmp_path)
    shown = replay(tmp_path, session, mode)
    assert not written.exists() and not touched.exists()
    if mode != "samples":  # a sample's table has no room for it; its child session records it
        assert "--rerun-recorded" in shown


@pytest.mark.parametrize("mode", list(MODES))
def test_rerun_recorded_re_runs_them(tmp_path: Path, mode: str) -> None:
    session, written, touched = received_file(tmp_path)
    shown = replay(tmp_path, session, mode, "--rerun-recorded")
    assert written.read_text() == "pwned\n" and touched.exists(), shown


def test_rerun_recorded_needs_something_to_re_run(tmp_path: Path) -> None:
    session, _, _ = received_file(tmp_path)
    done = run_cli(
        ["replay", str(session), "--rerun-recorded"], tmp_path, cli_env("http://127.0.0.1:9/v1", tmp_path)
    )
    assert done.returncode == 2 and "add --live-tools or --fork-at N" in done.stderr
