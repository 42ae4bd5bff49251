"""The pages' structure, read with the standard library's HTML parser (no browser): the one script
and its hash in the policy, hostile text kept as text, what a session, a fork, a folder and an eval
folder show, and how `nano-code view` writes the file."""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from view_sessions import HOSTILE, LONG_LINES, PWNED, Recorded, plain_session, record

from nano_code.adapters.session_file import load_session
from nano_code.testing import reply
from nano_code.view.build import eval_view, sessions_view
from nano_code.view.page import CSP, SCRIPT
from nano_code.view.timeline import Notice, Step, session_timeline


class Page(HTMLParser):
    """Every tag with its attributes, the scripts' text, the ids, and the text shown."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text_parts: list[str] = []
        self._in_script = False
        self.feed(source)
        self.close()
        self.text = "".join(self.text_parts)
        self.ids = {attrs["id"] for _, attrs in self.tags if attrs.get("id")}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text_parts.append(data)

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def sha256_source(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def checked(source: str) -> Page:
    """The page, parsed, after the checks every page must pass."""
    page = Page(source)
    assert page.scripts == [SCRIPT], "one script: the viewer's own"
    policies = [a for a in page.named("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert [a["content"] for a in policies] == [CSP]
    assert source.index("Content-Security-Policy") < source.index("<style>") < source.index("<script>")
    directives = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == sha256_source(SCRIPT)
    assert directives["style-src"].startswith("'sha256-") and "unsafe" not in CSP
    for name, attrs in page.tags:
        assert name not in ("img", "iframe", "object", "embed", "link", "base", "form", "textarea", "svg")
        assert not [key for key in attrs if key.startswith("on") or key == "style"], (name, attrs)
        href = attrs.get("href")
        assert href is None or href.startswith("#"), href
        if href:
            assert href[1:] in page.ids, f"a link to a missing anchor: {href}"
    return page


def test_hostile_text_is_shown_as_text(recorded: Recorded) -> None:
    page = checked(sessions_view([recorded.hostile]).html)
    visible = HOSTILE.replace("\x00", "\\x00").replace("\u202e", "\\u202e").replace("\u202c", "\\u202c")
    assert page.text.count(visible) >= 4  # the task twice (title, prompt), the reply, the final answer
    assert f"<script>{PWNED}=1</script>" in page.text
    assert f"<img src=x onerror={PWNED}=6>" in page.text  # a refused call's argument name
    assert "\x00" not in page.text and "\u202e" not in page.text


def test_a_session_shows_its_steps_calls_retries_and_tokens(recorded: Recorded) -> None:
    page = checked(sessions_view([recorded.hostile]).html)
    assert {"s1-step-1", "s1-step-2", "s1-step-3"} <= page.ids
    assert "failed: server_error (HTTP 503)" in page.text
    assert "retrying in 1.0s (attempt 2 of 5)" in page.text  # the kernel's own notice
    assert "attempt 2" in page.text
    assert "prompt 1,000, cache read 600, cache write 200, completion 50" in page.text
    assert "$0.0012" in page.text and "$0.0021" in page.text
    assert "ran without asking (every call is approved: --yes)" in page.text
    assert "refused: never run" in page.text and "The call was not run." in page.text
    assert f"({LONG_LINES + 1:,} lines" in page.text  # the long output is folded, its size said
    assert "reasoning (" in page.text


def test_long_output_is_folded_and_a_huge_one_cut(tmp_path: Path) -> None:
    script = [reply(tool_calls=[("shell", {"command": "seq 1 100000"})]), reply(content="done")]
    path = record(tmp_path / "huge.yaml", script, "print a lot")
    source = sessions_view([path]).html
    page = checked(source)
    assert re.search(r"\d characters not shown, of [\d,]+: the session file holds them all", page.text)
    assert len(source) < 60_000  # the tool's output was over 100,000 characters
    folded = re.search(r'<details class="fold"><summary>output .*?</details>', source, re.S)
    assert folded is not None and "99999\n100000" in html.unescape(folded.group())


def test_compaction_and_approvals_are_shown(recorded: Recorded) -> None:
    timeline = session_timeline(load_session(recorded.compact))
    summaries = [item for item in timeline.items if isinstance(item, Step) and item.summary]
    assert len(summaries) == 1 and summaries[0].reply is not None
    assert summaries[0].reply.content == "SUMMARY so far"
    notices = [item.text for item in timeline.items if isinstance(item, Notice)]
    assert any(text.startswith("the conversation no longer fits") for text in notices)
    assert any(text.startswith("compacted the conversation") for text in notices)
    page = checked(sessions_view([recorded.compact]).html)
    assert "compaction: the summary of the older conversation" in page.text

    page = checked(sessions_view([recorded.ask]).html)
    assert "approval asked because it can change files or run commands: denied" in page.text
    assert (
        "approval asked because it reaches outside the workspace; its path leads outside the workspace: denied"
        in page.text
    )


def test_a_fork_links_its_parent_and_the_parent_its_fork(recorded: Recorded) -> None:
    built = sessions_view([recorded.fork])
    page = checked(built.html)
    assert built.sessions == 2  # the parent was found where the fork says, and added
    parents = [a for a in page.named("a") if a.get("class") == "parent"]
    assert [a["href"] for a in parents] == ["#s2-step-2"]
    forks = [a for a in page.named("a") if a.get("class") == "fork"]
    assert [a["href"] for a in forks] == ["#s1"]
    assert "the fork goes live here" in page.text
    sections = {a["id"]: a["class"] for a in page.named("section")}
    assert sections == {"s1": "session", "s2": "session more"}  # the parent shows when linked to


def test_a_fork_whose_parent_is_gone_says_so(tmp_path: Path, recorded: Recorded) -> None:
    lone = tmp_path / "lone.yaml"
    shutil.copy(recorded.fork, lone)
    os.rename(recorded.parent, tmp_path / "moved.yaml")
    try:
        page = checked(sessions_view([lone]).html)
    finally:
        os.rename(tmp_path / "moved.yaml", recorded.parent)
    assert "fork of" in page.text and "not found" in page.text


def test_a_folder_has_an_index_of_its_sessions(recorded: Recorded) -> None:
    paths = [recorded.parent, recorded.fork, recorded.hostile]
    page = checked(sessions_view(paths, "three").html)
    links = [a["href"] for a in page.named("a")]
    assert {"#s1", "#s2", "#s3"} <= set(links) and "index" in page.ids
    assert all(a["class"] == "session more" for a in page.named("section"))
    assert [a["href"] for a in page.named("a") if a.get("class") == "parent"] == ["#s1-step-2"]


def test_an_eval_folder_shows_its_tables_and_links_each_sample(recorded: Recorded) -> None:
    built = eval_view(recorded.eval_dir)
    page = checked(built.html)
    assert built.sessions == 8 and not built.problems
    assert {"model-table", "task-table", "compare-table", "sample-table"} <= page.ids
    sample_links = [a["href"] for a in page.named("a") if re.fullmatch(r"#s\d+", a.get("href") or "")]
    assert sorted(sample_links) == sorted(f"#s{n}" for n in range(1, 9))
    assert "model-a minus model-b: +0.500 in pass rate" in page.text
    assert "<b>odd</b>" in page.text  # a task id is text too
    assert "0.342" in page.text and "pass_at_2" in page.text


def test_an_eval_folder_without_compare_or_samples_csv(recorded: Recorded, tmp_path: Path) -> None:
    page = checked(eval_view(recorded.eval_without_compare).html)
    assert "No compare.csv" in page.text and "compare-table" not in page.ids
    unfinished = shutil.copytree(recorded.eval_without_compare, tmp_path / "unfinished")
    rows = (unfinished / "samples.csv").read_text().splitlines()
    with open(unfinished / "samples.jsonl", "w") as out:
        for row in csv.DictReader(rows):
            out.write(json.dumps(row) + "\n")
        out.write('{"task": "torn')
    (unfinished / "samples.csv").unlink()
    built = eval_view(unfinished)
    page = checked(built.html)
    assert built.sessions == 4 and "No samples.csv yet" in page.text


def test_an_eval_sample_outside_its_folder_is_not_read(recorded: Recorded, tmp_path: Path) -> None:
    copy = shutil.copytree(recorded.eval_without_compare, tmp_path / "copy")
    samples = (copy / "samples.csv").read_text()
    first = samples.splitlines()[1].split(",")[10]
    (copy / "samples.csv").write_text(samples.replace(first, "../../../etc/passwd", 1))
    built = eval_view(copy)
    assert built.sessions == 3 and any("outside" in problem for problem in built.problems)


def test_a_broken_session_gets_its_line_and_the_rest_is_shown(tmp_path: Path, recorded: Recorded) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("not a session\n")
    built = sessions_view([broken, recorded.parent])
    page = checked(built.html)
    assert built.sessions == 2 and len(built.problems) == 1
    assert "metadata" in page.text or "not a nano-code session" in page.text


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nano_code", "view", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_command_writes_a_private_page_and_replaces_only_its_own(tmp_path: Path) -> None:
    session = plain_session(tmp_path / "s.yaml")
    done = cli("s.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = tmp_path / "s.html"
    assert "s.html: 1 session(s)" in done.stdout and (page.stat().st_mode & 0o777) == 0o600
    checked(page.read_text())
    assert cli("s.yaml", cwd=tmp_path).returncode == 0  # its own page: replaced

    other = tmp_path / "notes.html"
    other.write_text("<p>mine</p>")
    refused = cli(str(session), "-o", str(other), cwd=tmp_path)
    assert refused.returncode == 2 and "pass --force" in refused.stderr
    assert other.read_text() == "<p>mine</p>"
    assert cli(str(session), "-o", str(other), "--force", cwd=tmp_path).returncode == 0

    folder = cli(".", cwd=tmp_path)
    assert folder.returncode == 0 and (tmp_path / "view.html").exists()
    missing = cli("nothing.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    (tmp_path / "bad.yaml").write_text("garbage\n")
    partly = cli("s.yaml", "bad.yaml", "-o", "both.html", cwd=tmp_path)
    assert partly.returncode == 1 and "not shown:" in partly.stderr and (tmp_path / "both.html").exists()


def test_the_command_views_an_eval_folder(recorded: Recorded, tmp_path: Path) -> None:
    copy = shutil.copytree(recorded.eval_dir, tmp_path / "run")
    done = cli(str(copy), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "8 session(s)" in done.stdout and (copy / "view.html").exists()
    with_other = cli(str(copy), str(recorded.parent), cwd=tmp_path)
    assert with_other.returncode == 2 and "view it on its own" in with_other.stderr


@pytest.mark.parametrize("steps", [40])
def test_the_page_grows_with_the_session(tmp_path: Path, steps: int) -> None:
    small = plain_session(tmp_path / "small.yaml", steps=steps // 2)
    large = plain_session(tmp_path / "large.yaml", steps=steps)
    ratio = len(sessions_view([large]).html) / len(sessions_view([small]).html)
    assert 1.5 < ratio < 2.5
