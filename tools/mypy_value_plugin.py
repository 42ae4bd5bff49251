"""mypy: `@value` makes a frozen attrs class, as `attrs.frozen` does.

attrs' own mypy plugin knows its decorators, field makers and `evolve` by name;
this adds ours (`nano_code.kernel.value.value`, `.field` and `.evolve`), so mypy
checks `@value` classes (their fields, `__init__`, `evolve` on them) exactly as
it checks `@attrs.frozen` ones.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.plugin import FunctionSigContext, Plugin
from mypy.plugins.attrs import attr_attrib_makers, attr_frozen_makers, evolve_function_sig_callback
from mypy.types import FunctionLike

attr_frozen_makers.add("nano_code.kernel.value.value")
attr_attrib_makers.add("nano_code.kernel.value.field")


class ValuePlugin(Plugin):
    def get_function_signature_hook(
        self, fullname: str
    ) -> Callable[[FunctionSigContext], FunctionLike] | None:
        if fullname == "nano_code.kernel.value.evolve":
            return evolve_function_sig_callback
        return None


def plugin(version: str) -> type[Plugin]:
    return ValuePlugin
