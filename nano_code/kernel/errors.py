"""The kernel's one exception type.

Untrusted input (model replies, server errors, anything a codec decodes) never
raises: it becomes an event. Only a driver that breaks the protocol -- feeding
an event the current phase does not allow, or a tool result for a call that is
not pending -- gets an exception, and always this one.
"""

from __future__ import annotations


class DriverMisuseError(Exception):
    """The driver fed the kernel something the protocol does not allow.

    This is a bug in the caller, never a consequence of what a model or a
    server sent.
    """
