"""mypy: `nano_code.kernel.value.value` makes a frozen attrs class, as `attrs.frozen` does.

attrs' own mypy plugin knows its decorators by name; this adds ours to the list
of frozen ones, so mypy checks `@value` classes (their fields, `__init__`,
`attrs.evolve` on them) exactly as it checks `@attrs.frozen` ones.
"""

from __future__ import annotations

from mypy.plugin import Plugin
from mypy.plugins.attrs import attr_frozen_makers

attr_frozen_makers.add("nano_code.kernel.value.value")


class ValuePlugin(Plugin):
    pass


def plugin(version: str) -> type[Plugin]:
    return ValuePlugin
