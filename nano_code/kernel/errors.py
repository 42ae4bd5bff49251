"""The kernel's one exception type: untrusted input never raises (it becomes an event)."""

from __future__ import annotations


class DriverMisuseError(Exception):
    """The driver fed an event the phase does not accept, or answered a call that is not
    pending: a bug in the caller, never a consequence of what a model or server sent."""
