"""Strict, offline replay of a recorded session, and what is built on it: rebless, fork, live tools.

The real driver and model client run under vcrpy (nothing is fetched live), served by a
`ReplayPerformer` that stops at the first divergence.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nano_code import __version__
from nano_code.adapters.config import Settings
from nano_code.adapters.journal import ApprovalModeEntry, ModelChangeEntry, SamplingChangeEntry
from nano_code.adapters.live import Approver
from nano_code.adapters.model_client import ModelClient
from nano_code.adapters.provenance import nano_code_commit, provenance
from nano_code.adapters.sandbox import Sandbox, SandboxUnavailable
from nano_code.adapters.secrets import Redactor
from nano_code.adapters.session_file import FORMAT_VERSION, SessionFileError, load_session
from nano_code.adapters.snapshot import SnapshotError, archive_path
from nano_code.adapters.tool import ToolContext
from nano_code.driver import Driver, Observer, Performer
from nano_code.kernel.events import USER_STARTED_EVENTS, Interrupt
from nano_code.kernel.serialize import to_json
from nano_code.kernel.state import initial_state
from nano_code.kernel.stream import StreamDelta
from nano_code.kernel.types import ApprovalMode, SandboxMode
from nano_code.session.cassette import offline_cassette
from nano_code.session.changes import change_setting
from nano_code.session.divergence import Diverged, Divergence, Masks, ReplayError, ReplayReport
from nano_code.session.factory import choose_sandbox, live_performer, open_recorder, sandbox_provenance
from nano_code.session.performer import ReplayOptions, ReplayPerformer, refuse_all, refuse_recorded
from nano_code.session.recording import carry_snapshot, describe, event_entry, restore_workspace
from nano_code.session.settings import RecordedSettings, kernel_config, recorded_agents_md


def replay_session(
    path: str | Path,
    *,
    ignore: Sequence[str] = (),
    rebless_to: Path | None = None,
    live_tools: bool = False,
    fork_at: int | None = None,
    fork_to: Path | None = None,
    live_settings: Settings | None = None,
    live_model: str | None = None,
    live_temperature: float | None = None,
    live_seed: int | None = None,
    workspace: Path | None = None,
    sandbox: str | None = None,
    sandbox_network: bool = False,
    keep_workspace: bool = True,
    observers: Sequence[Observer] = (),
    on_delta: Callable[[StreamDelta], None] | None = None,
    config_overrides: Mapping[str, Any] | None = None,
    redactor: Redactor | None = None,
    approval: ApprovalMode = ApprovalMode.ASK,
    approver: Approver = refuse_all,
    rerun_recorded: bool = False,
    rerun_approver: Approver = refuse_recorded,
) -> ReplayReport:
    """Replay one session; a bad or diverging session is reported, never raised.

    `live_tools` re-runs each recorded tool call and reports differing outputs; a fork (`fork_at`)
    does so up to the fork point, then goes live against `live_settings`'s server. Tools run in
    `workspace`, else in a directory restored from the session's snapshot. `approval`/`approver`
    govern the live model's calls, `rerun_recorded`/`rerun_approver` the file's own; never the file.
    Output files are renamed into place only on success; interrupted, it removes what it wrote.
    """
    started = time.perf_counter()
    path = Path(path)
    masks = Masks.parse(ignore)
    try:
        session = load_session(path)
        settings = RecordedSettings.from_json(session.metadata.get("settings"))
        settings = settings.with_overrides(config_overrides or {})
        agents_md = recorded_agents_md(session.metadata)
        config = kernel_config(settings, agents_md)
    except (SessionFileError, KeyError, TypeError, ValueError, AttributeError) as unreadable:
        return _failed(path, unreadable, started)
    runs_tools = live_tools or fork_at is not None
    restored = runs_tools and workspace is None
    where: Path | None = None
    live_sandbox: Sandbox | None = None
    sandbox_notice: str | None = None
    leftovers: list[Path] = []  # what this run has written so far, and an interrupt removes
    try:
        if runs_tools:
            where = restore_workspace(path, session) if workspace is None else workspace.resolve()
            live_sandbox, sandbox_notice = choose_sandbox(sandbox, sandbox_network, where)
        client = ModelClient(settings.base_url.rstrip("/") + "/chat/completions", api_key=None)
        options = ReplayOptions(
            masks=masks,
            rebless=rebless_to is not None,
            live_tools=ToolContext(where, shell_timeout=settings.shell_timeout, sandbox=live_sandbox)
            if where
            else None,
            fork_at=fork_at,
            live_changes=[
                ApprovalModeEntry(approval, live_sandbox.mode if live_sandbox else SandboxMode.OFF)
            ],
            rerun_approval=ApprovalMode.AUTO if rerun_recorded else ApprovalMode.ASK,
            rerun_approver=rerun_approver,
        )
        if live_model is not None:
            options.live_changes.append(ModelChangeEntry(live_model))
        if live_temperature is not None or live_seed is not None:
            options.live_changes.append(SamplingChangeEntry(live_temperature, live_seed))
        performer = ReplayPerformer(session, client, options)
        performer.on_delta = on_delta
        all_observers: list[Observer] = [performer, *observers]
        closing = contextlib.ExitStack()  # the clients and the recorder, whatever happens
        closing.callback(client.close)
        output_path = rebless_to or fork_to
        if output_path is not None:
            metadata = {**session.metadata, "format_version": FORMAT_VERSION}
            parent = {"path": str(path), "session_id": metadata.get("session_id")}
            if rebless_to is not None:  # the copy's requests are this version's: its provenance says so
                metadata.update(reblessed_from=parent, nano_code_version=__version__)
                metadata["nano_code_commit"] = nano_code_commit()
                metadata["tool_schemas"] = [to_json(spec) for spec in config.tools]
                metadata["system_prompt_sha256"] = hashlib.sha256(config.system_prompt.encode()).hexdigest()
            else:
                # fingerprint `where`, where the fork's tools work, never a directory the file names
                assert where is not None
                parent["fork_at"] = fork_at
                metadata = provenance(config, settings.to_json(), where, agents_md, "fork", parent)
                metadata["sandbox"] = sandbox_provenance(sandbox, live_sandbox, sandbox_notice)
            partial_path = output_path.with_name(f".{output_path.name}.partial")
            partial_path.unlink(missing_ok=True)
            leftovers.append(partial_path)
            recorder = open_recorder(partial_path, metadata, redactor or Redactor(None))
            if fork_to is not None:
                leftovers.append(archive_path(fork_to))
                carry_snapshot(path, session, fork_to, recorder)
            all_observers.append(recorder)
            client.exchange_sinks.append(recorder.on_exchange)
            closing.callback(recorder.close)

        driver = Driver(initial_state(config), performer, all_observers)
        performer.apply_change = lambda entry: change_setting(driver, entry)
        stack = contextlib.ExitStack()

        def go_live() -> Performer:
            stack.close()  # vcrpy lets go of HTTP: the live part talks to a real server
            assert where is not None and live_settings is not None
            sinks = client.exchange_sinks  # the recorder's, when there is one
            live = live_performer(
                live_settings, where, approver, on_delta=on_delta, exchange_sinks=sinks, sandbox=live_sandbox
            )
            closing.callback(live.client.close)
            driver.hand_over(live)
            return live

        if live_settings is not None and fork_at is not None:
            performer.go_live = go_live
        divergence: Divergence | None = None
        error: str | None = None
        try:
            with stack:
                served = offline_cassette(
                    path, masks.request, session, performer.expected, match_body=rebless_to is None
                )
                cassette = stack.enter_context(served)
                divergence = _drive(driver, performer)
                if divergence is None and not performer.forked and not cassette.all_played:
                    never = "recorded interactions were never requested"
                    divergence = Divergence(performer.step, None, "unused interactions", never)
                if divergence is None and fork_at is not None and not performer.forked:
                    raise ReplayError(
                        f"--fork-at {fork_at} is past the recording's end "
                        f"(it has {performer.step} model call(s); fork at fewer)"
                    )
        except Diverged as diverged:
            divergence = diverged.divergence
        except Exception as failure:  # ReplayError, vcrpy refusing an unmatched request, etc.
            error = f"{type(failure).__name__}: {failure}"
        finally:
            closing.close()
        if performer.live_interrupt:
            # Ctrl-C in the live part ended its turn: the fork goes like any interrupted run
            raise KeyboardInterrupt

        outcomes = (
            ("error", error is not None),
            ("diverged", divergence is not None),
            ("reblessed", rebless_to is not None),
            ("forked", performer.forked),
            ("tool outputs differ", bool(performer.tool_output_differences)),
        )
        status = next((name for name, happened in outcomes if happened), "identical")
        if output_path is not None:
            if status in ("reblessed", "forked"):
                partial_path.replace(output_path)
            else:
                _discard(leftovers, None)
                output_path = None
            leftovers.clear()  # a finished fork (and its snapshot copy) stays, come what may
        if restored and where is not None and not keep_workspace:
            shutil.rmtree(where, ignore_errors=True)
        return ReplayReport(
            path=str(path),
            status=status,
            steps=performer.calls if performer.forked else performer.step,
            tool_calls=performer.tool_calls,
            usage=driver.state.session_usage,
            seconds=time.perf_counter() - started,
            divergence=divergence,
            error=error,
            masked=tuple(sorted(performer.masked)),
            unused_masks=tuple(pattern for pattern in ignore if pattern not in performer.masked),
            torn=session.torn_tail,
            changed_requests=tuple(performer.changed_requests),
            tool_output_differences=tuple(performer.tool_output_differences),
            output_path=str(output_path) if output_path else None,
            workspace=str(where) if where is not None else None,
            sandbox_notice=sandbox_notice,
            not_rerun=performer.not_rerun,
        )
    except (KeyboardInterrupt, SnapshotError, SandboxUnavailable) as stopped:
        _discard(leftovers, where if restored else None)
        if isinstance(stopped, KeyboardInterrupt):
            raise
        return _failed(path, stopped, started)  # no workspace to run the tools in


def _failed(path: Path, error: Exception, started: float) -> ReplayReport:
    return ReplayReport(str(path), "error", error=str(error), seconds=time.perf_counter() - started)


def _discard(written: Sequence[Path], restored: Path | None) -> None:
    """Remove what an interrupted replay wrote, and the workspace it restored."""
    try:
        for path in written:
            path.unlink(missing_ok=True)
    finally:
        if restored is not None:
            shutil.rmtree(restored, ignore_errors=True)


def _drive(driver: Driver, performer: ReplayPerformer) -> Divergence | None:
    """Feed the recorded user-started events turn by turn until the recording is used up."""
    while (record := performer.peek()) is not None:
        entry = event_entry(record)
        if entry is None or not isinstance(entry.event, (*USER_STARTED_EVENTS, Interrupt)):
            summary = f"the new run's turn ended, but the recording continues with {describe(record)}"
            return Divergence(max(performer.step, 1), record.line, "missing request", summary)
        performer.take()
        if not isinstance(entry.event, Interrupt):  # a recorded interrupt between turns changes nothing
            driver.run(driver.feed(entry.event))
        if performer.forked:
            return None  # forked: the live continuation ends with its turn
    return None
