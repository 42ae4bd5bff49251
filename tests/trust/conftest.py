"""Fixtures for the trust-boundary tests (issue 7): the real `nano-code` executable against
local servers on 127.0.0.1 (helpers: trust_helpers.py, and tests/cli/cli_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _folder in (_HERE, _HERE.parent / "cli"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from cli_helpers import agent  # noqa: E402, F401 - the fixture, defined once in cli_helpers.py
