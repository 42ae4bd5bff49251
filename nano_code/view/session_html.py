"""One session's timeline as HTML: its facts, then prompts, steps with their tool calls,
notices and turn ends, in order. Every value goes through view/text.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nano_code.kernel.types import USAGE_COUNTS
from nano_code.view.text import block, json_value, money, number, preview, seconds, text
from nano_code.view.timeline import CallView, Notice, Prompt, Step, Timeline, TurnEnded

_NOTICE_LABELS = {"notice": "notice", "warning": "warning", "error": "error", "setting": "note"}
_INLINE_CHARS = 200
SEPARATOR = " \u00b7 "


def step_anchor(anchor: str, step: object) -> str:
    return f"{anchor}-step-{step}"


def tokens_text(row: Mapping[str, Any]) -> str:
    """Tokens of a step or a session: the total, then what it is made of (cache reads and writes)."""
    total = row.get("total_tokens") or 0
    if not total and not row.get("prompt_tokens"):
        return ""
    parts = [f"prompt {number(row.get('prompt_tokens') or 0)}"]
    for column, label in (("cached_tokens", "cache read"), ("cache_write_tokens", "cache write")):
        if row.get(column):
            parts.append(f"{label} {number(row[column])}")
    parts.append(f"completion {number(row.get('completion_tokens') or 0)}")
    if row.get("reasoning_tokens"):
        parts.append(f"reasoning {number(row['reasoning_tokens'])}")
    return f"{number(total)} tokens ({', '.join(parts)})"


def facts(pairs: list[tuple[str, str]]) -> str:
    """A definition list of (label, HTML) pairs; the values are HTML already."""
    rows = "".join(f"<dt>{text(label)}</dt><dd>{value}</dd>" for label, value in pairs if value)
    return f'<dl class="facts">{rows}</dl>'


def session_facts(timeline: Timeline) -> list[tuple[str, str]]:
    """The session's header lines: file, model, outcome, totals, settings that shaped it."""
    row, metadata = timeline.overview, timeline.session.metadata
    settings = metadata.get("settings") if isinstance(metadata.get("settings"), Mapping) else {}
    assert isinstance(settings, Mapping)
    turns = f"{row['n_steps']} model calls, {row['n_turns']} turn(s), {row['n_tool_calls']} tool call(s)"
    time = seconds(row["duration_ms"])
    if time:
        time += f" (model {seconds(row['model_ms'])}, tools {seconds(row['tool_ms'])})"
    pairs = [
        ("file", text(row["path"])),
        ("model", text(row["model"])),
        (
            "last turn",
            f'<span class="{text(_outcome_class(row["outcome"]))}">{text(row["outcome"] or "none")}</span>',
        ),
        ("steps", text(turns)),
        ("tokens", text(tokens_text(row))),
        ("cost", text(money(row["cost"]))),
        ("time", text(time)),
        (
            "approval",
            text(
                "every call approved (--yes)"
                if settings.get("auto_approve")
                else "asked when needed (no --yes)"
            ),
        ),
        ("sandbox", text(_sandbox_text(metadata.get("sandbox"), settings))),
        ("created", text(f"{row['created']} by nano-code {row['nano_code_version']}")),
        ("origin", text(row["origin"])),
        ("session id", text(row["session_id"])),
    ]
    if row["torn"]:
        pairs.append(("torn", text("the last line was cut off while written (a crash) and is left out")))
    if row["unreadable_records"]:
        pairs.append(("unreadable", text(f"{row['unreadable_records']} journal record(s) could not be read")))
    return pairs


def _sandbox_text(provenance: object, settings: Mapping[str, Any]) -> str:
    if isinstance(provenance, Mapping):
        if not provenance.get("in_force"):
            return f"off (asked for: {provenance.get('requested')})"
        network = "on" if provenance.get("network") else "off"
        return f"{provenance.get('mode')}, network {network} ({provenance.get('mechanism')})"
    return str(settings.get("sandbox") or "off")


def _outcome_class(outcome: object) -> str:
    return {"completed": "pass", "": "muted", "unfinished": "muted"}.get(str(outcome or ""), "fail")


def timeline_html(timeline: Timeline, anchor: str) -> str:
    """The timeline's items as an ordered list."""
    out = ['<ol class="timeline">']
    for item in timeline.items:
        if isinstance(item, Step):
            out.append(_step(item, anchor))
        elif isinstance(item, Prompt):
            who = {"prompt": "user", "compact": "user: compact", "clear": "user: clear"}[item.kind]
            out.append(f'<li class="prompt"><div class="who">{who}</div>{block(item.text)}</li>')
        elif isinstance(item, Notice):
            label = _NOTICE_LABELS.get(item.kind, item.kind)
            out.append(
                f'<li class="note {text(item.kind)}"><span class="who">{text(label)}</span> '
                f"{_inline_or_block(item.text)}</li>"
            )
        elif isinstance(item, TurnEnded):
            out.append(_turn_end(item))
    out.append("</ol>")
    return "".join(out)


def _inline_or_block(value: str) -> str:
    if len(value) <= _INLINE_CHARS and "\n" not in value:
        return text(value)
    return block(value)


def _turn_end(item: TurnEnded) -> str:
    end = item.end
    usage = end.usage
    parts = [f"turn ended: {end.reason.value}"]
    if end.detail:
        parts.append(end.detail)
    tokens = tokens_text({name: getattr(usage, name) for name in USAGE_COUNTS})
    if tokens:
        parts.append(tokens)
    if usage.cost is not None:
        parts.append(money(usage.cost))
    return f'<li class="end {text(end.reason.value)}">{_inline_or_block(SEPARATOR.join(parts))}</li>'


def _step(step: Step, anchor: str) -> str:
    row = step.row
    number_shown = row.get("step", "?")
    own = step_anchor(anchor, number_shown if "step" in row else f"l{step.line}")
    classes = "step" + (" summary" if step.summary else "") + (" failed" if step.failure else "")
    out = [f'<li class="{classes}" id="{text(own)}">']
    if step.forked_here:
        out.append(
            '<div class="forked">the fork goes live here: the steps before this one are its parent\u2019s, replayed</div>'
        )
    head = [f'<a class="num" href="#{text(own)}">step {text(number_shown)}</a>']
    if row.get("turn") is not None:
        head.append(f"turn {row['turn']}, its step {row.get('turn_step')}")
    if (row.get("attempt") or 1) > 1:
        head.append(f"attempt {row['attempt']}")
    if step.summary:
        head.append("compaction: the summary of the older conversation")
    for piece in (
        row.get("model") or "",
        tokens_text(row),
        money(row.get("cost")),
        seconds(row.get("duration_ms")),
        f"finish: {row['finish_reason']}" if row.get("finish_reason") else "",
    ):
        if piece:
            head.append(text(piece))
    out.append(f'<div class="head">{SEPARATOR.join(head)}</div>')
    out.append(_step_body(step))
    out.append("</li>")
    return "".join(out)


def _step_body(step: Step) -> str:
    out: list[str] = []
    reply = step.reply
    if reply is not None:
        if reply.reasoning:
            out.append(
                f'<details class="reasoning"><summary>reasoning ({len(reply.reasoning):,} characters)</summary>'
                f"{block(reply.reasoning, fold=False)}</details>"
            )
        if reply.content:
            out.append(block(reply.content, "reply"))
        elif not reply.tool_calls:
            out.append('<div class="muted">(an empty reply)</div>')
    if step.failure is not None:
        failure = step.failure
        status = f" (HTTP {failure.status})" if failure.status is not None else ""
        out.append(f'<div class="failure">failed: {text(failure.kind.value)}{text(status)}</div>')
        out.append(block(failure.message, "failure"))
    if step.interrupted:
        out.append('<div class="failure">interrupted (Ctrl-C) while waiting for the model</div>')
    if step.unreadable:
        out.append(f'<div class="failure">{text(step.unreadable)}</div>')
    if step.calls:
        out.append('<ol class="calls">')
        out.extend(_call(call) for call in step.calls)
        out.append("</ol>")
    return "".join(out)


def _call_status(call: CallView) -> tuple[str, str]:
    """(css class, text) of how a call ended."""
    if call.refused is not None:
        return "refused", "refused: never run"
    if call.verdict == "deny":
        return "denied", "denied by the user"
    if call.interrupted:
        return "bad", "interrupted"
    if call.output is None:
        return "bad", "no result recorded"
    when = f" \u00b7 {seconds(call.duration_ms)}" if call.duration_ms is not None else ""
    if call.is_error:
        return "bad", "error" + when
    if call.exit_status not in (None, 0):
        return "bad", f"exit status {call.exit_status}{when}"
    return "ok", ("exit status 0" if call.exit_status == 0 else "ok") + when


def _call(call: CallView) -> str:
    css, status = _call_status(call)
    arguments = call.arguments
    first = next(iter(arguments.values()), "") if isinstance(arguments, Mapping) and arguments else ""
    out = [
        f'<li class="call {css}"><div class="call-head"><span class="status">{text(status)}</span>'
        f'<span class="name">{text(call.name)}</span> <code>{text(preview(json_value(first)))}</code></div>'
    ]
    out.append(_arguments(arguments))
    approval = _approval(call)
    if approval:
        out.append(f'<div class="approval">{text(approval)}</div>')
    if call.refused is not None:
        out.append(block(call.refused, "failure", label="told the model"))
    if call.output is not None:
        out.append(
            block(call.output, "output", label="output")
            if call.output
            else '<div class="muted">(no output)</div>'
        )
    out.append("</li>")
    return "".join(out)


def _arguments(arguments: Any) -> str:
    if not isinstance(arguments, Mapping):
        return block(json_value(arguments), label="arguments")
    if not arguments:
        return ""
    rows = []
    for key, value in arguments.items():
        shown = json_value(value)
        inline = len(shown) <= _INLINE_CHARS and "\n" not in shown
        rows.append(
            f"<dt>{text(key)}</dt><dd>{f'<code>{text(shown)}</code>' if inline else block(shown, label=str(key))}</dd>"
        )
    return f'<dl class="args">{"".join(rows)}</dl>'


def _approval(call: CallView) -> str:
    where = ""
    if call.inside_workspace is not None:
        where = (
            "; its path is inside the workspace"
            if call.inside_workspace
            else "; its path leads outside the workspace"
        )
    if call.asked is not None:
        verdict = {"approve": "approved", "deny": "denied", "always": "approved for the rest of the session"}
        answer = verdict.get(call.verdict or "", "no answer recorded")
        reason = f" ({call.verdict_reason})" if call.verdict_reason else ""
        return f"approval asked because {call.asked}{where}: {answer}{reason}"
    if call.verdict is not None:
        return f"approval: {call.verdict}{where}"
    if call.ran:
        why = f" ({call.unasked_because})" if call.unasked_because else ""
        return f"ran without asking{why}{where}"
    return where.lstrip("; ")
