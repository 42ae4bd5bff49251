"""Test-wide settings: hypothesis profiles and access to the optional shared data.

Profiles: "default" keeps the whole suite quick; "thorough" explores much
more (select it with NANO_CODE_HYPOTHESIS_PROFILE=thorough). `../shared`
(recorded real traffic, the official OpenAI schema) sits beside the project
in development but not on a user's clone, so tests that need it ask for the
`shared_dir` fixture and are skipped when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT / ".." / "shared"

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("NANO_CODE_HYPOTHESIS_PROFILE", "default"))


def shared_path(*parts: str) -> Path:
    """A path inside ../shared, skipping the calling test when it does not exist."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found (../shared is only present in development checkouts)")
    return path.resolve()


@pytest.fixture
def shared_dir() -> Path:
    """../shared, or skip the test when this checkout does not have it."""
    return shared_path()
