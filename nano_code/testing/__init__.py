"""Tools for researchers: property-test the kernel, run and replay sessions from Python.

Everything below is importable from `nano_code.testing` itself; each name is
loaded on first use, so `import nano_code.testing.strategies` (which needs
hypothesis) does not pull in the replayer, and the replayer does not pull in
hypothesis.

The kernel, with no I/O at all (`kernel_harness`, `conversation`):

- `requests_for(config, events) -> list[dict]`: every request body the kernel
  would send, given what the user typed and what the model replied (tool work
  in between is answered for you); `drive_kernel` returns the whole `KernelRun`
  (final state, actions, events fed) and takes your own `answer` for tool work.
- `conversation_problems(body_or_history) -> list[str]`: every way a
  conversation breaks the Chat Completions rules ([] when valid);
  `assert_valid_conversation` raises instead.
- `nano_code.testing.strategies`: hypothesis strategies for configs, model
  replies and failures (the quirks of real servers included), tool results,
  wire bodies and SSE streams.

Sessions, through the real agent (`api`, `fake_server`):

- `FakeServer(script_or_respond)`: a scripted OpenAI-compatible server on
  127.0.0.1, answering from a list of steps or from a function of the request;
  `reply`, `http_error` and `hang` build the steps.
- `run(task, base_url=..., workspace=..., record_to=...) -> RunResult`: one live
  turn of the real agent, wired as the CLI wires it.
- `replay(path, **overrides) -> ReplayReport` and `load_session(path) -> SessionFile`.
- `corpus_tables(paths)`, `session_tables(path)`, `write_table(tables, "steps.csv")`:
  recorded sessions as rows, one per session, model call or tool call
  (`nano_code.session.corpus`; `nano-code export PATH... --to TABLE`).
- the `nano_replay` pytest fixture (`pytest_plugin`, installed automatically).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOME = {
    "KernelRun": "kernel_harness",
    "ToolWork": "kernel_harness",
    "answer_tool_work": "kernel_harness",
    "drive_kernel": "kernel_harness",
    "requests_for": "kernel_harness",
    "assert_valid_conversation": "conversation",
    "conversation_problems": "conversation",
    "FakeServer": "fake_server",
    "hang": "fake_server",
    "http_error": "fake_server",
    "reply": "fake_server",
    "ReplayReport": "api",
    "RunResult": "api",
    "SessionFile": "api",
    "load_session": "api",
    "replay": "api",
    "run": "api",
    "corpus_tables": "nano_code.session.corpus",
    "session_tables": "nano_code.session.corpus",
    "write_table": "nano_code.session.corpus",
}
"""Public name -> the module that defines it (a bare name is a submodule of this package)."""

__all__ = [
    "FakeServer",
    "KernelRun",
    "ReplayReport",
    "RunResult",
    "SessionFile",
    "ToolWork",
    "answer_tool_work",
    "assert_valid_conversation",
    "conversation_problems",
    "corpus_tables",
    "drive_kernel",
    "hang",
    "http_error",
    "load_session",
    "replay",
    "reply",
    "requests_for",
    "run",
    "session_tables",
    "write_table",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home if "." in home else f"{__name__}.{home}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
