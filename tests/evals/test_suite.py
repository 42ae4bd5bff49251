"""A suite is checked whole before anything runs, and each refusal names the task at fault."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from eval_helpers import write_suite

from nano_code.evals.suite import DEFAULT_TIMEOUT, MAX_SUITE_BYTES, SuiteError, load_suite


def refusal(folder: Path, body: str, name: str = "suite.toml") -> str:
    with pytest.raises(SuiteError) as raised:
        load_suite(write_suite(folder, body, name))
    return str(raised.value)


def test_a_good_suite_loads_with_its_defaults(suite: Path) -> None:
    loaded = load_suite(suite)
    assert loaded.ids == ("alpha", "beta")
    alpha, beta = loaded.tasks
    assert alpha.workspace is None and alpha.timeout == DEFAULT_TIMEOUT and alpha.max_steps is None
    assert beta.workspace == str((suite.parent / "beta-files").resolve()) and beta.timeout == 20.0
    assert len(loaded.digest) == 64


def test_json_lines_hold_the_same_keys(suite: Path) -> None:
    lines = [
        {"id": "alpha", "prompt": "write alpha", "check": "grep -qx right out.txt"},
        {"id": "beta", "prompt": "write beta", "workspace": "beta-files", "check": "true", "max_steps": 3},
    ]
    path = write_suite(suite.parent, "\n".join(json.dumps(line) for line in lines) + "\n\n", "suite.jsonl")
    loaded = load_suite(path)
    assert loaded.ids == ("alpha", "beta") and loaded.tasks[1].max_steps == 3


def test_the_digest_follows_the_suite_and_its_workspaces(suite: Path) -> None:
    before = load_suite(suite).digest
    assert load_suite(suite).digest == before
    (suite.parent / "beta-files" / "seed.txt").write_text("other\n")
    assert load_suite(suite).digest != before


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[[task]]\nid = "a"\nprompt = "p"\ncheck = "true"\n' * 2, "task 'a' (task 2) appears twice"),
        ('[[task]]\nprompt = "p"\ncheck = "true"\n', "task 1: missing `id`"),
        ('[[task]]\nid = "a"\ncheck = "true"\n', "task 'a' (task 1): missing `prompt`"),
        ('[[task]]\nid = "a"\nprompt = "p"\n', "task 'a' (task 1): missing `check`"),
        (
            '[[task]]\nid = "a"\nprompt = "p"\ncheck = "true"\nscorer = "x"\n',
            "task 'a' (task 1): unknown key(s) scorer",
        ),
        ('[[task]]\nid = 5\nprompt = "p"\ncheck = "true"\n', "`id` must be a string, not a number"),
        ('[[task]]\nid = "a b"\nprompt = "p"\ncheck = "true"\n', "`id` must be 1-100 letters"),
        (
            '[[task]]\nid = "a"\nprompt = "p"\ncheck = "true"\nmax_steps = "5"\n',
            "`max_steps` must be a whole",
        ),
        (
            '[[task]]\nid = "a"\nprompt = "p"\ncheck = "true"\nmax_steps = true\n',
            "`max_steps` must be a whole",
        ),
        ('[[task]]\nid = "a"\nprompt = "p"\ncheck = "true"\ntimeout = -1\n', "`timeout` must be a number"),
        ('[[task]]\nid = "a"\nprompt = "  "\ncheck = "true"\n', "task 'a' (task 1): `prompt` is empty"),
        (
            '[[task]]\nid = "a"\nprompt = "p"\ncheck = "true"\nworkspace = "gone"\n',
            "workspace 'gone' does not exist",
        ),
        (
            '[[task]]\nid = "a"\nprompt = "p"\ncheck = "true"\nworkspace = "../x"\n',
            "leads outside the suite's folder",
        ),
        ('[[task]]\nid = "a"\nprompt = "p"\ncheck = "true"\nworkspace = "/tmp"\n', "must be relative"),
        ('[[task]]\nid = "a"\nprompt = "p"\ncheck = "true"\nworkspace = "suite.toml"\n', "is not a folder"),
        ('name = "x"\n', "unknown top-level key(s) name"),
        ("task = 3\n", "must be an array of tables"),
        ("[[task]\n", "is not valid TOML"),
        ("", "has no tasks"),
        ('task = ["a"]\n', "a task must be a table"),
    ],
)
def test_a_bad_suite_is_refused_naming_the_task(tmp_path: Path, body: str, expected: str) -> None:
    (tmp_path / "x").mkdir()
    assert expected in refusal(tmp_path / "suite", body)


def test_a_workspace_leading_out_through_a_link_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "suite"
    folder.mkdir()
    os.symlink(outside, folder / "ws")
    body = '[[task]]\nid = "linked"\nprompt = "p"\ncheck = "true"\nworkspace = "ws"\n'
    text = refusal(folder, body)
    assert "task 'linked' (task 1)" in text and "leads outside the suite's folder" in text


def test_a_link_inside_a_workspace_is_hashed_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "suite"
    (folder / "ws").mkdir(parents=True)
    os.symlink("/etc/hostname", folder / "ws" / "link")
    body = '[[task]]\nid = "a"\nprompt = "p"\ncheck = "true"\nworkspace = "ws"\n'
    assert load_suite(write_suite(folder, body)).ids == ("a",)


def test_bad_json_lines_are_refused_with_their_line(tmp_path: Path) -> None:
    good = json.dumps({"id": "a", "prompt": "p", "check": "true"})
    assert "line 2 is not JSON" in refusal(tmp_path, good + "\n{oops\n", "suite.jsonl")
    bad = json.dumps({"id": "b", "prompt": "p", "check": "true", "timeout": "soon"})
    assert "task 'b' (line 2): `timeout`" in refusal(tmp_path, good + "\n" + bad + "\n", "suite.jsonl")


def test_inputs_are_bounded(tmp_path: Path) -> None:
    huge = "# " + "x" * MAX_SUITE_BYTES + "\n"
    assert "larger than" in refusal(tmp_path, huge)
    long_prompt = f'[[task]]\nid = "a"\nprompt = "{"p" * 200_001}"\ncheck = "true"\n'
    assert "`prompt` is longer than" in refusal(tmp_path, long_prompt)
    with pytest.raises(SuiteError, match="cannot read the suite"):
        load_suite(tmp_path / "none.toml")
