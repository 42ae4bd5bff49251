"""The viewer's fixtures: sessions recorded once per test process, and a real headless browser.

Tests marked `browser` open the pages in Debian's chromium driven by Playwright. Where either is
missing (a user's clone), they are deselected, not skipped: one line under "collected N items"
says how many and how to get them, as for the `shared` mark (tests/conftest.py).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import view_sessions
from view_sessions import Opened, Recorded

CHROMIUM = Path(os.environ.get("NANO_CODE_CHROMIUM", "/usr/bin/chromium"))
"""The browser the tests drive (Debian's package; override with NANO_CODE_CHROMIUM)."""

_LEFT_OUT = pytest.StashKey[int]()


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright)"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: opens a view in headless chromium; deselected without one")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if browser_missing() is None:
        return
    left_out = [item for item in items if item.get_closest_marker("browser") is not None]
    if left_out:
        config.stash[_LEFT_OUT] = len(left_out)
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item.get_closest_marker("browser") is None]
        if hasattr(config, "workerinput"):  # an xdist worker: its controller says the line
            config.workeroutput["view_browser_left_out"] = len(left_out)  # type: ignore[attr-defined]


def left_out_line(count: int) -> str:
    return (
        f"nano-code: {browser_missing()}: {count} browser test{'s' if count != 1 else ''} of the "
        "viewer are not collected (deselected); the pages' structure and escaping are still tested"
    )


def pytest_report_collectionfinish(config: pytest.Config) -> str | list[str]:
    """The one line, without xdist: right under "collected N items" (also with -q)."""
    count = config.stash.get(_LEFT_OUT, 0)
    return left_out_line(count) if count else []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """With xdist, each worker's count reaches the controller as the worker ends."""
    count = getattr(node, "workeroutput", {}).get("view_browser_left_out", 0)
    stash = node.config.stash
    stash[_LEFT_OUT] = max(stash.get(_LEFT_OUT, 0), count)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The one line, with xdist (whose controller collects nothing): at the end of the run."""
    count = config.stash.get(_LEFT_OUT, 0)
    if count and not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("dsession"):
        terminalreporter.write_line(left_out_line(count))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Exit 0, not 5, when every selected test needed the missing browser."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.stash.get(_LEFT_OUT, 0):
        session.exitstatus = pytest.ExitCode.OK


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    root = tmp_path_factory.mktemp("view-sessions")
    parent = view_sessions.plain_session(root / "parent.yaml", task="count to three", steps=3)
    return Recorded(
        hostile=view_sessions.hostile_session(root / "hostile.yaml"),
        parent=parent,
        fork=view_sessions.fork(parent, 2, root / "parent.fork2.yaml"),
        compact=view_sessions.compact_session(root / "compact.yaml"),
        ask=view_sessions.ask_session(root / "ask.yaml"),
        eval_dir=view_sessions.eval_dir(root / "eval"),
        eval_without_compare=view_sessions.eval_dir(root / "eval-one", models=("only-model",)),
    )


WATCH_VIOLATIONS = (
    "window.__cspViolations = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@pytest.fixture
def open_view(chromium: Any) -> Iterator[Callable[..., Opened]]:
    """Open a page offline (the context has no network), recording every request it makes."""
    contexts: list[Any] = []

    def open_page(path: Path, fragment: str = "") -> Opened:
        context = chromium.new_context(offline=True, viewport={"width": 1200, "height": 900})
        contexts.append(context)
        requests: list[str] = []
        context.on("request", lambda request: requests.append(request.url))
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.add_init_script(WATCH_VIOLATIONS)
        page.goto(path.as_uri() + fragment)
        return Opened(page, requests, errors)

    yield open_page
    for context in contexts:
        context.close()
