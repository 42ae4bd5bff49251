"""Issue 7, items 7, 10, 11c and 11d: a session file is data from anywhere.

A named pipe or a device is refused at once; a malformed, oddly typed or absurdly
nested file is reported and skipped, never an internal error; a failed rebless
leaves nothing behind; a file name that is not UTF-8 is shown, not a crash.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import Agent

from nano_code.testing.fake_server import reply

QUICK = 10.0
"""Seconds any of these commands may take: a hang is a failure, not a wait."""


def _record(agent: Agent, path: Path | None = None, task: str = "a good task") -> Path:
    """One good recorded session (in the sessions directory unless `path`)."""
    agent.serve([reply(tool_calls=[("shell", {"command": "echo hi"})]), reply(content="done")])
    before = set(agent.session_files())
    args = ["-p", task, "--yes"] + (["--record", str(path)] if path else [])
    done = agent.run(*args)
    assert done.returncode == 0, done.stderr
    if path is not None:
        return path
    (new,) = set(agent.session_files()) - before
    return new


def _assert_clear_failure(done: subprocess.CompletedProcess[str], needle: str) -> None:
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if needle in line]
    assert len(errors) == 1, f"expected one line about {needle!r} on stderr:\n{done.stderr}"
    assert "not a regular file" in errors[0], errors[0]


# ------------------------------------------------------------------------------------------ item 7


def _special(kind: str, path: Path) -> Path:
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return path


KINDS = ["fifo", "dev-zero-symlink"]


@pytest.mark.parametrize("kind", KINDS)
def test_7_replay_of_a_fifo_or_device(agent: Agent, tmp_path: Path, kind: str) -> None:
    target = _special(kind, tmp_path / "s.yaml")
    done = agent.run("replay", str(target), timeout=QUICK)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    said = [line for line in (done.stdout + done.stderr).splitlines() if str(target) in line]
    assert len(said) == 1 and "not a regular file" in said[0], done.stdout + done.stderr
    # In a directory of sessions, beside good ones: no hang, and the good ones replay
    # (a directory replay takes only the regular *.yaml files in it).
    shutil.copyfile(_record(agent, tmp_path / "good.yaml"), tmp_path / "good-copy.yaml")
    done = agent.run("replay", str(tmp_path), timeout=QUICK)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert "identical 2 |" in done.stdout, done.stdout
    assert [line for line in done.stdout.splitlines() if str(target) in line] == []
    skipped = [line for line in done.stderr.splitlines() if str(target) in line]
    assert len(skipped) == 1 and skipped[0].startswith("skipped") and "not a regular file" in skipped[0]


def test_10_single_file_replay_error_goes_to_stderr(agent: Agent, tmp_path: Path) -> None:
    target = _special("fifo", tmp_path / "s.yaml")
    done = agent.run("replay", str(target), timeout=QUICK)
    assert done.returncode == 1
    assert str(target) not in done.stdout, done.stdout
    assert str(target) in done.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_7_diff_with_a_fifo_or_device(agent: Agent, tmp_path: Path, kind: str) -> None:
    good = _record(agent, tmp_path / "good.yaml")
    target = _special(kind, tmp_path / "s.yaml")
    for args in (("diff", str(target), str(good)), ("diff", str(good), str(target))):
        done = agent.run(*args, timeout=QUICK)
        _assert_clear_failure(done, str(target))
        assert done.returncode == 2


@pytest.mark.parametrize("kind", KINDS)
def test_7_resume_of_a_fifo_or_device(agent: Agent, tmp_path: Path, kind: str) -> None:
    target = _special(kind, tmp_path / "s.yaml")
    agent.serve([reply(content="never asked")])
    done = agent.run("--resume", str(target), "-p", "x", timeout=QUICK)
    _assert_clear_failure(done, str(target))
    assert done.returncode == 2
    assert agent.requests() == []


@pytest.mark.parametrize("kind", KINDS)
def test_7_sessions_lists_the_good_ones_beside_a_fifo_or_device(agent: Agent, kind: str) -> None:
    good = [_record(agent, task="first good task"), _record(agent, task="second good task")]
    target = _special(kind, agent.sessions_dir / "zz-special.yaml")
    done = agent.run("sessions", timeout=QUICK)
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    for path in good:
        assert str(path) in done.stdout
    assert "first good task" in done.stdout and "second good task" in done.stdout
    skipped = [line for line in done.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and str(target) in skipped[0], done.stderr


# ----------------------------------------------------------------------------------------- item 10

WRONG_TYPES = [
    '#nc {"turn_end": "x"}',
    '#nc {"turn_end": {"usage": [1, 2, 3]}}',
    '#nc {"turn_end": {"usage": {"total_tokens": "many", "cost": "free"}}}',
    '#nc {"event": {"type": "UserInput", "text": 42}}',
    '#nc {"event": "not an object"}',
    "#nc {}",
]


def _with_lines(source: Path, target: Path, lines: list[str]) -> Path:
    text = source.read_text()
    target.write_text(text + "".join(line + "\n" for line in lines))
    return target


def _wrong_metadata(source: Path, target: Path) -> Path:
    lines = source.read_text().splitlines(keepends=True)
    out = []
    for line in lines:
        if line.startswith("metadata: "):
            metadata = json.loads(line[len("metadata: ") :])
            metadata.update(created=12345, model=["not", "a", "string"], settings="nope")
            line = "metadata: " + json.dumps(metadata) + "\n"
        out.append(line)
    target.write_text("".join(out))
    return target


def test_10_sessions_survives_malformed_and_oddly_typed_files(agent: Agent) -> None:
    good = [_record(agent, task="first good task"), _record(agent, task="second good task")]
    sessions = agent.sessions_dir
    malformed = sessions / "b-malformed.yaml"
    malformed.write_text("version: 1\nmetadata: {not json\ninteractions:\n- [\n")
    typed = _with_lines(good[0], sessions / "c-wrong-types.yaml", WRONG_TYPES)
    meta = _wrong_metadata(good[0], sessions / "d-wrong-metadata.yaml")
    empty = sessions / "e-empty.yaml"
    empty.write_text("")
    not_utf8 = sessions / "f-not-utf8.yaml"
    not_utf8.write_bytes(b"\xff\xfe\x00garbage\n")

    done = agent.run("sessions", timeout=QUICK)
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    for path in good:
        assert str(path) in done.stdout
    skipped = [line for line in done.stderr.splitlines() if "skipped" in line]
    for bad in (malformed, empty, not_utf8):
        assert len([line for line in skipped if str(bad) in line]) == 1, done.stderr
        assert str(bad) not in done.stdout
    # Files whose records have odd types are listed (what can be read of them) or skipped, once.
    for odd in (typed, meta):
        listed = str(odd) in done.stdout
        skipped_lines = [line for line in skipped if str(odd) in line]
        assert listed != bool(skipped_lines) and len(skipped_lines) <= 1, done.stdout + done.stderr

    as_json = agent.run("sessions", "--json", timeout=QUICK)
    assert as_json.returncode == 0, as_json.stderr
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert {str(path) for path in good} <= {row["path"] for row in rows}


DIFF_BREAKERS = {
    "event is a string": '#nc {"event": "not an object"}',
    "event is a list": '#nc {"event": [1, 2]}',
    "request is a number": '- {"request": 5, "response": {}}',
    "response is a list": '- {"request": {"body": "{}"}, "response": []}',
    "response status is text": '- {"request": {"body": "{}"}, "response": {"status": "x", "body": 3}}',
    "call_without_response is text": '#nc {"call_without_response": "x"}',
}


@pytest.mark.parametrize("breaker", list(DIFF_BREAKERS))
def test_10_diff_of_wrongly_typed_records_is_a_clear_error(
    agent: Agent, tmp_path: Path, breaker: str
) -> None:
    good = _record(agent, tmp_path / "good.yaml")
    bad = _with_lines(good, tmp_path / "bad.yaml", [DIFF_BREAKERS[breaker]])
    for args in (("diff", str(good), str(bad)), ("diff", "--json", str(bad), str(good))):
        done = agent.run(*args, timeout=QUICK)
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 2, done.stdout + done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("nano-code diff:")]
        assert len(errors) == 1 and str(bad) in errors[0], done.stderr


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_10_directory_replay_reports_a_deeply_nested_file_and_still_sums_up(
    agent: Agent, tmp_path: Path, jobs: str
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    good = _record(agent, corpus / "a-good.yaml")
    header = [line for line in good.read_text().splitlines() if not line.startswith(("- ", "#nc "))]
    deep = corpus / "b-deep.yaml"
    deep.write_text("\n".join(header) + "\n- " + "[" * 100_000 + "]" * 100_000 + "\n")
    deep_object = corpus / "c-deep-object.yaml"
    deep_object.write_text(
        "\n".join(header) + '\n#nc {"a": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001 + "\n"
    )

    done = agent.run("replay", "--jobs", jobs, str(corpus), timeout=30)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert "RecursionError" not in done.stdout + done.stderr
    summary = [line for line in done.stdout.splitlines() if line.startswith("sessions ")]
    assert summary and "sessions 3" in summary[0] and "identical 1" in summary[0] and "errors 2" in summary[0]
    for nested in (deep, deep_object):
        error_lines = [line for line in done.stderr.splitlines() if str(nested) in line]
        assert len(error_lines) == 1 and "error" in error_lines[0], done.stderr
        assert not [line for line in done.stdout.splitlines() if str(nested) in line and "error:" in line]
    assert f"{good}: identical" in done.stdout


# ---------------------------------------------------------------------------------------- item 11c


def test_11c_a_failed_rebless_leaves_nothing_behind_and_can_be_rerun(agent: Agent, tmp_path: Path) -> None:
    good = _record(agent, tmp_path / "good.yaml")
    lines = good.read_text().splitlines(keepends=True)
    last = max(index for index, line in enumerate(lines) if line.startswith("- "))
    cut = tmp_path / "cut.yaml"
    cut.write_text("".join(lines[:last] + lines[last + 1 :]))  # the last model call is missing
    before = sorted(os.listdir(tmp_path))

    first = agent.run("replay", "--rebless", str(cut), timeout=QUICK)
    assert first.returncode == 1, first.stdout + first.stderr
    assert sorted(os.listdir(tmp_path)) == before, "a failed rebless left a file behind"
    again = agent.run("replay", "--rebless", str(cut), timeout=QUICK)
    assert again.returncode == 1
    assert "exists" not in again.stderr, again.stderr
    assert sorted(os.listdir(tmp_path)) == before

    # A run killed mid-way leaves its hidden partial file: it does not block the next one.
    stale = tmp_path / ".good.reblessed.yaml.partial"
    stale.write_text("torn")
    done = agent.run("replay", "--rebless", str(good), timeout=QUICK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not stale.exists()
    assert (tmp_path / "good.reblessed.yaml").is_file()
    assert agent.run("replay", str(tmp_path / "good.reblessed.yaml"), timeout=QUICK).returncode == 0


# ---------------------------------------------------------------------------------------- item 11d


def _odd_named_copy(agent: Agent, tmp_path: Path) -> bytes:
    """A good session saved under a name that is not UTF-8; returns that name as bytes."""
    good = _record(agent, tmp_path / "good.yaml")
    odd = os.fsencode(tmp_path) + b"/s\xff\xfe.yaml"
    fd = os.open(odd, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(good.read_bytes())
    return odd


def _run_with_bytes(agent: Agent, *args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    command = [os.fsencode(part) for part in agent.command([])]
    return subprocess.run(
        [*command, *(os.fsencode(arg) for arg in args)],
        cwd=agent.workspace,
        env=agent.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=QUICK,
    )


def test_11d_json_output_for_a_file_name_that_is_not_utf8_is_valid(agent: Agent, tmp_path: Path) -> None:
    odd = _odd_named_copy(agent, tmp_path)
    for args in ((odd,), (b"--json", odd)):
        done = _run_with_bytes(agent, "replay", *args)
        assert b"Traceback" not in done.stderr and b"internal error" not in done.stderr, done.stderr
        for stream in (done.stdout, done.stderr):
            stream.decode("utf-8")  # strict: raises on invalid UTF-8 (a lone surrogate, a raw 0xff)
    as_json = _run_with_bytes(agent, "replay", "--json", odd)
    (report,) = [json.loads(line) for line in as_json.stdout.decode("utf-8").splitlines() if line.strip()]
    assert os.fsencode(report["path"]) == odd  # the name survives, escaped

    # The same file among the recorded sessions: listed, and --json stays valid UTF-8.
    agent.sessions_dir.mkdir(exist_ok=True)
    shutil.copyfile(odd, os.fsencode(agent.sessions_dir) + b"/s\xff.yaml")
    for listing_args in (("sessions",), ("sessions", "--json")):
        listing = _run_with_bytes(agent, *listing_args)
        assert listing.returncode == 0, listing.stderr
        assert b"internal error" not in listing.stderr
        text = listing.stdout.decode("utf-8")
        assert "s\\udcff.yaml" in text or "s\\xff.yaml" in text, text
    rows = [json.loads(line) for line in listing.stdout.decode("utf-8").splitlines()]
    assert len(rows) == 1 and rows[0]["task"] == "a good task"


def test_11d_replay_of_a_file_name_that_is_not_utf8_works(agent: Agent, tmp_path: Path) -> None:
    odd = _odd_named_copy(agent, tmp_path)
    done = _run_with_bytes(agent, "replay", odd)
    assert b"UnicodeEncodeError" not in done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"identical" in done.stdout
    as_json = _run_with_bytes(agent, "replay", "--json", odd)
    (report,) = [json.loads(line) for line in as_json.stdout.decode("utf-8").splitlines() if line.strip()]
    assert report["status"] == "identical", report
