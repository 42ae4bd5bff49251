"""A whole view: one session, many, or an eval folder, as one self-contained HTML page.

Each session becomes a <section> of its own (`s1`, `s2`, ...; its steps `s1-step-4`). A page of
many sessions starts with an index (or the eval's tables) and shows one session at a time, the
one a link points at. A fork links its parent's step where it forked, and a parent its forks;
a fork's parent missing from the page is looked for where the fork's file says it was, and
added. Sessions are rendered one by one (only their HTML is kept), so time and memory grow with
the sessions' size; past `max_sessions` the rest are listed but not rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters.session_file import SessionFileError, load_session
from nano_code.view.eval_html import EvalDir, eval_html, outcome_class, read_eval_dir
from nano_code.view.page import page
from nano_code.view.session_html import facts, session_facts, step_anchor, timeline_html
from nano_code.view.text import money, number, text
from nano_code.view.timeline import session_timeline

DEFAULT_MAX_SESSIONS = 500
MAX_PARENTS = 32
"""The most parents looked for outside the given sessions (a chain of forks, or a loop)."""


@attrs.frozen
class View:
    html: str
    sessions: int  # rendered
    problems: tuple[str, ...]  # one line per file that could not be read


@attrs.define
class _Part:
    """One session's section: its HTML, and the facts that link it to the others."""

    anchor: str
    path: Path
    head: str = ""
    body: str = ""
    session_id: str = ""
    parent_id: str = ""
    parent_path: str = ""
    fork_at: int | None = None
    index_row: Mapping[str, Any] = attrs.Factory(dict)
    error: str = ""
    extra: list[tuple[str, str]] = attrs.Factory(list)  # more header lines: (label, HTML)
    more: bool = True  # hidden until a link points at it


def _part(path: Path, anchor: str) -> _Part:
    part = _Part(anchor=anchor, path=path)
    try:
        session = load_session(path)
        timeline = session_timeline(session)
    except SessionFileError as error:
        part.error = str(error)
    except Exception as error:  # a file is data: whatever it holds, this section says so
        part.error = f"{path}: not shown ({type(error).__name__}: {error})"
    if part.error:
        part.body = f'<p class="fail">{text(part.error)}</p>'
        return part
    overview = timeline.overview
    parent = session.metadata.get("parent")
    if isinstance(parent, Mapping):
        part.parent_id = str(parent.get("session_id") or "")
        part.parent_path = str(parent.get("path") or "")
        fork_at = parent.get("fork_at")
        part.fork_at = fork_at if isinstance(fork_at, int) and not isinstance(fork_at, bool) else None
    part.session_id = str(overview["session_id"])
    part.index_row = overview
    title = overview["task"] or path.name
    part.head = f"<h2>{text(title)}</h2>"
    part.extra = session_facts(timeline)
    part.body = timeline_html(timeline, anchor)
    return part


def _section(part: _Part, links: list[tuple[str, str]], index_link: str) -> str:
    css = "session more" if part.more else "session"
    buttons = (
        '<div class="buttons"><button type="button" data-act="open">open all</button>'
        '<button type="button" data-act="close">fold all</button></div>'
    )
    back = f'<p><a href="#{index_link}">back to the index</a></p>' if index_link else ""
    head = part.head or f"<h2>{text(part.path.name)}</h2>"
    return (
        f'<section class="{css}" id="{part.anchor}">{buttons}{head}{back}'
        f"{facts([*links, *part.extra])}{part.body}</section>"
    )


def _resolve_parent(part: _Part) -> Path | None:
    """Where a fork's parent file is: its recorded path, as given or beside the fork."""
    if not part.parent_path:
        return None
    recorded = Path(part.parent_path)
    for candidate in (recorded, part.path.parent / recorded, part.path.parent / recorded.name):
        if candidate.is_file():
            return candidate
    return None


def _add_parents(parts: list[_Part], next_anchor: Callable[[], str]) -> None:
    """Load each fork's parent that is not on the page yet (bounded: MAX_PARENTS files)."""
    known = {part.session_id for part in parts if part.session_id}
    seen = {part.path.resolve() for part in parts}
    looked = 0
    position = 0
    while position < len(parts) and looked < MAX_PARENTS:
        part = parts[position]
        position += 1
        if not part.parent_id or part.parent_id in known:
            continue
        found = _resolve_parent(part)
        if found is None or found.resolve() in seen:
            continue
        looked += 1
        seen.add(found.resolve())
        parent = _part(found, next_anchor())
        if parent.session_id == part.parent_id:
            parent.extra.insert(0, ("included", text("as the parent of a fork on this page")))
            parts.append(parent)
            known.add(parent.session_id)


def _family_links(parts: Sequence[_Part]) -> dict[str, list[tuple[str, str]]]:
    """Each part's lines linking its parent and its forks (by anchor)."""
    by_id: dict[str, _Part] = {}
    for part in parts:
        if part.session_id:
            by_id.setdefault(part.session_id, part)
    links: dict[str, list[tuple[str, str]]] = {part.anchor: [] for part in parts}
    for part in parts:
        if not part.parent_id:
            continue
        parent = by_id.get(part.parent_id)
        at = f" after step {part.fork_at}" if part.fork_at is not None else ""
        if parent is None:
            where = f"{part.parent_id}{at} ({part.parent_path}: not found)"
            links[part.anchor].append(("fork of", text(where)))
            continue
        target = step_anchor(parent.anchor, part.fork_at) if part.fork_at is not None else parent.anchor
        label = f"{parent.index_row.get('task') or parent.path.name}{at}"
        links[part.anchor].append(("fork of", f'<a class="parent" href="#{target}">{text(label)}</a>'))
        fork_link = f'<a class="fork" href="#{part.anchor}">{text(part.path.name)}</a>{text(at)}'
        links[parent.anchor].append(("fork", fork_link))
    return links


def _render(parts: list[_Part], index_link: str) -> str:
    family = _family_links(parts)
    return "".join(_section(part, family[part.anchor], index_link) for part in parts)


class _Anchors:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"s{self.count}"


def sessions_view(paths: Sequence[Path], title: str = "", max_sessions: int = DEFAULT_MAX_SESSIONS) -> View:
    """A page of the session files `paths`: one shown whole, or an index of many."""
    anchors = _Anchors()
    shown, left_out = paths[:max_sessions], paths[max_sessions:]
    parts = [_part(path, anchors()) for path in shown]
    single = len(parts) == 1
    if single:
        parts[0].more = False
    _add_parents(parts, anchors)
    problems = tuple(part.error for part in parts if part.error)
    if single:
        body = _render(parts, "")
        page_title = f"nano-code session: {parts[0].index_row.get('task') or parts[0].path.name}"
        return View(page(page_title, body), len(parts), problems)
    body = f"<h1>{text(title or f'{len(paths)} sessions')}</h1>"
    body += _index(parts, left_out, max_sessions) + _render(parts, "index")
    return View(page(f"nano-code sessions: {title}", body), len(parts), problems)


def _index(parts: Sequence[_Part], left_out: Sequence[Path], max_sessions: int) -> str:
    columns = ("session", "model", "outcome", "steps", "tokens", "cost", "created", "file")
    head = "".join(f"<th>{column}</th>" for column in columns)
    rows = []
    for part in parts:
        row = part.index_row
        cells = (
            f'<a href="#{part.anchor}">{text(row.get("task") or part.path.name)}</a>',
            text(row.get("model", "")),
            text(row.get("outcome", "") if not part.error else "unreadable"),
            text(number(row.get("n_steps"))),
            text(number(row.get("total_tokens"))),
            text(money(row.get("cost"))),
            text(row.get("created", "")),
            text(part.path),
        )
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    more = ""
    if left_out:
        more = f'<p class="muted">{len(left_out):,} more session(s) not included (over --max-sessions {max_sessions}):</p>'
        more += "<ul>" + "".join(f"<li>{text(path)}</li>" for path in left_out) + "</ul>"
    table = f'<table class="sortable" id="session-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<nav class="index" id="index">{table}{more}</nav>'


def _inside(directory: Path, relative: str) -> Path | None:
    """The sample's session file, only when it lies inside the eval folder."""
    if not relative:
        return None
    candidate = (directory / relative).resolve()
    return candidate if candidate.is_relative_to(directory.resolve()) else None


def eval_view(directory: Path, max_sessions: int = DEFAULT_MAX_SESSIONS) -> View:
    """A page of an eval folder: its tables, then each sample's session (up to `max_sessions`)."""
    eval_dir: EvalDir = read_eval_dir(directory)
    anchors = _Anchors()
    parts: list[_Part] = []
    links: list[str | None] = []
    problems: list[str] = list(eval_dir.notes)
    for sample in eval_dir.samples:
        path = _inside(directory, sample.get("session", ""))
        if path is None or len(parts) >= max_sessions:
            if path is None and sample.get("session"):
                problems.append(f"{sample.get('session')}: outside {directory}; not read")
            links.append(None)
            continue
        part = _part(path, anchors())
        label = f"task {sample.get('task')}, model {sample.get('model')}, epoch {sample.get('epoch')}"
        outcome = sample.get("outcome", "")
        part.extra.insert(
            0, ("sample", f'{text(label)}: <span class="{outcome_class(outcome)}">{text(outcome)}</span>')
        )
        if sample.get("error"):
            part.extra.insert(1, ("error", text(sample["error"])))
        parts.append(part)
        links.append(part.anchor)
    _add_parents(parts, anchors)
    problems += [part.error for part in parts if part.error]
    left_out = sum(1 for link in links if link is None)
    note = (
        f'<p class="muted">{left_out:,} sample(s) without their session here (over --max-sessions {max_sessions}, or not found).</p>'
        if left_out
        else ""
    )
    body = f'<nav id="index">{eval_html(eval_dir, links)}{note}</nav>' + _render(parts, "samples")
    suite = eval_dir.manifest.get("suite") or directory.name
    return View(page(f"nano-code eval: {suite}", body), len(parts), tuple(problems))
