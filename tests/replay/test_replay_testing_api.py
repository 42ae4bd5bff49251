"""`nano_code.testing.replay` and the `nano_replay` pytest fixture."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from replay_helpers import TASK, interaction_indexes, record_inproc, rewrite_line, three_step_script

from nano_code.session.divergence import ReplayReport
from nano_code.testing import load_session, replay
from nano_code.testing.fake_server import FakeServer


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("api")
    workspace = root / "ws"
    workspace.mkdir()
    good = root / "good.yaml"
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.25}
    with FakeServer(three_step_script(usage=usage)) as server:
        record_inproc(good, workspace, server.base_url, [TASK])
    bad = root / "bad.yaml"
    shutil.copy(good, bad)

    def edit(data: dict[str, object]) -> None:
        request = data["request"]
        assert isinstance(request, dict)
        request["body"] = request["body"].replace(TASK, TASK.upper())

    rewrite_line(bad, interaction_indexes(bad)[0], edit)
    return good, bad


def test_replay_returns_a_report(sessions: tuple[Path, Path]) -> None:
    good, bad = sessions
    report = replay(good)
    assert isinstance(report, ReplayReport)
    assert report.status == "identical" and report.ok
    assert (report.steps, report.tool_calls) == (3, 2)
    assert report.usage.total_tokens == 45 and report.usage.cost == pytest.approx(0.75)
    assert report.divergence is None and report.error is None
    assert report.as_json()["usage"]["total_tokens"] == 45
    assert len(load_session(good).interactions) == 3

    diverged = replay(bad)
    assert diverged.status == "diverged" and not diverged.ok
    assert diverged.divergence is not None
    assert diverged.divergence.differences[0].path == "$.messages[1].content"
    assert replay(bad, ignore=["$.messages[1].content"]).status == "identical"

    # A smaller step budget than recorded changes the kernel's decisions, not the bodies:
    # the first tool call is made, then the turn must end early -- a divergence.
    assert replay(good, config_overrides={"max_steps": 1}).status == "diverged"

    missing = replay(good.parent / "nope.yaml")
    assert missing.status == "error" and "cannot read" in (missing.error or "")


def test_nano_replay_fixture_in_a_project(pytester: pytest.Pytester, sessions: tuple[Path, Path]) -> None:
    good, bad = sessions
    pytester.makepyfile(
        test_sessions=f"""
        GOOD = {str(good)!r}
        BAD = {str(bad)!r}

        def test_good(nano_replay):
            report = nano_replay(GOOD)
            assert report.tool_calls == 2

        def test_bad(nano_replay):
            nano_replay(BAD)

        def test_bad_inspected(nano_replay):
            report = nano_replay(BAD, expect=None)
            assert report.status == "diverged"
            assert report.divergence.step == 1

        def test_bad_masked(nano_replay):
            nano_replay(BAD, ignore=["$.messages[1].content"])

        def test_bad_expected(nano_replay):
            nano_replay(BAD, expect="diverged")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_bad*",
            f"*{bad}: expected identical, got diverged: diverged at step 1*request*",
            "*$.messages?1?.content*",  # fnmatch: [1] would be a character class
        ]
    )
    assert "test_good" not in "\n".join(line for line in result.stdout.lines if "FAILED" in line)
