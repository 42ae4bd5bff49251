"""Tools for researchers: property-test the kernel, run and replay sessions from Python.

Public names load on first use, so the hypothesis strategies and the replayer do not pull in each other.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_NAMES_BY_MODULE = {
    "kernel_harness": ("KernelRun", "ToolWork", "answer_tool_work", "drive_kernel", "requests_for"),
    "conversation": ("assert_valid_conversation", "conversation_problems"),
    "fake_server": ("FakeServer", "hang", "http_error", "reply"),
    "api": ("ReplayReport", "RunResult", "SessionFile", "load_session", "replay", "run"),
    "nano_code.session.corpus": ("session_tables",),
    "nano_code.session.corpus_files": ("corpus_tables", "write_table"),
}
_HOME = {name: module for module, names in _NAMES_BY_MODULE.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home if "." in home else f"{__name__}.{home}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
