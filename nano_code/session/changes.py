"""Setting changes mid-session, in one table: journal entry type -> the config fields it sets.

Live runs, replay, resume and forks all change settings through `change_setting` or `applied`,
so a new setting is added here and in `adapters/journal.py` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from nano_code.adapters.journal import ApprovalModeEntry, ModelChangeEntry, SamplingChangeEntry
from nano_code.driver import Driver
from nano_code.kernel.state import State

SettingChange = ApprovalModeEntry | ModelChangeEntry | SamplingChangeEntry

CONFIG_FIELDS: dict[type, Callable[[Any], dict[str, Any]]] = {
    ApprovalModeEntry: lambda entry: (
        {"approval": entry.mode} | ({"sandbox": entry.sandbox} if entry.sandbox is not None else {})
    ),
    ModelChangeEntry: lambda entry: {"model": entry.model},
    SamplingChangeEntry: lambda entry: {"temperature": entry.temperature, "seed": entry.seed},
}


def is_setting_change(entry: object) -> bool:
    return type(entry) in CONFIG_FIELDS


def config_fields(entry: SettingChange) -> dict[str, Any]:
    return CONFIG_FIELDS[type(entry)](entry)


def applied(state: State, entry: SettingChange) -> State:
    """`state` going on with `entry`'s setting. A new approval mode drops earlier "always" grants."""
    config = attrs.evolve(state.config, **config_fields(entry))
    grants = frozenset() if isinstance(entry, ApprovalModeEntry) else state.always_approved
    return attrs.evolve(state, config=config, always_approved=grants)


def change_setting(driver: Driver, entry: SettingChange) -> None:
    """Change a setting of the running session; the recorder journals `entry`, so a replay
    switches at the same point."""
    if isinstance(entry, ApprovalModeEntry) and entry.sandbox is None:
        entry = ApprovalModeEntry(entry.mode, driver.state.config.sandbox)
    driver.change_setting(applied(driver.state, entry), entry)
