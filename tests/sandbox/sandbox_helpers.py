"""What the sandbox tests share: whether bubblewrap works here, and the two modes' short names."""

from __future__ import annotations

import sys

import pytest

from nano_code.adapters import sandbox
from nano_code.kernel.types import SandboxMode

BWRAP_PROBLEM = sandbox.probe() if sys.platform.startswith("linux") else "bubblewrap is Linux only"
"""None where bubblewrap works here, else why not."""
needs_bwrap = pytest.mark.skipif(
    BWRAP_PROBLEM is not None,
    reason=f"no working bubblewrap here ({BWRAP_PROBLEM}); `apt-get install bubblewrap`",
)
WW = SandboxMode.WORKSPACE_WRITE
RO = SandboxMode.READ_ONLY
