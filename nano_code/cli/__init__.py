"""Command-line front ends: argument parsing, the interactive prompt, one-shot mode.

What lives here: turning argv and the terminal into settings and user input,
and exit codes. What may not: agent logic (the kernel) or raw I/O helpers
(the adapters) -- the CLI wires them together through the driver.
"""
