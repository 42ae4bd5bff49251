"""The model's tools against real processes and real files in a temporary workspace."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nano_code.adapters import shell as shell_module
from nano_code.adapters.file_access import inside_workspace
from nano_code.adapters.shell import Ending, run_command
from nano_code.adapters.tool import ToolContext, ToolOutcome
from nano_code.adapters.tools import TOOLS, find_tool, run_tool, tool_specs
from nano_code.kernel.policy import parse_arguments

# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def context(workspace: Path) -> ToolContext:
    return ToolContext(workspace=workspace, shell_timeout=20.0)


def group_gone(group: int, within: float = 10.0) -> bool:
    """Whether no process of `group` is left (killed orphans may take a moment to be reaped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def read_group(path: Path, within: float = 5.0) -> int:
    """The process group id a command wrote with `echo $$ > path`."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n"):
            return int(text)
        time.sleep(0.02)
    raise AssertionError(f"{path} was never written")


def kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def shell(context: ToolContext, command: str) -> ToolOutcome:
    return run_tool("shell", {"command": command}, context)


# --- specs and registry ------------------------------------------------------------------------------


def test_the_four_tools_with_their_schemas() -> None:
    specs = {spec.name: spec for spec in tool_specs()}
    assert list(specs) == ["shell", "read_file", "write_file", "edit_file"]
    assert {name: spec.mutates for name, spec in specs.items()} == {
        "shell": True,
        "read_file": False,
        "write_file": True,
        "edit_file": True,
    }
    assert specs["shell"].path_parameter is None
    for name in ("read_file", "write_file", "edit_file"):
        assert specs[name].path_parameter == "path"
    for spec in specs.values():
        schema = spec.parameters
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) <= set(schema["properties"])
        assert spec.description
    assert specs["shell"].required_parameters == ("command",)
    assert specs["read_file"].required_parameters == ("path",)
    assert specs["write_file"].required_parameters == ("path", "content")
    assert specs["edit_file"].required_parameters == ("path", "old_string", "new_string")


def test_find_tool() -> None:
    assert find_tool("shell") is TOOLS[0]
    assert find_tool("nope") is None


def test_specs_agree_with_the_kernels_argument_parser() -> None:
    spec = find_tool("read_file")
    assert spec is not None
    parsed = parse_arguments(spec.spec, "read_file", '{"path": "a", "offset": 3}')
    assert parsed == {"path": "a", "offset": 3}


def test_unknown_tool_is_an_error_outcome(context: ToolContext) -> None:
    outcome = run_tool("launch_rockets", {}, context)
    assert outcome.is_error
    assert "launch_rockets" in outcome.output
    assert "shell" in outcome.output


@pytest.mark.parametrize(
    ("name", "arguments", "needle"),
    [
        ("shell", {}, "command"),
        ("shell", {"command": 5}, "string"),
        ("shell", {"command": None}, "string"),
        ("shell", {"command": "ls", "cwd": "/"}, "'cwd'"),
        ("read_file", {"path": ["a"]}, "string"),
        ("read_file", {"path": "a", "offset": "2"}, "integer"),
        ("read_file", {"path": "a", "limit": True}, "integer"),
        ("read_file", {"path": "a", "limit": 1.5}, "integer"),
        ("read_file", {"path": "a", "offset": 0}, "at least 1"),
        ("write_file", {"path": "a"}, "content"),
        ("edit_file", {"path": "a", "old_string": "x"}, "new_string"),
    ],
)
def test_bad_arguments_are_error_outcomes(
    context: ToolContext, name: str, arguments: dict[str, Any], needle: str
) -> None:
    outcome = run_tool(name, arguments, context)
    assert outcome.is_error
    assert outcome.output.startswith("Error:")
    assert needle in outcome.output
    assert not (context.workspace / "a").exists()


def test_arguments_that_are_not_an_object(context: ToolContext) -> None:
    outcome = run_tool("shell", ["ls"], context)  # type: ignore[arg-type]
    assert outcome.is_error
    assert "object" in outcome.output


def test_unexpected_exceptions_become_error_outcomes(
    context: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(shell_module, "run_command", explode)
    outcome = shell(context, "true")
    assert outcome.is_error
    assert "RuntimeError: boom" in outcome.output


def test_summary_is_one_short_line() -> None:
    shell_tool = find_tool("shell")
    read_tool = find_tool("read_file")
    assert shell_tool is not None and read_tool is not None
    assert shell_tool.summary({"command": "ls -la"}) == "ls -la"
    assert shell_tool.summary({"command": "cd x\nmake"}) == "cd x …"
    long = shell_tool.summary({"command": "echo " + "x" * 200})
    assert len(long) <= 80 and long.endswith("…")
    assert read_tool.summary({"path": "src/app.py", "offset": 3}) == "src/app.py"
    assert shell_tool.summary({}) == "(invalid arguments)"


# --- shell -------------------------------------------------------------------------------------------


def test_shell_reports_output_and_exit_status(context: ToolContext) -> None:
    outcome = shell(context, "echo out; echo err >&2; exit 3")
    assert outcome == ToolOutcome("out\nerr\n", is_error=False, exit_status=3)


def test_shell_success(context: ToolContext) -> None:
    assert shell(context, "printf hi") == ToolOutcome("hi", exit_status=0)


def test_shell_runs_in_the_workspace(context: ToolContext) -> None:
    assert shell(context, "pwd -P").output.strip() == str(context.workspace)


def test_shell_stdin_is_closed(context: ToolContext) -> None:
    started = time.monotonic()
    outcome = shell(context, "cat; read line; echo read=$?")
    assert time.monotonic() - started < 10
    assert outcome.output == "read=1\n"
    assert outcome.exit_status == 0


def test_shell_has_no_controlling_terminal(context: ToolContext) -> None:
    outcome = shell(context, "exec 3</dev/tty && echo has-tty || echo no-tty")
    assert "no-tty" in outcome.output


def test_empty_command_runs_nothing(context: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("ran a command")

    monkeypatch.setattr(shell_module, "run_command", must_not_run)
    for command in ("", "   \n\t"):
        outcome = shell(context, command)
        assert outcome.is_error
        assert "empty" in outcome.output


def test_shell_killed_by_a_signal(context: ToolContext) -> None:
    outcome = shell(context, "kill -TERM $$")
    assert outcome.exit_status == 128 + signal.SIGTERM
    assert "SIGTERM" in outcome.output
    assert not outcome.is_error


def test_missing_workspace_is_an_error_outcome(tmp_path: Path) -> None:
    outcome = shell(ToolContext(workspace=tmp_path / "gone"), "true")
    assert outcome.is_error
    assert "gone" in outcome.output


def test_timeout_kills_the_whole_group(context: ToolContext) -> None:
    pid_file = context.workspace / "pgid"
    quick = ToolContext(workspace=context.workspace, shell_timeout=1.0)
    started = time.monotonic()
    outcome = shell(quick, "echo $$ > pgid; echo before; sleep 30 & sleep 30")
    elapsed = time.monotonic() - started
    group = read_group(pid_file)
    try:
        assert elapsed < 10
        assert outcome.is_error
        assert outcome.exit_status is None
        assert outcome.output.startswith("Error:")
        assert "1 s" in outcome.output
        assert "before" in outcome.output
        assert group_gone(group)
    finally:
        kill_group(group)


def test_timeout_kills_children_that_ignore_sigterm(context: ToolContext) -> None:
    quick = ToolContext(workspace=context.workspace, shell_timeout=1.0)
    started = time.monotonic()
    outcome = shell(quick, "echo $$ > pgid; trap '' TERM; sleep 30 & sleep 30")
    group = read_group(context.workspace / "pgid")
    try:
        assert time.monotonic() - started < 10
        assert outcome.is_error
        assert group_gone(group)
    finally:
        kill_group(group)


def test_timeout_when_the_shell_closes_its_output_but_keeps_running(context: ToolContext) -> None:
    quick = ToolContext(workspace=context.workspace, shell_timeout=1.0)
    started = time.monotonic()
    outcome = shell(quick, "echo $$ > pgid; exec >&- 2>&-; sleep 30")
    group = read_group(context.workspace / "pgid")
    try:
        assert time.monotonic() - started < 10
        assert outcome.is_error
        assert group_gone(group)
    finally:
        kill_group(group)


def test_background_child_holding_the_pipe_does_not_hang(context: ToolContext) -> None:
    started = time.monotonic()
    outcome = shell(context, "echo $$ > pgid; sleep 30 & echo started")
    elapsed = time.monotonic() - started
    group = read_group(context.workspace / "pgid")
    try:
        assert elapsed < 10  # far below both the child's 30 s and the 20 s timeout
        assert not outcome.is_error
        assert outcome.exit_status == 0
        assert outcome.output.startswith("started\n")
        assert "background" in outcome.output
    finally:
        kill_group(group)


def test_background_child_with_redirected_output_is_left_alone(context: ToolContext) -> None:
    outcome = shell(context, "echo $$ > pgid; sleep 30 > /dev/null 2>&1 & echo started")
    group = read_group(context.workspace / "pgid")
    try:
        assert outcome == ToolOutcome("started\n", exit_status=0)
        os.killpg(group, 0)  # still running: starting a server in the background is legitimate
    finally:
        kill_group(group)


@pytest.fixture
def default_sigint() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_kills_the_group_and_propagates(context: ToolContext) -> None:
    assert threading.current_thread() is threading.main_thread()
    pid_file = context.workspace / "pgid"
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            shell(context, "echo $$ > pgid; sleep 30 & sleep 30")
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10
    group = read_group(pid_file)
    try:
        assert group_gone(group)
    finally:
        kill_group(group)


def test_huge_output_is_capped_with_head_and_tail(context: ToolContext) -> None:
    total = 50_000_000
    small = ToolContext(workspace=context.workspace, output_head_bytes=1000, output_tail_bytes=2000)
    command = f"printf 'FIRST\\n'; yes | head -c {total}; printf 'LAST\\n'"
    tracemalloc.start()
    try:
        outcome = shell(small, command)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.exit_status == 0
    assert peak < 5_000_000
    assert len(outcome.output) < 4000
    assert outcome.output.startswith("FIRST\ny\ny\n")
    assert outcome.output.endswith("y\ny\nLAST\n")
    omitted = total + len("FIRST\nLAST\n") - 3000
    assert f"[... {omitted} bytes omitted ...]" in outcome.output


def test_output_under_the_cap_is_whole(workspace: Path) -> None:
    result = run_command("seq 1 1000", workspace, timeout=20, head_bytes=4000, tail_bytes=4000)
    assert result.output == "".join(f"{n}\n" for n in range(1, 1001))
    assert result.omitted_bytes == 0
    assert result.ending is Ending.EXITED


def test_cuts_fall_on_character_boundaries(workspace: Path) -> None:
    # 1000 two-byte characters; both cut points land mid-character.
    result = run_command("printf 'é%.0s' $(seq 1000)", workspace, timeout=20, head_bytes=5, tail_bytes=7)
    head, _, tail = result.output.partition("\n[... ")
    assert head == "éé"
    assert tail == "1990 bytes omitted ...]\nééé"
    assert "\ufffd" not in result.output
    assert result.omitted_bytes == 2000 - 4 - 6


def test_invalid_utf8_output_is_replaced(context: ToolContext) -> None:
    outcome = shell(context, r"printf 'a\377b'")
    assert outcome.output == "a\ufffdb"


# --- read_file ---------------------------------------------------------------------------------------


def read(context: ToolContext, path: str, **extra: Any) -> ToolOutcome:
    return run_tool("read_file", {"path": path, **extra}, context)


def test_read_numbers_lines(context: ToolContext) -> None:
    (context.workspace / "a.txt").write_text("alpha\nbeta\n")
    assert read(context, "a.txt") == ToolOutcome("     1\talpha\n     2\tbeta")


def test_read_pages_with_offset_and_limit(context: ToolContext) -> None:
    (context.workspace / "n.txt").write_text("".join(f"line {n}\n" for n in range(1, 5124)))
    first = read(context, "n.txt").output.splitlines()
    assert len(first) == 2001
    assert first[0] == "     1\tline 1"
    assert first[1999] == "  2000\tline 2000"
    assert first[-1] == "[lines 1-2000 of 5123; call read_file with offset=2001 for more]"

    middle = read(context, "n.txt", offset=10, limit=3).output.splitlines()
    assert middle == [
        "    10\tline 10",
        "    11\tline 11",
        "    12\tline 12",
        "[lines 10-12 of 5123; call read_file with offset=13 for more]",
    ]
    last = read(context, "n.txt", offset=5122).output
    assert last == "  5122\tline 5122\n  5123\tline 5123"


def test_read_counts_a_last_line_without_newline(context: ToolContext) -> None:
    (context.workspace / "a.txt").write_text("1\n2\n3")
    assert read(context, "a.txt", limit=1).output.endswith(
        "[lines 1-1 of 3; call read_file with offset=2 for more]"
    )
    assert read(context, "a.txt", offset=3).output == "     3\t3"


def test_read_offset_past_the_end(context: ToolContext) -> None:
    (context.workspace / "a.txt").write_text("1\n2\n")
    outcome = read(context, "a.txt", offset=3)
    assert outcome.is_error
    assert "2 lines" in outcome.output


def test_read_empty_file(context: ToolContext) -> None:
    (context.workspace / "empty").write_text("")
    outcome = read(context, "empty")
    assert not outcome.is_error
    assert "empty" in outcome.output


def test_read_strips_windows_line_endings(context: ToolContext) -> None:
    (context.workspace / "w.txt").write_bytes(b"one\r\ntwo\r\n")
    assert read(context, "w.txt").output == "     1\tone\n     2\ttwo"


def test_read_cuts_long_lines(context: ToolContext) -> None:
    (context.workspace / "long.txt").write_text("é" * 10_000 + "\nshort\n")
    lines = read(context, "long.txt").output.splitlines()
    assert lines[0].startswith("     1\t" + "é" * 2000 + " [")
    assert "2000 characters" in lines[0]
    assert len(lines[0]) < 2100
    assert lines[1] == "     2\tshort"


def test_read_a_page_of_a_huge_single_line_file_stays_small(context: ToolContext) -> None:
    (context.workspace / "min.js").write_bytes(b"x" * 20_000_000)
    tracemalloc.start()
    try:
        outcome = read(context, "min.js")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not outcome.is_error
    assert peak < 2_000_000


def test_read_refuses_binary_files(context: ToolContext) -> None:
    (context.workspace / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    outcome = read(context, "img.png")
    assert outcome.is_error
    assert "binary" in outcome.output


def test_read_refuses_non_utf8(context: ToolContext) -> None:
    (context.workspace / "latin1.txt").write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    outcome = read(context, "latin1.txt")
    assert outcome.is_error
    assert "UTF-8" in outcome.output
    assert "line 2" in outcome.output


def test_read_missing_file_and_directory(context: ToolContext) -> None:
    missing = read(context, "nope.txt")
    assert missing.is_error
    assert "not found" in missing.output and "nope.txt" in missing.output
    (context.workspace / "dir").mkdir()
    directory = read(context, "dir")
    assert directory.is_error
    assert "directory" in directory.output


def test_read_refuses_pipes_and_devices(context: ToolContext) -> None:
    os.mkfifo(context.workspace / "fifo")
    started = time.monotonic()
    outcome = read(context, "fifo")
    assert time.monotonic() - started < 5
    assert outcome.is_error
    assert "regular file" in outcome.output
    assert "regular file" in read(context, "/dev/zero").output


def test_read_under_a_file_is_not_found(context: ToolContext) -> None:
    (context.workspace / "f").write_text("x")
    outcome = read(context, "f/g")
    assert outcome.is_error
    assert "not found" in outcome.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads anything")
def test_read_permission_denied(context: ToolContext) -> None:
    secret = context.workspace / "secret"
    secret.write_text("x")
    secret.chmod(0)
    outcome = read(context, "secret")
    assert outcome.is_error
    assert "permission" in outcome.output.lower()


def test_read_absolute_path_and_no_tilde_expansion(context: ToolContext, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("hello\n")
    assert read(context, str(outside)).output == "     1\thello"
    (context.workspace / "~").mkdir()
    (context.workspace / "~" / "f").write_text("tilde\n")
    assert read(context, "~/f").output == "     1\ttilde"


# --- write_file --------------------------------------------------------------------------------------


def write(context: ToolContext, path: str, content: str) -> ToolOutcome:
    return run_tool("write_file", {"path": path, "content": content}, context)


def test_write_creates_parents(context: ToolContext) -> None:
    outcome = write(context, "src/pkg/mod.py", "a = 1\nb = 2\n")
    assert not outcome.is_error
    assert outcome.output.startswith("Wrote 12 bytes (2 lines) to src/pkg/mod.py")
    assert (context.workspace / "src/pkg/mod.py").read_text() == "a = 1\nb = 2\n"


def test_write_replaces_and_keeps_permission_bits(context: ToolContext) -> None:
    script = context.workspace / "run.sh"
    script.write_text("old\n")
    script.chmod(0o751)
    assert not write(context, "run.sh", "#!/bin/sh\necho new\n").is_error
    assert script.read_text() == "#!/bin/sh\necho new\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o751


def test_new_file_gets_umask_permissions(context: ToolContext) -> None:
    previous = os.umask(0o027)
    try:
        write(context, "f.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((context.workspace / "f.txt").stat().st_mode) == 0o640


def test_write_is_atomic_and_leaves_no_temporary_file(
    context: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = context.workspace / "data.txt"
    target.write_text("original\n")

    def fail(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    outcome = write(context, "data.txt", "replacement\n")
    assert outcome.is_error
    assert "No space left" in outcome.output
    assert target.read_text() == "original\n"
    assert sorted(p.name for p in context.workspace.iterdir()) == ["data.txt"]


def test_write_success_leaves_no_temporary_file(context: ToolContext) -> None:
    write(context, "a.txt", "1")
    write(context, "a.txt", "2")
    assert [p.name for p in context.workspace.iterdir()] == ["a.txt"]


def test_write_through_a_symlink_keeps_the_link(context: ToolContext) -> None:
    real = context.workspace / "real.txt"
    real.write_text("old")
    (context.workspace / "link.txt").symlink_to("real.txt")
    write(context, "link.txt", "new")
    assert (context.workspace / "link.txt").is_symlink()
    assert real.read_text() == "new"


def test_write_to_a_directory_is_an_error(context: ToolContext) -> None:
    (context.workspace / "d").mkdir()
    outcome = write(context, "d", "x")
    assert outcome.is_error
    assert "directory" in outcome.output


def test_write_empty_path_is_an_error(context: ToolContext) -> None:
    outcome = write(context, "", "x")
    assert outcome.is_error


def test_write_preview_shows_size_and_diff(context: ToolContext) -> None:
    tool = find_tool("write_file")
    assert tool is not None
    (context.workspace / "a.py").write_text("x = 1\ny = 2\n")
    preview = tool.preview({"path": "a.py", "content": "x = 1\ny = 3\n"}, context)
    assert preview.splitlines()[0].startswith("a.py")
    assert "12 bytes" in preview
    assert "-y = 2" in preview and "+y = 3" in preview
    new = tool.preview({"path": "b.py", "content": "z = 1\n"}, context)
    assert "new file" in new and "+z = 1" in new
    big = tool.preview({"path": "a.py", "content": "".join(f"{n}\n" for n in range(500))}, context)
    assert len(big.splitlines()) <= 83
    assert "more diff lines" in big


# --- edit_file ---------------------------------------------------------------------------------------


def edit(context: ToolContext, path: str, old: str, new: str) -> ToolOutcome:
    return run_tool("edit_file", {"path": path, "old_string": old, "new_string": new}, context)


@pytest.fixture
def source(context: ToolContext) -> Path:
    path = context.workspace / "app.py"
    path.write_text("def main():\n    print('hi')\n    return 0\n\n\ndef other():\n    return 0\n")
    return path


def test_edit_replaces_the_single_match(context: ToolContext, source: Path) -> None:
    outcome = edit(context, "app.py", "print('hi')", "print('hello')")
    assert not outcome.is_error
    assert "line 2" in outcome.output
    assert source.read_text().startswith("def main():\n    print('hello')\n    return 0\n")


def test_edit_not_found(context: ToolContext, source: Path) -> None:
    before = source.read_text()
    outcome = edit(context, "app.py", "print('bye')", "x")
    assert outcome.is_error
    assert "not found" in outcome.output
    assert "whitespace" in outcome.output
    assert "line" not in outcome.output.split("including whitespace")[1]
    assert source.read_text() == before


def test_edit_not_found_hints_at_a_whitespace_only_difference(context: ToolContext, source: Path) -> None:
    outcome = edit(context, "app.py", "def main():\n  print('hi')", "x")
    assert outcome.is_error
    assert "not found" in outcome.output
    assert "line 1 if whitespace" in outcome.output


def test_edit_not_found_hints_at_copied_line_numbers(context: ToolContext, source: Path) -> None:
    outcome = edit(context, "app.py", "     2\t    print('hi')", "x")
    assert outcome.is_error
    assert "line numbers" in outcome.output


def test_edit_with_several_matches(context: ToolContext, source: Path) -> None:
    before = source.read_text()
    outcome = edit(context, "app.py", "return 0", "return 1")
    assert outcome.is_error
    assert "2 times" in outcome.output
    assert "lines 3, 7" in outcome.output
    assert source.read_text() == before


def test_edit_counts_overlapping_matches(context: ToolContext) -> None:
    (context.workspace / "a.txt").write_text("aaa")
    outcome = edit(context, "a.txt", "aa", "b")
    assert outcome.is_error
    assert "2 times" in outcome.output


@pytest.mark.parametrize(("old", "new", "needle"), [("", "x", "empty"), ("same", "same", "identical")])
def test_edit_rejects_useless_edits(context: ToolContext, old: str, new: str, needle: str) -> None:
    (context.workspace / "a.txt").write_text("same\n")
    outcome = edit(context, "a.txt", old, new)
    assert outcome.is_error
    assert needle in outcome.output


def test_edit_keeps_windows_line_endings(context: ToolContext) -> None:
    path = context.workspace / "w.txt"
    path.write_bytes(b"one\r\ntwo\r\nthree\r\n")
    outcome = edit(context, "w.txt", "one\ntwo\n", "uno\ndos\n")
    assert not outcome.is_error
    assert path.read_bytes() == b"uno\r\ndos\r\nthree\r\n"


def test_edit_keeps_permission_bits(context: ToolContext, source: Path) -> None:
    source.chmod(0o700)
    edit(context, "app.py", "print('hi')", "print('ho')")
    assert stat.S_IMODE(source.stat().st_mode) == 0o700


def test_edit_missing_and_binary_files(context: ToolContext) -> None:
    assert "not found" in edit(context, "nope.py", "a", "b").output
    (context.workspace / "bin").write_bytes(b"a\x00b")
    outcome = edit(context, "bin", "a", "b")
    assert outcome.is_error
    assert "binary" in outcome.output


def test_edit_preview_is_a_diff(context: ToolContext, source: Path) -> None:
    tool = find_tool("edit_file")
    assert tool is not None
    arguments = {"path": "app.py", "old_string": "print('hi')", "new_string": "print('ho')"}
    preview = tool.preview(arguments, context)
    assert "--- a/app.py" in preview
    assert "-    print('hi')" in preview and "+    print('ho')" in preview
    assert "print('hi')" in source.read_text()  # previewing changes nothing
    failing = tool.preview({**arguments, "old_string": "nope"}, context)
    assert "not found" in failing


def test_shell_and_read_previews(context: ToolContext) -> None:
    shell_tool, read_tool = find_tool("shell"), find_tool("read_file")
    assert shell_tool is not None and read_tool is not None
    assert shell_tool.preview({"command": "rm -rf build\nmake"}, context) == "rm -rf build\nmake"
    assert read_tool.preview({"path": "a.py"}, context) == "a.py"
    assert shell_tool.preview({"command": 3}, context).startswith("Error:")


# --- inside_workspace --------------------------------------------------------------------------------


@pytest.fixture
def linked_workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    (root / "sub" / "deeper").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    (root / "file.txt").write_text("f")
    (root / "dir_out").symlink_to(outside)
    (root / "file_out").symlink_to(outside / "secret.txt")
    (root / "sub" / "deeper" / "nested_out").symlink_to("../../../outside")
    (root / "dangling_out").symlink_to(tmp_path / "not-there" / "x")
    (root / "dangling_in").symlink_to("not-yet.txt")
    (root / "dir_in").symlink_to("sub")
    (root / "loop").symlink_to("loop")
    return root


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("file.txt", True),
        ("new.txt", True),
        ("sub/deeper/new/file.txt", True),
        (".", True),
        ("", True),
        ("sub/../file.txt", True),
        ("dir_in/deeper", True),
        ("dir_in/new.txt", True),
        ("dangling_in", True),
        ("../ws/file.txt", True),
        ("~/file.txt", True),
        ("..", False),
        ("../outside/secret.txt", False),
        ("sub/../../outside", False),
        ("/etc/passwd", False),
        ("/", False),
        ("dir_out", False),
        ("dir_out/secret.txt", False),
        ("dir_out/not-yet.txt", False),
        ("file_out", False),
        ("sub/deeper/nested_out/secret.txt", False),
        ("dangling_out", False),
        ("with\0nul", False),
    ],
)
def test_inside_workspace(linked_workspace: Path, path: str, expected: bool) -> None:
    assert inside_workspace(path, linked_workspace) is expected


def test_inside_workspace_absolute_paths(linked_workspace: Path) -> None:
    assert inside_workspace(str(linked_workspace / "file.txt"), linked_workspace)
    assert not inside_workspace(str(linked_workspace / "dir_out" / "x"), linked_workspace)
    assert not inside_workspace(str(linked_workspace) + "-sibling/x", linked_workspace)


def test_inside_workspace_reached_through_a_symlink(linked_workspace: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(linked_workspace)
    assert inside_workspace("file.txt", alias)
    assert inside_workspace(str(linked_workspace / "file.txt"), alias)
    assert not inside_workspace("dir_out/x", alias)


def test_inside_workspace_survives_a_symlink_loop(linked_workspace: Path) -> None:
    assert isinstance(inside_workspace("loop/x", linked_workspace), bool)


# --- where a path really leads: previews and confined use -------------------------------------------


@pytest.fixture
def confined(workspace: Path) -> ToolContext:
    return ToolContext(workspace=workspace, shell_timeout=20.0, confined=True)


def test_write_preview_says_a_symlink_leads_outside(context: ToolContext, tmp_path: Path) -> None:
    tool = find_tool("write_file")
    assert tool is not None
    outside = tmp_path / "outside.txt"
    outside.write_text("old\n")
    (context.workspace / "link.txt").symlink_to(outside)
    preview = tool.preview({"path": "link.txt", "content": "new\n"}, context)
    lines = preview.splitlines()
    assert lines[0].startswith("link.txt (overwrite")
    assert lines[1] == (
        f"note: link.txt is a symlink; the write goes to {outside.resolve()}, outside the workspace"
    )
    new = tool.preview({"path": "link.txt", "content": "x"}, context)
    assert "outside the workspace" in new


def test_write_preview_names_the_target_of_an_inside_symlink(context: ToolContext) -> None:
    tool = find_tool("write_file")
    assert tool is not None
    (context.workspace / "sub").mkdir()
    (context.workspace / "dir_link").symlink_to("sub")
    (context.workspace / "dangling").symlink_to("sub/not-yet.txt")
    through = tool.preview({"path": "dir_link/a.txt", "content": "x"}, context)
    target = context.workspace / "sub" / "a.txt"
    assert f"note: dir_link/a.txt goes through a symlink; the write goes to {target}" in through
    assert "outside" not in through
    dangling = tool.preview({"path": "dangling", "content": "x"}, context)
    assert f"note: dangling is a symlink; the write goes to {target.with_name('not-yet.txt')}" in dangling
    assert "note" not in tool.preview({"path": "sub/../plain.txt", "content": "x"}, context)


def test_write_preview_says_an_absolute_path_is_outside(context: ToolContext, tmp_path: Path) -> None:
    tool = find_tool("write_file")
    assert tool is not None
    target = tmp_path / "elsewhere.txt"
    preview = tool.preview({"path": str(target), "content": "x"}, context)
    assert preview.splitlines()[1] == f"note: {target} is outside the workspace"


def test_edit_and_read_previews_say_where_a_symlink_leads(context: ToolContext, tmp_path: Path) -> None:
    edit_tool, read_tool = find_tool("edit_file"), find_tool("read_file")
    assert edit_tool is not None and read_tool is not None
    outside = tmp_path / "outside.py"
    outside.write_text("x = 1\n")
    (context.workspace / "link.py").symlink_to(outside)
    preview = edit_tool.preview({"path": "link.py", "old_string": "1", "new_string": "2"}, context)
    assert preview.splitlines()[0] == (
        f"note: link.py is a symlink; the edit goes to {outside.resolve()}, outside the workspace"
    )
    assert "+x = 2" in preview
    read = read_tool.preview({"path": "link.py", "offset": 2}, context)
    assert read.splitlines() == [
        "link.py (lines 2-2001)",
        f"note: link.py is a symlink; the read goes to {outside.resolve()}, outside the workspace",
    ]


def test_confined_tools_work_inside_the_workspace(confined: ToolContext) -> None:
    root = confined.workspace
    (root / "real.txt").write_text("one\n")
    (root / "real.txt").chmod(0o640)
    (root / "sub").mkdir()
    (root / "link.txt").symlink_to("real.txt")
    (root / "dir_link").symlink_to("sub")
    assert read(confined, "link.txt").output == "     1\tone"
    assert read(confined, str(root / "real.txt")).output == "     1\tone"
    assert not write(confined, "link.txt", "two\n").is_error
    assert (root / "link.txt").is_symlink() and (root / "real.txt").read_text() == "two\n"
    assert stat.S_IMODE((root / "real.txt").stat().st_mode) == 0o640
    assert not write(confined, "dir_link/deep/new.txt", "three\n").is_error
    assert (root / "sub" / "deep" / "new.txt").read_text() == "three\n"
    assert not edit(confined, "dir_link/deep/new.txt", "three", "four").is_error
    assert (root / "sub" / "deep" / "new.txt").read_text() == "four\n"
    assert "directory" in read(confined, ".").output
    assert "directory" in write(confined, ".", "x").output
    assert "file not found" in read(confined, "missing.txt").output
    assert "not a directory" in read(confined, "real.txt/x").output


def test_confined_tools_refuse_what_leads_outside(confined: ToolContext, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    (confined.workspace / "out").symlink_to(secret)
    for outcome in (
        read(confined, "out"),
        read(confined, str(secret)),
        write(confined, "out", "x"),
        write(confined, "../new.txt", "x"),
        edit(confined, "out", "secret", "x"),
    ):
        assert outcome.is_error
        assert "resolved outside the workspace when it was opened" in outcome.output
        assert "secret\n" not in outcome.output
    assert secret.read_text() == "secret\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.txt", "ws"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root is not held back by permissions")
def test_confined_tools_pass_through_a_directory_that_may_only_be_searched(confined: ToolContext) -> None:
    locked = confined.workspace / "locked"
    (locked / "open").mkdir(parents=True)
    (locked / "open" / "a.txt").write_text("one\n")
    locked.chmod(0o311)  # search, not read: names inside can be used but not listed
    try:
        assert read(confined, "locked/open/a.txt").output == "     1\tone"
        assert not write(confined, "locked/open/a.txt", "two\n").is_error
        assert not edit(confined, "locked/open/a.txt", "two", "three").is_error
    finally:
        locked.chmod(0o755)
    assert (locked / "open" / "a.txt").read_text() == "three\n"
