"""What a sandboxed command cannot read or steer, even as root: run through real bubblewrap.

Every machine this project is developed and tested on runs as root, so these
tests mean most there: a uid-0 command with every capability dropped still
passes the kernel's owner checks (/etc/shadow, /proc/sys), and only mounts
stop it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_helpers import RO, WW, needs_bwrap

from nano_code.adapters import sandbox
from nano_code.adapters.sandbox import Sandbox
from nano_code.adapters.shell import command_environment, looks_secret, run_command
from nano_code.adapters.tool import ToolContext, ToolOutcome
from nano_code.adapters.tools import run_tool
from nano_code.kernel.types import SandboxMode

pytestmark = needs_bwrap


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home directory outside /tmp (the sandbox's /tmp is private), made the user's."""
    path = Path(tempfile.mkdtemp(prefix="nano-code-home-", dir="/var/tmp")).resolve()
    monkeypatch.setenv("HOME", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def shell(workspace: Path, command: str, mode: SandboxMode = WW, network: bool = False) -> ToolOutcome:
    box = Sandbox(mode, network=network, workspace=workspace)
    return run_tool("shell", {"command": command}, ToolContext(workspace=workspace, sandbox=box))


# --- the kernel's controls ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", [WW, RO])
def test_proc_sys_is_read_only_inside_even_for_root(workspace: Path, mode: SandboxMode) -> None:
    # writes the value back unchanged, so a sandbox with the hole changes nothing on this machine
    done = shell(
        workspace, 'v=$(cat /proc/sys/kernel/domainname); printf %s "$v" > /proc/sys/kernel/domainname', mode
    )
    assert done.exit_status != 0
    assert "Read-only file system" in done.output


def test_nothing_in_proc_outside_the_sandboxs_own_processes_is_writable(workspace: Path) -> None:
    found = shell(
        workspace,
        "find /proc -path '/proc/[0-9]*' -prune -o -path /proc/self -prune -o -path /proc/thread-self "
        "-prune -o -type f -writable -print 2>/dev/null",
    )
    assert found.output.split() == []


# --- secrets -------------------------------------------------------------------------------------


def test_the_workspaces_env_files_cannot_be_read_or_encoded(workspace: Path) -> None:
    (workspace / ".env").write_text("OPENROUTER_API_KEY=sk-or-v1-abcdef0123456789\n")
    (workspace / "app").mkdir()
    (workspace / "app" / ".env.local").write_text("DB_PASSWORD=hunter2\n")
    (workspace / ".env.d").mkdir()  # a directory named like a secret (a virtualenv, say) stays usable
    (workspace / ".env.d" / "ok.txt").write_text("fine\n")
    done = shell(workspace, "cat .env; base64 .env; rev app/.env.local; cat .env.d/ok.txt; ls")
    assert "sk-or-v1" not in done.output and "hunter2" not in done.output
    assert "c2stb3It" not in done.output  # base64 of the key's start
    assert "Permission denied" in done.output
    assert "fine" in done.output
    # nothing changed outside: the files are intact
    assert (workspace / ".env").read_text().startswith("OPENROUTER_API_KEY=")


def test_the_homes_credentials_and_the_password_hashes_are_hidden(workspace: Path, home: Path) -> None:
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY MATERIAL\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("aws_secret_access_key = AWSSECRET\n")
    (home / ".netrc").write_text("machine x login y password NETRCPASS\n")
    (home / "notes.txt").write_text("ordinary\n")
    done = shell(
        workspace,
        f"cat {home}/.ssh/id_ed25519 {home}/.aws/credentials {home}/.netrc; cat {home}/notes.txt; ls -A {home}/.ssh | wc -l",
    )
    for secret in ("PRIVATE KEY", "AWSSECRET", "NETRCPASS"):
        assert secret not in done.output
    assert "ordinary" in done.output
    assert done.output.rstrip().endswith("0")  # ~/.ssh is there, and empty
    if os.path.exists("/etc/shadow"):
        shadow = shell(workspace, "cat /etc/shadow")
        assert shadow.exit_status != 0 and "root:" not in shadow.output


def test_a_workspace_inside_a_hidden_folder_is_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    workspace = home / ".config" / "gh" / "work"
    workspace.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert shell(workspace.resolve(), "echo ok > f && cat f").output.strip() == "ok"


def test_container_daemon_sockets_are_hidden_when_the_network_is_on(
    workspace: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = home / "docker.sock"  # outside /tmp, which is private inside
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    connect = f"import socket; socket.socket(socket.AF_UNIX).connect({str(path)!r}); print('CONNECTED')"
    python = os.path.realpath(sys.executable)  # a virtualenv under /tmp is hidden by the private /tmp
    try:
        assert "CONNECTED" in shell(workspace, f'{python} -c "{connect}"', network=True).output
        monkeypatch.setattr(sandbox, "DAEMON_SOCKETS", (str(path),))
        done = shell(workspace, f'{python} -c "{connect}"', network=True)
        assert "CONNECTED" not in done.output
    finally:
        server.close()


# --- git metadata ------------------------------------------------------------------------------


def test_a_workspace_that_is_no_repository_cannot_become_one(workspace: Path) -> None:
    done = shell(workspace, "git init -q && git config filter.x.clean 'touch PWNED'; echo done")
    assert "Read-only file system" in done.output
    assert not (workspace / ".git").exists()  # the mount point is gone again
    assert shell(workspace, "echo ok > f.txt").exit_status == 0 and (workspace / "f.txt").exists()


def test_new_repositories_further_down_are_reported(workspace: Path) -> None:
    done = shell(
        workspace, "mkdir -p sub bare && git init -q sub && git init -q --bare bare/repo.git && echo made"
    )
    assert "made" in done.output
    assert "created git repositories at bare/repo.git, sub/.git" in done.output
    again = shell(workspace, "echo quiet")
    assert "created git" not in again.output  # only what this command created


# --- the environment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("GITHUB_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("OPENAI_API_KEY", True),
        ("PGPASSWORD", True),
        ("NPM_AUTH", True),
        ("SSH_AUTH_SOCK", True),
        ("GIT_AUTHOR_NAME", False),
        ("PATH", False),
        ("HOME", False),
        ("LANG", False),
    ],
)
def test_which_names_look_secret(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


def test_commands_do_not_see_secret_variables_unless_let_through(workspace: Path) -> None:
    environ = {
        "PATH": os.environ["PATH"],
        "GITHUB_TOKEN": "ghp_x",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "KEEP": "1",
    }
    assert command_environment(environ) == {"PATH": os.environ["PATH"], "KEEP": "1"}
    environ["NANO_CODE_PASS_ENV"] = "GITHUB_TOKEN, OTHER"
    assert command_environment(environ)["GITHUB_TOKEN"] == "ghp_x"


def test_a_sandboxed_command_sees_no_token(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secretvalue")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada")
    box = Sandbox(WW, network=False, workspace=workspace)
    done = run_command("env", workspace, timeout=30, sandbox=box)
    assert "ghp_secretvalue" not in done.output
    assert "GIT_AUTHOR_NAME=Ada" in done.output
    plain = run_command("env", workspace, timeout=30)
    assert "ghp_secretvalue" not in plain.output  # without the sandbox too: the output goes to the model
    monkeypatch.setenv("NANO_CODE_PASS_ENV", "GITHUB_TOKEN")
    assert "ghp_secretvalue" in run_command("env", workspace, timeout=30, sandbox=box).output


def test_a_git_repository_in_the_workspace_still_works(workspace: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    done = shell(workspace, "echo a > a && git status --porcelain")
    assert "?? a" in done.output
    assert (workspace / ".git" / "HEAD").exists()


def test_the_file_tools_write_no_git_metadata_anywhere(workspace: Path) -> None:
    box = Sandbox(WW, network=False, workspace=workspace)
    context = ToolContext(workspace=workspace, sandbox=box)
    for path in (".git/config", "sub/.git/config", "a/b/.git/hooks/pre-commit"):
        refused = run_tool(
            "write_file", {"path": path, "content": "[core]\n\tfsmonitor = touch PWNED\n"}, context
        )
        assert refused.is_error and ".git" in refused.output, path
        assert not (workspace / path).exists()
    assert not run_tool("write_file", {"path": "sub/.gitignore", "content": "x\n"}, context).is_error
