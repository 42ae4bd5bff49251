"""The one place a session is put together: client, tools, performer, recorder, driver.

Every way nano-code runs a session goes through here:

- a live run, a resumed one and `nano_code.testing.run`: `live_session`;
- a replay, a rebless and the replayed part of a fork: `session.replay`,
  which records its copies with `open_recorder`;
- the live part of a fork: `live_performer`, handed to the driver once, at
  the fork point (`Driver.hand_over`).

So the live client, tool context and performer are built by one function,
whichever command asked for them, and a fork's live steps run exactly as a
live session's do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters.config import Settings
from nano_code.adapters.live import Approver, LivePerformer
from nano_code.adapters.model_client import Exchange, ModelClient
from nano_code.adapters.recorder import Recorder
from nano_code.adapters.secrets import Redactor
from nano_code.adapters.session_file import SessionFile, SessionWriter
from nano_code.adapters.tools import ToolContext
from nano_code.driver import Driver, Observer
from nano_code.kernel.machine import State
from nano_code.kernel.stream import StreamDelta


def live_performer(
    settings: Settings,
    workspace: Path,
    approve: Approver,
    *,
    on_delta: Callable[[StreamDelta], None] | None = None,
    exchange_sinks: Iterable[Callable[[Exchange], None]] = (),
) -> LivePerformer:
    """Real model calls to the server `settings` name, real tools in `workspace`,
    and `approve` for whatever the kernel says needs a person's yes."""
    client = ModelClient.for_settings(settings)
    client.exchange_sinks.extend(exchange_sinks)
    context = ToolContext(workspace=workspace, shell_timeout=settings.shell_timeout)
    return LivePerformer(client, context, approve, on_delta=on_delta)


def open_recorder(
    path: Path,
    metadata: Mapping[str, Any] | None,
    redactor: Redactor,
    resume_from: SessionFile | None = None,
) -> Recorder:
    """A recorder appending to `path`: a new file with `metadata` as its header, or
    (`resume_from`, no metadata) the session file being resumed."""
    return Recorder(SessionWriter(path, metadata, redactor.check, resume_from=resume_from), redactor)


@attrs.define
class Session:
    """A live session, wired: drive it with `driver`, then `close` it."""

    driver: Driver
    performer: LivePerformer
    recorder: Recorder | None

    @property
    def client(self) -> ModelClient:
        return self.performer.client

    def close(self) -> None:
        """Close the connection pool and the recording (the file stays loadable)."""
        self.performer.client.close()
        if self.recorder is not None:
            self.recorder.close()


def live_session(
    settings: Settings,
    state: State,
    workspace: Path,
    approve: Approver,
    *,
    recorder: Recorder | None = None,
    observers: Sequence[Observer] = (),
    on_delta: Callable[[StreamDelta], None] | None = None,
) -> Session:
    """A live session starting from `state` (a new one, or a resumed one's), recorded
    when a `recorder` is given: it sees every event and action and every HTTP exchange,
    the reply already decoded, from the client."""
    sinks = [recorder.on_exchange] if recorder is not None else []
    performer = live_performer(settings, workspace, approve, on_delta=on_delta, exchange_sinks=sinks)
    watchers: list[Observer] = [*observers]
    if recorder is not None:
        watchers.append(recorder)
    return Session(Driver(state, performer, watchers), performer, recorder)
