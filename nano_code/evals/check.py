"""A task's check: its shell command run in a sample's finished workspace, in the sandbox the
sample's tools had, bounded by the task's timeout. It is the session's check (`session/check.py`),
named here where the eval runner and the benchmarks look for it."""

from __future__ import annotations

from nano_code.session.check import SHOWN_OUTPUT_CHARS, CheckResult, run_check

__all__ = ["SHOWN_OUTPUT_CHARS", "CheckResult", "run_check"]
