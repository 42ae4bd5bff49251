"""nano-code: a small coding agent for the terminal whose sessions replay exactly."""

__version__ = "0.1.0"
