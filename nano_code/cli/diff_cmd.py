"""`nano-code diff A B`: two recorded sessions aligned step by step."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from nano_code.adapters.safe_text import json_text
from nano_code.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, say


def comparable_steps(session: Any) -> list[tuple[str, int, Any]]:
    """(label, file line, comparable JSON) for every step that is not bookkeeping."""
    from nano_code.adapters.journal import CallWithoutResponse, EventEntry, entry_json
    from nano_code.kernel.serialize import to_json
    from nano_code.session.replay import response_event

    steps: list[tuple[str, int, Any]] = []
    bodies = session.request_bodies()
    for record in session.records:
        if record.kind == "interaction":
            body = next(bodies)
            try:
                request = json.loads(body) if isinstance(body, str) else body
            except ValueError:
                request = body
            reply = to_json(response_event(record.data))
            steps.append(("model call", record.line, {"request": request, "reply": reply}))
            continue
        entry = record.entry
        if isinstance(entry, CallWithoutResponse):
            steps.append(
                ("model call", record.line, {"request": dict(entry.request), "reply": to_json(entry.event)})
            )
        elif isinstance(entry, EventEntry):
            data = entry_json(entry)
            label = type(entry.event).__name__
            steps.append((label, record.line, {"event": data["event"], "call": data.get("call")}))
    return steps


def _steps_of(session: Any) -> list[tuple[str, int, Any]]:
    from nano_code.adapters.session_file import SessionFileError

    try:
        return comparable_steps(session)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as error:
        raise SessionFileError(
            f"{session.path}: a record has an unexpected shape ({type(error).__name__}: {error})"
        ) from error


def diff_sessions(path_a: str, path_b: str, ignore: Sequence[str] = ()) -> dict[str, Any]:
    from nano_code.adapters.session_file import load_session
    from nano_code.kernel.jsondiff import Mask, differences

    a, b = load_session(path_a), load_session(path_b)
    steps_a, steps_b = _steps_of(a), _steps_of(b)
    masks = [Mask.parse(p) for p in ignore]
    prefix = 0
    first: dict[str, Any] | None = None
    for (label_a, line_a, value_a), (label_b, line_b, value_b) in zip(steps_a, steps_b, strict=False):
        found, _ = differences(value_a, value_b, masks)
        if label_a == label_b and not found:
            prefix += 1
            continue
        first = {
            "step": prefix + 1,
            "a": {"kind": label_a, "line": line_a},
            "b": {"kind": label_b, "line": line_b},
            "differences": [{"path": d.path, "a": d.recorded, "b": d.actual} for d in found],
        }
        break
    if first is None and len(steps_a) != len(steps_b):
        longer = "a" if len(steps_a) > len(steps_b) else "b"
        extra = (steps_a if longer == "a" else steps_b)[prefix]
        first = {"step": prefix + 1, "only_in": longer, "kind": extra[0], "line": extra[1], "differences": []}
    tokens_a, cost_a = a.totals()
    tokens_b, cost_b = b.totals()
    return {
        "a": path_a,
        "b": path_b,
        "steps": [len(steps_a), len(steps_b)],
        "identical_prefix": prefix,
        "identical": first is None,
        "first_divergence": first,
        "tokens": [tokens_a, tokens_b],
        "tokens_delta": tokens_b - tokens_a,
        "cost": [cost_a, cost_b],
        "cost_delta": None if cost_a is None and cost_b is None else (cost_b or 0.0) - (cost_a or 0.0),
    }


def diff_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nano-code diff", description="Compare two recorded sessions step by step."
    )
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--ignore", action="append", default=[], metavar="JSONPATH")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from nano_code.adapters.session_file import SessionFileError
    from nano_code.kernel.jsondiff import MaskError

    try:
        result = diff_sessions(args.a, args.b, args.ignore)
    except (SessionFileError, MaskError) as error:
        say(f"nano-code diff: {error}", err=True)
        return EXIT_USAGE
    if args.json:
        say(json_text(result))
        return EXIT_OK if result["identical"] else EXIT_FAILED
    say(f"A: {args.a} ({result['steps'][0]} steps)\nB: {args.b} ({result['steps'][1]} steps)")
    say(f"identical prefix: {result['identical_prefix']} steps")
    first = result["first_divergence"]
    if first is None:
        say("the sessions are identical")
    elif "only_in" in first:
        say(
            f"step {first['step']}: only {first['only_in'].upper()} continues ({first['kind']}, line {first['line']})"
        )
    else:
        say(
            f"first divergence at step {first['step']}: "
            f"A {first['a']['kind']} (line {first['a']['line']}) vs B {first['b']['kind']} (line {first['b']['line']})"
        )
        for difference in first["differences"][:20]:
            say(f"  {difference['path']}\n    A: {_short(difference['a'])}\n    B: {_short(difference['b'])}")
    say(f"tokens: {result['tokens'][0]:,} -> {result['tokens'][1]:,} ({result['tokens_delta']:+,})")
    if result["cost_delta"] is not None:
        say(f"cost: {result['cost_delta']:+.4f} USD")
    return EXIT_OK if result["identical"] else EXIT_FAILED


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 150 else text[:140] + "..."
