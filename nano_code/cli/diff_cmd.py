"""`nano-code diff A B`: two recorded sessions aligned step by step."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from nano_code.adapters.safe_text import json_text
from nano_code.cli.exits import EXIT_FAILED, EXIT_OK, say, usage_error

if TYPE_CHECKING:
    from nano_code.session.divergence import Masks


@attrs.frozen
class Step:
    """One record two sessions are compared by: a model call (its `request` and decoded reply as
    `value`) or a journalled event (`kind` its type, `value` the event and the call it answered).
    `step` is the model call it belongs to, as replay numbers them; a user's input leads into the next."""

    kind: str
    line: int
    step: int
    request: Any = None
    value: Any = None


def comparable_steps(session: Any) -> list[Step]:
    """Every record that is not bookkeeping, in order; SessionFileError for one of an unexpected shape."""
    from nano_code.adapters.journal import CallWithoutResponse, EventEntry, entry_json
    from nano_code.adapters.session_file import SessionFileError
    from nano_code.kernel.events import UserInput
    from nano_code.kernel.serialize import to_json
    from nano_code.session.cassette import json_body
    from nano_code.session.recording import response_event

    steps: list[Step] = []
    calls = 0
    bodies = session.request_bodies()
    try:
        for record in session.records:
            if record.kind == "interaction":
                calls += 1
                reply = to_json(response_event(record.data))
                steps.append(Step("model call", record.line, calls, json_body(next(bodies)), reply))
            elif isinstance(entry := record.entry, CallWithoutResponse):
                calls += 1
                reply = to_json(entry.event)
                steps.append(Step("model call", record.line, calls, dict(entry.request), reply))
            elif isinstance(entry, EventEntry):
                data = entry_json(entry)
                step = calls + 1 if isinstance(entry.event, UserInput) else max(calls, 1)
                value = {"event": data["event"], "call": data.get("call")}
                steps.append(Step(type(entry.event).__name__, record.line, step, None, value))
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as error:
        why = f"a record has an unexpected shape ({type(error).__name__}: {error})"
        raise SessionFileError(f"{session.path}: {why}") from error
    return steps


def _compare(a: Step, b: Step, masks: Masks) -> list[Any]:
    from nano_code.kernel.jsondiff import Difference, differences

    if a.kind == "model call" and b.kind == "model call":
        in_request, _ = differences(a.request, b.request, masks.request)
        in_reply, _ = differences(a.value, b.value, masks.other)
        return in_request + [Difference("$.reply" + d.path[1:], d.recorded, d.actual) for d in in_reply]
    found, _ = differences(a.value, b.value, masks.other)
    return found


def diff_sessions(path_a: str, path_b: str, ignore: Sequence[str] = ()) -> dict[str, Any]:
    from nano_code.adapters.session_file import load_session
    from nano_code.session.divergence import Masks

    sessions = [load_session(path_a), load_session(path_b)]
    steps_a, steps_b = (comparable_steps(session) for session in sessions)
    masks = Masks.parse(ignore)
    first: dict[str, Any] | None = None
    for step_a, step_b in zip(steps_a, steps_b, strict=False):
        found = _compare(step_a, step_b, masks) if step_a.kind == step_b.kind else []
        if step_a.kind != step_b.kind or found:
            first = {
                "step": step_a.step,
                "a": {"kind": step_a.kind, "line": step_a.line},
                "b": {"kind": step_b.kind, "line": step_b.line},
                "differences": [{"path": d.path, "a": d.recorded, "b": d.actual} for d in found],
            }
            break
    shared = min(len(steps_a), len(steps_b))
    if first is None and len(steps_a) != len(steps_b):
        longer, extra = ("a", steps_a[shared]) if len(steps_a) > shared else ("b", steps_b[shared])
        first = dict(step=extra.step, only_in=longer, kind=extra.kind, line=extra.line, differences=[])
    calls = [sum(step.kind == "model call" for step in steps) for steps in (steps_a, steps_b)]
    (tokens_a, cost_a), (tokens_b, cost_b) = (session.totals() for session in sessions)
    no_cost = cost_a is None and cost_b is None
    return {
        "a": path_a,
        "b": path_b,
        "steps": calls,
        "records": [len(steps_a), len(steps_b)],
        "identical_prefix": (first["step"] - 1) if first is not None else min(calls),
        "identical": first is None,
        "first_divergence": first,
        "tokens": [tokens_a, tokens_b],
        "tokens_delta": tokens_b - tokens_a,
        "cost": [cost_a, cost_b],
        "cost_delta": None if no_cost else round((cost_b or 0.0) - (cost_a or 0.0), 10),
    }


def diff_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="nano-code diff", description="Compare two recorded sessions.")
    add = parser.add_argument
    add("a")
    add("b")
    add("--ignore", action="append", default=[], metavar="JSONPATH", help="as replay --ignore")
    add("--json", action="store_true")
    args = parser.parse_args(argv)
    from nano_code.adapters.session_file import SessionFileError
    from nano_code.kernel.jsondiff import Difference, MaskError, render

    try:
        result = diff_sessions(args.a, args.b, args.ignore)
    except (SessionFileError, MaskError) as error:
        return usage_error(f"nano-code diff: {error}")
    if args.json:
        say(json_text(result))
        return EXIT_OK if result["identical"] else EXIT_FAILED
    steps, first = result["steps"], result["first_divergence"]
    say(f"A: {args.a} ({steps[0]} steps)\nB: {args.b} ({steps[1]} steps)")
    say(f"identical prefix: {result['identical_prefix']} steps")
    if first is None:
        say("the sessions are identical")
    elif "only_in" in first:
        longer = first["only_in"].upper()
        say(f"step {first['step']}: only {longer} continues ({first['kind']}, line {first['line']})")
    else:
        a, b = first["a"], first["b"]
        say(
            f"first divergence at step {first['step']}: "
            f"A {a['kind']} (line {a['line']}) vs B {b['kind']} (line {b['line']})"
        )
        shown = [Difference(d["path"], d["a"], d["b"]) for d in first["differences"][:20]]
        if shown:
            say(render(shown, labels=("A", "B")))
    say(f"tokens: {result['tokens'][0]:,} -> {result['tokens'][1]:,} ({result['tokens_delta']:+,})")
    if result["cost_delta"] is not None:
        say(f"cost: {result['cost_delta']:+.4f} USD")
    return EXIT_OK if result["identical"] else EXIT_FAILED
