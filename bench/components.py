"""Per-step costs of nano-code's pieces at a given history length, timed in-process.

The kernel state is rebuilt from a recorded cassette (so the history is the
real one), then each piece that runs once per step is timed on it: building
the request body from the history, encoding it, the recorder turning the
exchange into a line, and so on. Used by run_all.py to explain how the per-step
gap grows with the session.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _time(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_costs(cassette: Path, repeat: int = 15) -> dict[str, Any]:
    from nano_code.adapters.body_encoder import encode_body
    from nano_code.adapters.model_client import Exchange
    from nano_code.adapters.recorder import interaction_record
    from nano_code.adapters.secrets import Redactor
    from nano_code.adapters.session_file import _YAML_UNSAFE, dump_line, load_session
    from nano_code.kernel.request import build_request
    from nano_code.kernel.turn import used_call_ids
    from nano_code.kernel.types import ToolMessage
    from nano_code.session.recording import rebuild_state
    from nano_code.session.settings import kernel_config

    session = load_session(cassette)
    config = kernel_config(session.metadata["settings"], session.metadata.get("agents_md"))
    state = rebuild_state(session, config)
    history = state.history
    body = build_request(config, history)
    payload = encode_body(body)
    from nano_code.adapters.body_encoder import _BodyEncoder
    from nano_code.adapters.session_file import shared_ends
    from nano_code.kernel.request import RequestBody

    encoder = _BodyEncoder()
    previous_payload = encoder.encode(RequestBody(config, history[:-1]))  # the step before: messages cached

    def encode_next() -> bytes:
        return encoder.encode(RequestBody(config, history))

    assert encode_next() == payload
    previous_text, text = previous_payload.decode(), payload.decode()
    last = session.interactions[-1]
    exchange = Exchange(
        method="POST",
        uri="http://127.0.0.1/v1/chat/completions",
        request_headers={"Content-Type": "application/json"},
        request_body=payload,
        status=200,
        reason="OK",
        response_headers={"Content-Type": "application/json"},
        response_body=last["response"]["body"]["string"].encode(),
    )
    redactor = Redactor(None)
    redactor_with_key = Redactor("sk-bench-0123456789abcdef")
    full_record = interaction_record(exchange, redactor, {"t_ms": 1})
    prefix, suffix = shared_ends(previous_text, text)
    # What the writer stores: the body as what it adds to the previous one (format 2).
    record = {
        **full_record,
        "request": {**full_record["request"], "body": None},
        "nano_code": {"t_ms": 1, "body_delta": [prefix, suffix, text[prefix : len(text) - suffix]]},
    }
    line = dump_line(record)
    plain = json.dumps(record, ensure_ascii=False)
    from nano_code.kernel.actions import RunTool
    from nano_code.kernel.events import ToolResult, UserInput
    from nano_code.kernel.machine import transition
    from nano_code.session.recording import response_event

    waiting, _ = transition(state, UserInput("more"))
    reply = response_event(session.interactions[-2])  # a reply that calls shell

    def kernel_step() -> None:
        after_reply, actions = transition(waiting, reply)
        run = next(a for a in actions if isinstance(a, RunTool))
        transition(after_reply, ToolResult(call_id=run.call.id, output="hi\n", is_error=False, exit_status=0))

    import attrs

    costs = {
        "history messages": len(history),
        "kernel: one whole step (ModelReply + ToolResult transitions)": _time(kernel_step, repeat),
        "kernel: one attrs.evolve(state) (validators walk the history)": _time(
            lambda: attrs.evolve(state, attempt=1), repeat
        ),
        "request body bytes": len(payload),
        "kernel: build_request (messages -> dicts; now only when a body is read as a dict)": _time(
            lambda: build_request(config, history), repeat
        ),
        "kernel: used_call_ids(history)": _time(lambda: used_call_ids(history), repeat),
        "kernel: history tuple copy + 1": _time(lambda: (*history, ToolMessage("x", "y")), repeat),
        "client: json.dumps of the whole body (the floor's way, and nano-code's before)": _time(
            lambda: json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), repeat
        ),
        "client: encode the body from per-message pieces (what a step pays now)": _time(encode_next, repeat),
        "recorder: shared_ends (the body stored as what it adds)": _time(
            lambda: shared_ends(previous_text, text), repeat
        ),
        "recorder: interaction_record (no key)": _time(
            lambda: interaction_record(exchange, redactor, {}), repeat
        ),
        "recorder: interaction_record (with a key to scrub)": _time(
            lambda: interaction_record(exchange, redactor_with_key, {}), repeat
        ),
        "recorder: json.dumps of the stored record (body as its delta)": _time(
            lambda: json.dumps(record, ensure_ascii=False), repeat
        ),
        "recorder: _YAML_UNSAFE.sub over the line": _time(lambda: _YAML_UNSAFE.sub("", plain), repeat),
        "recorder: dump_line (dumps + sub)": _time(lambda: dump_line(record), repeat),
        "recorder: secret check of the line (with a key)": _time(
            lambda: redactor_with_key.check(line), repeat
        ),
    }
    with tempfile.TemporaryFile("w", encoding="utf-8") as handle:

        def write() -> None:
            handle.write(line + "\n")
            handle.flush()

        costs["recorder: write + flush the line"] = _time(write, repeat)
    costs["line bytes"] = len(line.encode())
    return costs
