"""Fixtures for the end-to-end tests of the `nano-code` executable (helpers: cli_helpers.py)."""

from __future__ import annotations

from cli_helpers import agent  # noqa: F401 - the fixture, defined once for tests/cli and tests/trust
