"""A run sends its first request before it imports attrs (kernel/value.py, `postpone_attrs`).

attrs' import costs a fresh process about a fifth of what a bare urllib3 client needs to
send its first request, so nano-code makes the instances it needs before that request
without attrs, and imports attrs in threads the request-sent hooks start, while the model
thinks. These tests watch the real command: an import hook notes where attrs is first
imported from, and the run must still finish its task (tools, several steps, recording)
with attrs' classes after that point.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_helpers import Agent, assert_one_clean_error

from nano_code.testing.fake_server import reply

WATCH_ATTRS = """
import sys, threading, traceback

class WatchAttrs:
    def find_spec(self, name, path=None, target=None):
        if name == "attrs":
            frames = [frame.name for frame in traceback.extract_stack()]
            if threading.current_thread().name in ("nano-code-build", "nano-code-snapshot"):
                where = "a thread a request-sent hook starts"
            elif "_run_request_sent_hooks" in frames:
                where = "a request-sent hook"
            else:
                where = "elsewhere"
            sys.stderr.write(f"attrs first imported in: {where}\\n")
            sys.meta_path.remove(self)
        return None

sys.meta_path.insert(0, WatchAttrs())
from nano_code.cli.main import main
code = main(sys.argv[1:])
for thread in threading.enumerate():  # a fast run can end before the build-ahead thread does
    if thread.name == "nano-code-build":
        thread.join(30)
from nano_code.kernel import value
from nano_code.kernel.events import ModelReply
made_early = "__value_made_early__" in vars(ModelReply)
sys.stderr.write(f"reply class made early: {made_early}, built: {value.is_built(ModelReply)}\\n")
sys.exit(code)
"""


def watched(*args: str) -> list[str]:
    return [sys.executable, "-c", WATCH_ATTRS, *args]


@pytest.mark.parametrize(
    "flags",
    [["--no-record", "--no-stream"], ["--stream"], ["--no-stream", "--sandbox", "off"]],
    ids=["no-record", "recording-stream", "recording-json"],
)
def test_attrs_is_imported_once_the_first_request_is_out(agent: Agent, flags: list[str]) -> None:
    server = agent.serve(
        [
            reply(tool_calls=[("shell", {"command": "echo one"})]),
            reply(tool_calls=[("write_file", {"path": "note.txt", "content": "two\n"})]),
            reply(content="all done"),
        ]
    )
    done = agent.run(command=watched("-p", "run two steps", "--yes", *flags))
    assert done.returncode == 0, done.stderr
    assert "attrs first imported in: a thread a request-sent hook starts" in done.stderr
    # the build-ahead thread ran (and built the reply's class)
    assert "built: True" in done.stderr
    assert "all done" in done.stdout
    assert (agent.workspace / "note.txt").read_text() == "two\n"
    assert len(server.requests) == 3
    tool_outputs = [m["content"] for m in server.requests[2]["body"]["messages"] if m["role"] == "tool"]
    assert "one" in tool_outputs[0]
    if "--no-record" not in flags:
        [recording] = agent.session_files()
        replayed = subprocess.run(
            [str(agent.command([])[0]), "replay", "-q", str(recording)],
            capture_output=True,
            text=True,
            env=agent.env(),
            timeout=60,
        )
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_a_run_that_ends_before_any_request_still_ends_cleanly(agent: Agent) -> None:
    """No request ever goes out (a configuration error): one clear line, as ever, and attrs
    was never needed."""
    done = agent.run(
        command=watched("-p", "hi", "--no-record"), env={"INFERENCE_BASE_URL": "http://127.0.0.1:99999/v1"}
    )
    assert done.returncode == 2
    assert_one_clean_error(done.stderr)
    assert "attrs first imported" not in done.stderr
