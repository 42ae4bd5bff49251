"""Strictness: every edit to a recording shows up as a divergence that names the
step, the JSON path and both values -- and the tools built on that (masks,
--rebless, --live-tools, batch replay)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from message_text import text
from replay_helpers import (
    TASK,
    delete_line,
    interaction_indexes,
    is_tool_result,
    journal_indexes,
    record_cli,
    record_inproc,
    replay_cli,
    replay_json,
    request_body,
    rewrite_line,
    rewrite_metadata,
    swap_lines,
    three_step_script,
)

from nano_code.adapters.session_file import load_session
from nano_code.session.replay import replay_session
from nano_code.testing.fake_server import FakeServer, reply

EDITED_TASK = "write hellO.py and run it"  # one character changed


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A streamed three-step session recorded once by the real CLI; tests edit copies."""
    root = tmp_path_factory.mktemp("recorded")
    workspace = root / "ws"
    workspace.mkdir()
    session = root / "base.yaml"
    record_cli(session, workspace, three_step_script(), extra=["--stream"])
    return session


@pytest.fixture
def session(recorded: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "s.yaml"
    shutil.copy(recorded, copy)
    return copy


def _edit_request_text(data: dict[str, Any]) -> None:
    body = data["request"]["body"]
    assert body.count(TASK) == 1
    data["request"]["body"] = body.replace(TASK, EDITED_TASK)


def test_unedited_copy_is_identical(session: Path) -> None:
    report = replay_session(session)
    assert report.status == "identical", report
    assert (report.steps, report.tool_calls) == (3, 2)


def test_one_character_in_a_request_body(session: Path, tmp_path: Path) -> None:
    rewrite_line(session, interaction_indexes(session)[0], _edit_request_text)
    line_number = interaction_indexes(session)[0] + 1

    report = replay_session(session)
    assert report.status == "diverged"
    divergence = report.divergence
    assert divergence is not None
    assert (divergence.step, divergence.what, divergence.line) == (1, "request", line_number)
    assert [(d.path, d.recorded, d.actual) for d in divergence.differences] == [
        ("$.messages[1].content[0].text", EDITED_TASK, TASK)
    ]

    code, (as_json,) = replay_json(str(session), cwd=tmp_path, home=tmp_path / "home")
    assert code == 1
    assert as_json["status"] == "diverged"
    assert as_json["divergence"]["step"] == 1
    assert as_json["divergence"]["differences"] == [
        {"path": "$.messages[1].content[0].text", "recorded": EDITED_TASK, "new": TASK}
    ]

    human = replay_cli(str(session), cwd=tmp_path, home=tmp_path / "home")
    assert human.returncode == 1
    assert f"diverged at step 1 (line {line_number}): request" in human.stdout
    assert "$.messages[1].content" in human.stdout
    assert json.dumps(EDITED_TASK) in human.stdout and json.dumps(TASK) in human.stdout


def test_ignore_masks_the_edited_path_and_says_so(session: Path, tmp_path: Path) -> None:
    rewrite_line(session, interaction_indexes(session)[0], _edit_request_text)
    report = replay_session(session, ignore=["$.messages[1].content"])
    assert report.status == "identical", report
    assert report.masked == ("$.messages[1].content",)

    # A mask that hides nothing is not listed.
    assert replay_session(session, ignore=["$.messages[*].content", "$.temperature"]).masked == (
        "$.messages[*].content",
    )

    human = replay_cli(
        "--ignore", "$.messages[1].content", str(session), cwd=tmp_path, home=tmp_path / "home"
    )
    assert human.returncode == 0, human.stdout + human.stderr
    assert "identical" in human.stdout and "masked $.messages[1].content" in human.stdout

    bad = replay_cli("--ignore", "messages", str(session), cwd=tmp_path, home=tmp_path / "home")
    assert bad.returncode == 2


def test_one_character_in_a_recorded_tool_output(session: Path, tmp_path: Path) -> None:
    (index,) = journal_indexes(session, lambda d: is_tool_result(d, "write_file"))
    original = [j for j in load_session(session).journal if "event" in j][1]["event"]["output"]

    def edit(data: dict[str, Any]) -> None:
        assert "18 bytes" in data["event"]["output"]
        data["event"]["output"] = data["event"]["output"].replace("18 bytes", "19 bytes")

    rewrite_line(session, index, edit)
    report = replay_session(session)
    assert report.status == "diverged"
    divergence = report.divergence
    assert divergence is not None
    # The edited output is fed to the kernel, so the NEXT request differs.
    assert (divergence.step, divergence.what) == (2, "request")
    assert [d.path for d in divergence.differences] == ["$.messages[3].content[0].text"]
    (difference,) = divergence.differences
    assert difference.recorded == original
    assert difference.actual == original.replace("18 bytes", "19 bytes")

    code, (as_json,) = replay_json(str(session), cwd=tmp_path, home=tmp_path / "home")
    assert code == 1 and as_json["divergence"]["step"] == 2
    assert as_json["divergence"]["differences"][0]["path"] == "$.messages[3].content[0].text"


def test_edited_tool_call_argument_in_a_response(session: Path, tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        text = data["response"]["body"]["string"]
        assert text.count("hon3 hello.py") == 1  # the SSE fragment of the shell command
        data["response"]["body"]["string"] = text.replace("hon3 hello.py", "hon2 hello.py")

    rewrite_line(session, interaction_indexes(session)[1], edit)
    report = replay_session(session)
    assert report.status == "diverged"
    divergence = report.divergence
    assert divergence is not None
    assert (divergence.step, divergence.what) == (2, "tool call")
    assert [(d.path, d.recorded, d.actual) for d in divergence.differences] == [
        ("$.arguments.command", "python3 hello.py", "python2 hello.py")
    ]
    human = replay_cli(str(session), cwd=tmp_path, home=tmp_path / "home")
    assert human.returncode == 1
    assert "diverged at step 2" in human.stdout and "tool call" in human.stdout
    assert "$.arguments.command" in human.stdout


@pytest.mark.parametrize("edit", ["missing", "extra", "reordered", "missing-last"])
def test_missing_extra_and_reordered_interactions(session: Path, tmp_path: Path, edit: str) -> None:
    interactions = interaction_indexes(session)
    lines = session.read_text().split("\n")
    if edit == "missing":
        delete_line(session, interactions[1])
    elif edit == "missing-last":
        delete_line(session, interactions[2])
    elif edit == "extra":
        lines.insert(interactions[2] + 1, lines[interactions[2]])
        session.write_text("\n".join(lines))
    else:
        swap_lines(session, interactions[0], interactions[1])

    report = replay_session(session)
    assert report.status in ("diverged", "error"), report
    if edit == "reordered":
        assert report.divergence is not None
        assert (report.divergence.step, report.divergence.what) == (1, "request")
        assert "$.messages[2]" in {d.path for d in report.divergence.differences}
    if edit == "missing":
        assert report.divergence is not None and report.divergence.step == 2
    if edit == "extra":
        assert report.divergence is not None
        assert report.divergence.what in ("missing request", "unused interactions")

    code, (as_json,) = replay_json(str(session), cwd=tmp_path, home=tmp_path / "home")
    assert code == 1
    assert as_json["status"] == report.status


def test_rebless_accepts_changed_requests_and_writes_a_replayable_copy(session: Path, tmp_path: Path) -> None:
    # Pretend the session was recorded elsewhere: the rebuilt system prompt differs.
    rewrite_metadata(session, lambda m: m["settings"].update(workspace="/somewhere/else"))
    plain = replay_session(session)
    assert plain.status == "diverged"
    assert plain.divergence is not None and plain.divergence.step == 1
    assert [d.path for d in plain.divergence.differences] == ["$.messages[0].content[0].text"]

    done = replay_cli("--rebless", str(session), cwd=tmp_path, home=tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    copy = session.with_suffix(".reblessed.yaml")
    assert copy.exists()
    for step in (1, 2, 3):
        assert f"accepted a change at step {step}" in done.stdout
    assert "diverged" not in done.stdout  # each accepted change is not a failure
    # the copy's provenance names this version, not the one that recorded the original
    from nano_code.adapters.provenance import nano_code_commit

    assert load_session(copy).metadata["nano_code_commit"] == nano_code_commit()
    assert "$.messages[0].content" in done.stdout
    assert "/somewhere/else" in done.stdout

    again = replay_cli("--rebless", str(session), cwd=tmp_path, home=tmp_path / "home")
    assert again.returncode == 2  # never overwrites silently

    reblessed = load_session(copy)
    assert reblessed.metadata["reblessed_from"]["path"] == str(session)
    assert len(reblessed.interactions) == 3
    for interaction in reblessed.interactions:
        assert "Workspace: /somewhere/else" in text(request_body(interaction)["messages"][0])
    system = text(request_body(reblessed.interactions[0])["messages"][0])
    assert reblessed.metadata["system_prompt_sha256"] == hashlib.sha256(system.encode()).hexdigest()

    report = replay_session(copy)
    assert report.status == "identical", report
    assert (report.steps, report.tool_calls) == (3, 2)
    assert replay_cli(str(copy), cwd=tmp_path, home=tmp_path / "home").returncode == 0


def test_live_tools_reports_different_tool_output_and_fails(tmp_path: Path) -> None:
    recorded_ws = tmp_path / "ws"
    recorded_ws.mkdir()
    (recorded_ws / "data.txt").write_text("alpha\n")
    session = tmp_path / "cat.yaml"
    script = [reply(tool_calls=[("shell", {"command": "cat data.txt"})]), reply(content="it says alpha")]
    record_cli(session, recorded_ws, script, task="what does data.txt say?")

    other = tmp_path / "other"
    other.mkdir()
    (other / "data.txt").write_text("beta\n")
    home = tmp_path / "home"

    # By default the tools run in a restored copy of the recorded workspace: same output.
    restored = replay_cli("--live-tools", "--rerun-recorded", str(session), cwd=other, home=home)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "identical" in restored.stdout and "tools ran in " in restored.stdout
    ran_in = Path(restored.stdout.split("tools ran in ", 1)[1].split()[0])
    assert ran_in != other and (ran_in / "data.txt").read_text() == "alpha\n"

    # In a directory of the user's choosing, they see its files.
    done = replay_cli(
        "--live-tools", "--rerun-recorded", "--workspace", str(other), str(session), cwd=tmp_path, home=home
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "replayed identically, but 1 tool output(s) differ here" in done.stdout
    assert "step 1: shell output differs from the recording" in done.stdout

    code, (report,) = replay_json(
        "--live-tools", "--rerun-recorded", "--workspace", ".", str(session), cwd=other, home=home
    )
    assert code == 1 and report["status"] == "tool outputs differ"
    (difference,) = report["tool_output_differences"]
    assert difference["tool"] == "shell" and difference["step"] == 1
    assert difference["recorded"].startswith("alpha") and difference["actual"].startswith("beta")

    # Same file content: no difference reported.
    (other / "data.txt").write_text("alpha\n")
    code, (report,) = replay_json(
        "--live-tools", "--rerun-recorded", "--workspace", ".", str(session), cwd=other, home=home
    )
    assert code == 0 and report["status"] == "identical" and report["tool_output_differences"] == []


def test_live_tools_ask_as_a_live_session_would(tmp_path: Path) -> None:
    """Item 3 of the trust-boundary issue: recorded approvals and path facts grant nothing.
    Without --yes and without a terminal, a shell call is refused and reported, not run."""
    recorded_ws = tmp_path / "ws"
    recorded_ws.mkdir()
    session = tmp_path / "touch.yaml"
    script = [reply(tool_calls=[("shell", {"command": "touch made-by-replay"})]), reply(content="ok")]
    record_cli(session, recorded_ws, script, task="touch it")  # recorded with --yes
    other = tmp_path / "other"
    other.mkdir()
    done = replay_cli("--live-tools", str(session), cwd=other, home=tmp_path / "home")
    assert done.returncode == 1, done.stdout + done.stderr
    assert not (other / "made-by-replay").exists()
    assert "refused recorded shell" in done.stderr and "--rerun-recorded" in done.stderr
    code, (report,) = replay_json("--live-tools", str(session), cwd=other, home=tmp_path / "home")
    assert code == 1
    assert "not run here" in report["tool_output_differences"][0]["actual"]


def test_batch_replay_with_jobs(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "nested").mkdir(parents=True)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    for name in ("a.yaml", "b.yaml", "nested/c.yaml", "edited.yaml"):
        with FakeServer(three_step_script()) as server:
            record_inproc(corpus / name, workspace, server.base_url, [TASK], stream=name != "b.yaml")
    rewrite_line(corpus / "edited.yaml", interaction_indexes(corpus / "edited.yaml")[0], _edit_request_text)
    (corpus / "garbage.yaml").write_text("this: [is not a session\n")

    done = replay_cli("--jobs", "2", str(corpus), cwd=tmp_path, home=tmp_path / "home")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "sessions 5 | identical 3 | diverged 1 | errors 1" in done.stdout
    assert "edited.yaml: diverged at step 1" in done.stdout
    assert "garbage.yaml: error" in done.stdout

    code, reports = replay_json("--jobs", "2", str(corpus), cwd=tmp_path, home=tmp_path / "home")
    assert code == 1
    statuses = {Path(r["path"]).name: r["status"] for r in reports}
    assert statuses == {
        "a.yaml": "identical",
        "b.yaml": "identical",
        "c.yaml": "identical",
        "edited.yaml": "diverged",
        "garbage.yaml": "error",
    }

    shutil.move(corpus / "edited.yaml", tmp_path / "edited.yaml")
    (corpus / "garbage.yaml").unlink()
    ok = replay_cli("--jobs", "2", str(corpus), cwd=tmp_path, home=tmp_path / "home")
    assert ok.returncode == 0, ok.stdout
    assert "sessions 3 | identical 3 | diverged 0 | errors 0" in ok.stdout
