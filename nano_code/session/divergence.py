"""What comparing a run with a recording finds: the --ignore masks, divergences, the replay report."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import attrs

from nano_code.kernel.jsondiff import Difference, Mask, render
from nano_code.kernel.serialize import to_json
from nano_code.kernel.types import Usage


@attrs.frozen
class Masks:
    """`--ignore` patterns parsed: a `$.request…` path masks request bodies only, a `$.reply…`
    path replies and events only, any other path both."""

    request: tuple[Mask, ...] = ()
    other: tuple[Mask, ...] = ()

    @classmethod
    def parse(cls, patterns: Iterable[str]) -> Masks:
        """MaskError for a pattern that is not a path like $.a.b[*].c or $..id."""
        request: list[Mask] = []
        other: list[Mask] = []
        for pattern in patterns:
            if pattern.startswith(("$.request.", "$.request[", "$.reply")):
                side, prefix = (other, "$.reply") if pattern.startswith("$.reply") else (request, "$.request")
                side.append(attrs.evolve(Mask.parse("$" + pattern.removeprefix(prefix)), pattern=pattern))
            else:
                request.append(Mask.parse(pattern))
                other.append(request[-1])
        return cls(tuple(request), tuple(other))


@attrs.frozen
class Divergence:
    step: int
    """Model requests made so far, 1-based, retries included (not the kernel's per-turn step)."""
    line: int | None
    """The session file's line holding the recorded side."""
    what: str
    summary: str
    differences: tuple[Difference, ...] = ()

    def render(self, verb: str = "diverged") -> str:
        """One line (then the differences); a rebless reports what it accepted as "changed"."""
        where = f"step {self.step}" + (f" (line {self.line})" if self.line else "")
        text = f"{verb} at {where}: {self.what}: {self.summary}"
        if self.differences:
            text += "\n" + render(self.differences)
        return text


class Diverged(Exception):
    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.render())
        self.divergence = divergence


class ReplayError(Exception):
    """The session cannot be replayed (unreadable, or made by an incompatible version)."""


@attrs.frozen
class ToolOutputDifference:
    step: int
    tool: str
    recorded: str
    actual: str


@attrs.frozen
class ReplayReport:
    path: str
    status: str
    """'identical', 'diverged', 'error', 'reblessed', 'forked', or 'tool outputs differ'."""
    steps: int = 0
    tool_calls: int = 0
    usage: Usage = attrs.field(factory=Usage)
    seconds: float = 0.0
    divergence: Divergence | None = None
    error: str | None = None
    masked: tuple[str, ...] = ()
    """--ignore patterns that actually hid a difference."""
    changed_requests: tuple[Divergence, ...] = ()
    tool_output_differences: tuple[ToolOutputDifference, ...] = ()
    output_path: str | None = None
    unused_masks: tuple[str, ...] = ()
    torn: bool = False
    """The file's cut-off last line was left out."""
    workspace: str | None = None
    """Where live tools (and a fork's live part) ran."""
    sandbox_notice: str | None = None
    not_rerun: int = 0
    """Recorded calls that needed approval to re-run here and did not get it."""

    @property
    def ok(self) -> bool:
        return self.status in ("identical", "reblessed", "forked")

    def as_json(self) -> dict[str, Any]:
        return cast(dict[str, Any], _as_json(self))


def _as_json(value: Any) -> Any:
    if attrs.has(type(value)) and not type(value).__module__.startswith("nano_code.kernel"):
        return {f.name: _as_json(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, Difference):
        return {"path": value.path, "recorded": value.recorded, "new": value.actual}
    if isinstance(value, Usage):
        data = {k: v for k, v in to_json(value).items() if k != "type"}
        if isinstance(data.get("cost"), float):
            data["cost"] = round(data["cost"], 10)  # a sum of server-reported costs, not 0.0272000...02
        return data
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    return value
