"""The views in a real browser (headless chromium, offline): nothing is fetched, hostile text runs
nothing and shows as written, folded output opens, a fork's link leads to its parent, an eval page
shows its tables and opens a sample's session. Load time is measured in bench/view_speed.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from view_sessions import HOSTILE, LONG_LINES, PWNED, Opened, Recorded

from nano_code.view.build import eval_view, sessions_view

pytestmark = pytest.mark.browser

OpenView = Callable[..., Opened]


def written(tmp_path: Path, name: str, html: str) -> Path:
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return path


def assert_quiet(opened: Opened, path: Path) -> None:
    """Only the page itself was requested; no script error, nothing blocked by the policy."""
    assert opened.requests == [path.as_uri()]
    assert opened.errors == []
    assert opened.violations() == []


def test_a_hostile_session_runs_nothing_and_shows_its_text(
    recorded: Recorded, open_view: OpenView, tmp_path: Path
) -> None:
    path = written(tmp_path, "hostile.html", sessions_view([recorded.hostile]).html)
    opened = open_view(path)
    page = opened.page
    assert page.evaluate(f"typeof {PWNED}") == "undefined"
    assert page.evaluate("document.images.length + document.querySelectorAll('iframe,link,base').length") == 0
    shown = page.inner_text("body")
    assert f"<script>{PWNED}=1</script>" in shown
    assert f'<img src=x onerror="{PWNED}=2">' in shown
    assert "\\u202eevil-bidi\\u202c and a NUL \\x00 here" in shown
    page.get_by_text("click me").first.click()  # text that looks like a link is no link
    assert page.url == path.as_uri()
    assert page.evaluate(f"typeof {PWNED}") == "undefined"
    assert_quiet(opened, path)


def test_folded_output_opens_on_a_click(recorded: Recorded, open_view: OpenView, tmp_path: Path) -> None:
    path = written(tmp_path, "hostile.html", sessions_view([recorded.hostile]).html)
    opened = open_view(path)
    page = opened.page
    folded = page.locator("details.fold", has_text=f"({LONG_LINES + 1:,} lines")
    last_line = folded.locator("pre")
    assert not last_line.is_visible()
    folded.locator("summary").click()
    assert last_line.is_visible() and f"\n{LONG_LINES}" in last_line.inner_text()
    page.get_by_role("button", name="fold all").click()
    assert not last_line.is_visible()
    page.get_by_role("button", name="open all").click()
    assert last_line.is_visible()
    assert_quiet(opened, path)


def test_a_forks_link_leads_to_its_parent(recorded: Recorded, open_view: OpenView, tmp_path: Path) -> None:
    path = written(tmp_path, "fork.html", sessions_view([recorded.fork]).html)
    opened = open_view(path)
    page = opened.page
    parent, fork = page.locator("#s2"), page.locator("#s1")
    assert fork.is_visible() and not parent.is_visible()
    assert page.locator("#s1 .forked").is_visible()
    page.locator("a.parent").click()
    page.wait_for_function("location.hash === '#s2-step-2'")
    assert parent.is_visible()  # the page's own session stays shown above it
    step = page.locator("#s2-step-2")
    assert step.is_visible() and 0 <= step.evaluate("e => e.getBoundingClientRect().top") < 900
    page.locator("#s2 a.fork").click()
    page.wait_for_function("location.hash === '#s1'")
    assert fork.is_visible() and not parent.is_visible()
    page.go_back()
    page.wait_for_function("location.hash === '#s2-step-2'")
    assert parent.is_visible()
    assert_quiet(opened, path)


def test_an_eval_page_shows_its_tables_and_opens_a_sample(
    recorded: Recorded, open_view: OpenView, tmp_path: Path
) -> None:
    path = written(tmp_path, "eval.html", eval_view(recorded.eval_dir).html)
    opened = open_view(path)
    page = opened.page
    for table in ("#model-table", "#task-table", "#compare-table", "#sample-table"):
        assert page.locator(table).is_visible()
    assert page.locator("#model-table tbody tr").count() == 2
    assert page.locator("#sample-table tbody tr").count() == 8
    assert page.locator("section.session:visible").count() == 0
    fail = page.locator("#sample-table tbody tr", has_text="fail").first
    fail.locator("a").click()
    shown = page.locator("section.session:visible")
    assert shown.count() == 1 and "sample" in shown.inner_text() and "fail" in shown.inner_text()
    shown.get_by_role("link", name="back to the index").click()
    assert page.locator("#sample-table").is_visible()
    page.fill("input[data-filter]", "fail")
    assert page.locator("#sample-table tbody tr:visible").count() == 2
    page.fill("input[data-filter]", "")
    page.locator("#sample-table th", has_text="outcome").click()
    first = page.locator("#sample-table tbody tr").first.locator("td").nth(3).inner_text()
    assert first == "fail"  # sorted by outcome, ascending
    assert_quiet(opened, path)


def test_an_eval_page_without_a_comparison(recorded: Recorded, open_view: OpenView, tmp_path: Path) -> None:
    path = written(tmp_path, "one.html", eval_view(recorded.eval_without_compare).html)
    opened = open_view(path)
    assert opened.page.get_by_text("No compare.csv").is_visible()
    assert opened.page.locator("#sample-table tbody tr").count() == 4
    assert_quiet(opened, path)


def test_a_link_into_a_folded_part_opens_it(recorded: Recorded, open_view: OpenView, tmp_path: Path) -> None:
    html = sessions_view([recorded.parent, recorded.hostile]).html
    path = written(tmp_path, "two.html", html)
    opened = open_view(path, "#s2-step-2")
    page = opened.page
    assert page.locator("#s2").is_visible() and not page.locator("#s1").is_visible()
    assert page.locator("#s2-step-2").is_visible()
    assert HOSTILE[:20] in page.locator("#s2").inner_text()
    assert_quiet(opened, path)
