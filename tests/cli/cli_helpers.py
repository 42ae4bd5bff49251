"""End-to-end helpers: the real `nano-code` executable against the scripted fake server.

Every test here starts the installed console script as a subprocess, in a
fresh workspace, with a controlled environment (no key, base URL or model
leaking in from the developer's shell; sessions recorded under a temporary
NANO_CODE_HOME), and talks only to `FakeServer` on 127.0.0.1.

Every request the fake server receives is checked twice: against the official
Chat Completions schema (when `../shared` is part of this checkout) and,
always, against the conversation rules the kernel promises (system message
first, each tool call answered exactly once before the conversation moves on,
no orphan tool messages, arguments sent as JSON strings).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from nano_code.testing import conversation_problems
from nano_code.testing.fake_server import FakeServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = PROJECT_ROOT / ".." / "shared" / "openai-schema" / "chat-completions.schema.json"
EXECUTABLE = Path(sys.executable).parent / "nano-code"
SCRUBBED = ("OPENROUTER_API_KEY", "INFERENCE_BASE_URL", "MODEL_NAME")
RUN_TIMEOUT = 40.0
PROMPT = "\u203a "
"""What the interactive prompt shows before each task."""


# --------------------------------------------------------------------------------------------------
# request checks
# --------------------------------------------------------------------------------------------------


@cache
def schema_validator() -> Any:
    """A validator for CreateChatCompletionRequest, or None when ../shared is absent."""
    if not SCHEMA_FILE.exists():
        return None
    import jsonschema

    definitions = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))["$defs"]
    schema = {"$ref": "#/$defs/CreateChatCompletionRequest", "$defs": definitions}
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return validator_class(schema)


def check_request(request: Mapping[str, Any]) -> None:
    """Fail the test when a request the fake server received breaks the schema or the rules."""
    body = request["body"]
    problems = conversation_problems(body)
    assert not problems, f"conversation rules broken in {request['path']}:\n" + "\n".join(problems)
    validator = schema_validator()
    if validator is not None:
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, "request does not match CreateChatCompletionRequest:\n" + "\n".join(
            f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5]
        )


# --------------------------------------------------------------------------------------------------
# running the executable
# --------------------------------------------------------------------------------------------------


class Agent:
    """Runs `nano-code` in one test's workspace against that test's fake servers."""

    def __init__(self, root: Path) -> None:
        self.workspace = root / "workspace"
        self.home = root / "home"
        self.workspace.mkdir()
        self.home.mkdir()
        self.servers: list[FakeServer] = []
        self.base_url: str | None = None
        self._checked: dict[int, int] = {}

    @property
    def sessions_dir(self) -> Path:
        return self.home / "sessions"

    def serve(self, script: Sequence[Mapping[str, Any]]) -> FakeServer:
        """Start a fake server with `script`; later runs talk to it."""
        server = FakeServer(script).start()
        self.servers.append(server)
        self.base_url = server.base_url
        return server

    def env(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in SCRUBBED and not key.startswith("NANO_CODE_")
        }
        env["NANO_CODE_HOME"] = str(self.home)
        env["NO_COLOR"] = "1"
        # Approval without a sandbox is what most tests are about; tests of the sandbox turn it
        # on (pass {"NANO_CODE_SANDBOX": None} for the default, or a mode).
        env["NANO_CODE_SANDBOX"] = "off"
        if self.base_url is not None:
            env["INFERENCE_BASE_URL"] = self.base_url
        for key, value in (extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def command(self, args: Sequence[str]) -> list[str]:
        assert EXECUTABLE.exists(), f"{EXECUTABLE} is missing: install the project (pip install -e .)"
        return [str(EXECUTABLE), *args]

    def run(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str | None] | None = None,
        timeout: float = RUN_TIMEOUT,
        command: Sequence[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run to completion; stdin is /dev/null unless `input` is given."""
        result = subprocess.run(
            list(command) if command is not None else self.command(args),
            cwd=self.workspace,
            env=self.env(env),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.check_requests()
        return result

    def spawn(
        self, *args: str, env: Mapping[str, str | None] | None = None, **popen: Any
    ) -> subprocess.Popen[Any]:
        """Start without waiting (for signals and terminals); the caller reaps it."""
        popen.setdefault("stdin", subprocess.DEVNULL)
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.command(args), cwd=self.workspace, env=self.env(env), **popen)

    def requests(self, server: FakeServer | None = None) -> list[dict[str, Any]]:
        return (server or self.servers[-1]).requests

    def bodies(self, server: FakeServer | None = None) -> list[dict[str, Any]]:
        return [request["body"] for request in self.requests(server)]

    def check_requests(self) -> None:
        """Check every request not checked yet, on every server of this test."""
        for server in self.servers:
            done = self._checked.get(id(server), 0)
            for request in server.requests[done:]:
                check_request(request)
            self._checked[id(server)] = len(server.requests)

    def session_files(self) -> list[Path]:
        return sorted(self.sessions_dir.glob("*.yaml")) if self.sessions_dir.is_dir() else []

    def close(self) -> None:
        # FakeServer.stop() waits out serve_forever's 0.5 s poll; stopping in the background keeps
        # that half second per test off the suite's clock. Every request was checked already.
        for server in self.servers:
            threading.Thread(target=server.stop, daemon=True).start()


# --------------------------------------------------------------------------------------------------
# helpers for messages, processes and terminals
# --------------------------------------------------------------------------------------------------


def tool_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m.get("role") == "tool"]


def assistant_calls(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for message in body["messages"]:
        if message.get("role") == "assistant":
            calls.extend(message.get("tool_calls") or [])
    return calls


def user_text(body: Mapping[str, Any]) -> str:
    users = [m for m in body["messages"] if m.get("role") == "user"]
    assert users, "no user message"
    content = users[-1]["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content)


def assert_one_clean_error(stderr: str) -> None:
    """No traceback, and the failure is said on one line starting with 'error' or 'nano-code:'."""
    assert "Traceback" not in stderr, stderr
    failures = [
        line for line in stderr.splitlines() if line.startswith(("error", "nano-code:")) and line.strip()
    ]
    assert len(failures) == 1, f"expected one error line, got:\n{stderr}"


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains `marker` (zombies and our own process excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def kill_if_running(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=5)


class Terminal:
    """A pseudo-terminal for one child: it reads stdin, writes stdout and stderr there."""

    def __init__(self) -> None:
        import pty

        self.master, self.slave = pty.openpty()
        self.seen = b""

    def read_until(self, text: str, timeout: float = 15.0) -> str:
        """Everything seen since the last match, up to and including `text`; fail after `timeout`."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not seen within {timeout} s; the terminal showed:\n{self.text()}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the child closed the terminal (EIO)
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the terminal closed before {text!r}; it showed:\n{self.text()}")
                self.seen += chunk
        cut = self.seen.index(wanted) + len(wanted)
        before, self.seen = self.seen[:cut], self.seen[cut:]
        return before.decode(errors="replace")

    def drain(self, timeout: float = 5.0) -> str:
        """Read until the child closes the terminal (or `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.seen += chunk
        return self.text()

    def close_child_end(self) -> None:
        """After spawning: keep only the child's copy of the slave, so its exit closes the terminal."""
        if self.slave >= 0:
            os.close(self.slave)
            self.slave = -1

    def text(self) -> str:
        return self.seen.decode(errors="replace")

    def write(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = -1


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    """A workspace, a NANO_CODE_HOME and fake servers stopped (and their requests checked) at the end.

    Shared by tests/cli and tests/trust: each conftest imports it from here.
    """
    runner = Agent(tmp_path)
    try:
        yield runner
        runner.check_requests()
    finally:
        runner.close()
