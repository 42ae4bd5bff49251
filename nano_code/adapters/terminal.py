"""What the user sees and answers: streamed text, tool lines, approvals, a waiting indicator.

Assistant text goes to stdout, everything else to stderr (`-p ... > answer.txt`
captures the answer); `--json` puts one object per event and action on stdout.
All untrusted text is redacted, then passes `safe_text.for_terminal`. Colour only on a
terminal, never with NO_COLOR. The approval prompt is `approval_prompt`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from nano_code.adapters.safe_text import for_terminal, json_text
from nano_code.adapters.threads import background_thread
from nano_code.kernel.actions import (
    Action,
    CallModel,
    CallPurpose,
    EndTurn,
    RetryModel,
    RunTool,
    ShowText,
    TextKind,
    TurnEnd,
)
from nano_code.kernel.events import (
    ApprovalDecision,
    Event,
    FailureKind,
    Interrupt,
    ModelFailure,
    ModelReply,
    ToolResult,
    UserInput,
    Verdict,
)
from nano_code.kernel.serialize import to_json
from nano_code.kernel.state import State
from nano_code.kernel.stream import StreamDelta
from nano_code.kernel.types import Usage


def _is_regular_file(stream: TextIO) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, ValueError, OSError):
        return False  # io.StringIO and the like


def colour_enabled(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _sgr(code: str) -> Callable[[Style, str], str]:
    def wrap(self: Style, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    return wrap


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    dim, bold, red, yellow, cyan = _sgr("2"), _sgr("1"), _sgr("31"), _sgr("33"), _sgr("36")


def _put(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()


def cache_note(usage: Usage) -> str:
    """What the prompt cache did, as " (N read from cache, M written)"; "" when nothing."""
    parts = [f"{usage.cached_tokens:,} read from cache"] if usage.cached_tokens else []
    if usage.cache_write_tokens:
        parts.append(
            f"{usage.cache_write_tokens:,} written"
            if parts
            else f"{usage.cache_write_tokens:,} written to cache"
        )
    return f" ({', '.join(parts)})" if parts else ""


def usage_line(usage: Usage) -> str:
    line = f"tokens: {usage.prompt_tokens:,} in{cache_note(usage)} / {usage.completion_tokens:,} out"
    if usage.cost is not None:
        line += f" · ${usage.cost:.4f}"
    return line


class Spinner:
    """'thinking 2.4s' on stderr while the model works; terminal only."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, out: TextIO, style: Style) -> None:
        self._out = out
        self._style = style
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, label: str) -> None:
        self.stop()
        self._stop = threading.Event()
        stop = self._stop
        self._thread = background_thread(lambda: self._spin(label, stop), "nano-code spinner")
        self._thread.start()

    def _spin(self, label: str, stop: threading.Event) -> None:
        started = time.monotonic()
        frame = 0
        while not stop.wait(0.1):
            elapsed = time.monotonic() - started
            text = f"{self.FRAMES[frame % len(self.FRAMES)]} {label} {elapsed:.1f}s"
            _put(self._out, "\r" + self._style.dim(text) + "\033[K")
            frame += 1

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            _put(self._out, "\r\033[K")


class _HeldBack:
    """Streamed text held back just long enough that the key, split across pieces, is
    redacted whole (`holdback` is its length less one), and a CR-LF is not split."""

    def __init__(self, redact: Callable[[str], str], holdback: int) -> None:
        self.redact = redact
        self.holdback = holdback
        self.text = ""

    def release(self, piece: str, final: bool = False, hold_all: bool = False) -> str:
        """What of the held text (with `piece` added) can be shown now, redacted."""
        self.text = self.redact(self.text + piece)
        if final:
            cut = len(self.text)
        elif hold_all:
            cut = 0
        else:
            cut = max(0, len(self.text) - self.holdback)
            if cut and self.text[cut - 1] == "\r":
                cut -= 1  # a CR-LF split across pieces: wait for the LF
        released, self.text = self.text[:cut], self.text[cut:]
        return released


class HumanDisplay:
    """The transcript a person reads. An Observer of the driver, plus stream deltas."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        describe_call: Callable[[str, Any], str],
        redact: Callable[[str], str] = lambda text: text,
        live: bool | None = None,
        echo_input: bool = False,
        failure_hints: Mapping[FailureKind, str] | None = None,
        holdback: int = 0,
    ) -> None:
        self.out = out
        self.err = err
        self.style = Style(colour_enabled(err))
        self._describe_call = describe_call
        self.redact = redact
        self._held = _HeldBack(redact, holdback)
        self._held_reasoning = _HeldBack(redact, holdback)
        self._hold_whole_reply = _is_regular_file(out)  # a file gets a reply only once it is complete
        self._streamed_text = False
        self._summarising = False  # the call in flight writes a compaction summary: nothing is shown
        self._live = err.isatty() if live is None else live
        self._spinner = Spinner(err, self.style) if self._live else None
        self._text_open = False
        self._reasoning_open = False
        self._echo_input = echo_input
        self._failure_hints = dict(failure_hints or {})
        self._last_failure: FailureKind | None = None

    # -- streaming

    def on_delta(self, delta: StreamDelta) -> None:
        if self._summarising:
            return  # a summary for the kernel, not an answer for the user: the spinner goes on
        self._stop_spinner()
        if delta.kind == "text":
            self._close_reasoning()
            self._streamed_text = True
            self._write_text(delta.text)
        elif delta.kind == "reasoning" and self._live:
            self._write_reasoning(delta.text)
            self._reasoning_open = True

    def _write_reasoning(self, text: str, final: bool = False) -> None:
        released = self._held_reasoning.release(text, final)
        if released:
            _put(self.err, self.style.dim(for_terminal(released)))

    def _write_text(self, text: str, final: bool = False) -> None:
        released = self._held.release(text, final, hold_all=self._hold_whole_reply)
        if released:
            _put(self.out, for_terminal(released))
            self._text_open = True

    def _close_reasoning(self) -> None:
        if self._held_reasoning.text:
            self._write_reasoning("", final=True)
        if self._reasoning_open:
            self.err.write("\n")
            self._reasoning_open = False

    def _close_text(self) -> None:
        self._close_reasoning()
        if self._held.text:
            self._write_text("", final=True)
        if self._text_open:
            _put(self.out, "\n")
            self._text_open = False

    def _stop_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()

    def notice(self, text: str, kind: TextKind = TextKind.NOTICE) -> None:
        self._stop_spinner()
        self._close_text()
        text = for_terminal(self.redact(text))
        if kind is TextKind.WARNING:
            text = self.style.yellow(text)
        elif kind is TextKind.NOTICE:
            text = self.style.dim(text)
        _put(self.err, text + "\n")

    def error(self, text: str) -> None:
        self._stop_spinner()
        self._close_text()
        _put(self.err, self.style.red(for_terminal(self.redact(text))) + "\n")

    # -- observer

    def on_action(self, action: Action, state: State) -> None:
        if isinstance(action, (CallModel, RetryModel)):
            self._streamed_text = False
            self._summarising = action.purpose is CallPurpose.SUMMARY
            if self._spinner is not None:
                self._spinner.start("compacting" if self._summarising else "thinking")
        elif isinstance(action, RunTool):
            self._close_text()
            arguments = {
                key: self.redact(value) if isinstance(value, str) else value
                for key, value in action.arguments.items()
            }  # redacted before the summary cuts it
            line = self.redact(self._describe_call(action.call.name, arguments))
            name = for_terminal(action.call.name)
            _put(self.err, self.style.cyan("● ") + self.style.bold(name) + " " + for_terminal(line) + "\n")
            if self._spinner is not None:
                self._spinner.start("running")
        elif isinstance(action, ShowText):
            if action.kind is TextKind.ASSISTANT:
                self._stop_spinner()
                _put(self.out, for_terminal(self.redact(action.text)).rstrip("\n") + "\n")
            else:
                self.notice(action.text, action.kind)
        elif isinstance(action, EndTurn):
            self._stop_spinner()
            self._close_text()
            if action.reason is TurnEnd.FAILED:
                hint = self._failure_hints.get(self._last_failure) if self._last_failure else None
                self.error(f"error: {action.detail}" + (f" -- {hint}" if hint else ""))
            elif action.reason is TurnEnd.STEP_BUDGET:
                self.notice(f"stopped: {action.detail}", TextKind.WARNING)
            elif action.reason is TurnEnd.INTERRUPTED:
                self.notice("interrupted", TextKind.WARNING)
            elif action.detail:
                self.notice(action.detail, TextKind.WARNING)
            if action.usage.total_tokens or action.usage.cost is not None:
                self.notice(usage_line(action.usage))

    def on_event(self, event: Event, state: State) -> None:
        if isinstance(event, UserInput) and self._echo_input:
            _put(self.out, self.style.bold("› " + for_terminal(self.redact(event.text.strip()))) + "\n")
        elif isinstance(event, (ModelReply, ModelFailure, Interrupt)):
            self._last_failure = event.kind if isinstance(event, ModelFailure) else None
            self._stop_spinner()
            if isinstance(event, ModelFailure):
                self._held.text = ""  # what a broken reply held back is dropped, never shown
                if self._text_open:
                    _put(self.out, self.style.dim(" [the reply broke off here]") + "\n")
                    self._text_open = False
            summary, self._summarising = self._summarising, False
            if isinstance(event, ModelReply) and not summary:
                if state.config.stream and not self._streamed_text and event.content:
                    # Asked to stream, the server sent one JSON body: nothing was shown yet.
                    self._write_text(event.content, final=True)
                self._close_text()
        elif isinstance(event, ToolResult):
            self._stop_spinner()
            lines = self.redact(event.output).strip().splitlines()  # redacted before it is cut
            first = lines[0][:120] if lines else "(no output)"
            more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
            status = ""
            if event.exit_status not in (None, 0):
                status = f" [exit {event.exit_status}]"
            mark = self.style.red("  └ ") if event.is_error else self.style.dim("  └ ")
            _put(self.err, mark + self.style.dim(for_terminal(self.redact(first)) + more + status) + "\n")
        elif isinstance(event, ApprovalDecision) and event.verdict is Verdict.DENY:
            reason = for_terminal(self.redact(event.reason or "denied"))
            _put(self.err, self.style.yellow(f"  └ not run: {reason}") + "\n")


_OWN_KIND = {"ShowText": "text_kind", "ModelFailure": "failure_kind"}
"""What --json calls a value's own `kind` field, which must not overwrite the event/action tag."""


class JsonLinesDisplay:
    """--json: one JSON object per kernel event and action on stdout, tagged "kind" ("event" or "action")."""

    def __init__(self, out: TextIO, redact: Callable[[str], str] = lambda text: text) -> None:
        self.out = out
        self.redact = redact

    def _write(self, kind: str, value: object) -> None:
        own_kind = _OWN_KIND.get(type(value).__name__, "value_kind")
        fields = {(own_kind if key == "kind" else key): item for key, item in to_json(value).items()}
        line = json_text({"kind": kind, **fields})
        _put(self.out, self.redact(line) + "\n")

    def on_event(self, event: Event, state: State) -> None:
        self._write("event", event)

    def on_action(self, action: Action, state: State) -> None:
        self._write("action", action)
