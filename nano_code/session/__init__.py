"""The session layer: what owns one session, between the CLI and the driver.

- `settings`: from the user's settings to the kernel's config, and what a
  session records of them (shared by live runs, resume, replay and forks).
- `replay`: strict offline replay of a recorded session through the real
  driver and HTTP client under vcrpy, and what is built on it (rebless, fork,
  live tools, resume's state rebuild).

Arrows point inward: `cli` -> `session` -> `driver` -> `kernel`; the adapters
(`nano_code.adapters`) are used by this layer and import none of it
(tests/test_layering.py reads every module's imports to keep that true).
"""
