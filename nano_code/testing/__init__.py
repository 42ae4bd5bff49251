"""Tools for researchers: replay sessions from Python, a pytest plugin, hypothesis strategies.

- `replay(path, **overrides) -> ReplayReport` and `load_session(path)`: see `api`.
- `run(task, base_url=..., workspace=..., record_to=...) -> RunResult`: one live turn of
  the real agent (against a `FakeServer`, say), wired as the CLI wires it.
- the `nano_replay` pytest fixture: see `pytest_plugin` (installed automatically).
- `nano_code.testing.strategies`: hypothesis strategies for model replies,
  including the quirks of real servers, to property-test kernel variants.
- `nano_code.testing.fake_server`: a scripted OpenAI-compatible server.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunResult", "load_session", "replay", "run"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import nano_code.testing.strategies` does not pull in the replayer.
    if name in __all__:
        from nano_code.testing import api

        return getattr(api, name)
    raise AttributeError(name)
