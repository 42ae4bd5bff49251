"""The architecture guide's phase diagram is exactly what `machine.phase_diagram()` draws from PHASE_TABLE."""

from __future__ import annotations

import re
from pathlib import Path

from nano_code.kernel.machine import PHASE_TABLE, phase_diagram
from nano_code.kernel.state import Phase

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
START = "<!-- phase-diagram:start -->"
END = "<!-- phase-diagram:end -->"


def test_the_architecture_guide_embeds_the_generated_diagram() -> None:
    assert GUIDE.exists(), f"{GUIDE} is missing; it must embed the phase diagram"
    text = GUIDE.read_text()
    assert START in text and END in text, f"docs/architecture.md lacks the {START} ... {END} markers"
    embedded = text.split(START, 1)[1].split(END, 1)[0].strip()
    expected = f"```mermaid\n{phase_diagram()}\n```"
    assert embedded == expected, (
        "docs/architecture.md's phase diagram is out of date; paste the output of "
        "`python -c 'from nano_code.kernel.machine import phase_diagram; print(phase_diagram())'` "
        "inside the ```mermaid fence between the markers"
    )


def test_diagram_has_one_edge_per_table_entry_and_nothing_else() -> None:
    lines = phase_diagram().splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert lines[1].strip() == f"[*] --> {Phase.AWAITING_USER.name}"
    edges = {tuple(re.fullmatch(r"\s*(\w+) --> (\w+): (\w+)", line).groups()) for line in lines[2:]}  # type: ignore[union-attr]
    expected = {
        (phase.name, target.name, event.__name__)
        for phase, handlers in PHASE_TABLE.items()
        for event, (_handler, targets) in handlers.items()
        for target in targets
    }
    assert edges == expected
    assert len(lines) - 2 == len(expected), "an edge is drawn twice"


def test_every_phase_is_in_the_table_and_accepts_interrupt() -> None:
    from nano_code.kernel.events import Interrupt

    assert set(PHASE_TABLE) == set(Phase)
    for phase, handlers in PHASE_TABLE.items():
        assert Interrupt in handlers, f"{phase} cannot be interrupted"
