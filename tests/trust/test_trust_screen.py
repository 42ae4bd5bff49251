"""Issue 7, item 1: nothing from a model, a tool or a session file can drive the terminal.

The real CLI runs under a pseudo-terminal; its output goes through a terminal emulator
(pyte) and the tests check what the SCREEN shows: the exact command in the approval
prompt, escapes instead of cursor moves, no retitled window, nothing overwritten.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import PROMPT, Agent, kill_if_running, tool_messages
from message_text import text
from trust_helpers import ScreenTerminal, control_bytes_in

from nano_code.testing.fake_server import http_error, reply

HOSTILE_COMMAND = "touch X # \r\x1b[2Kecho hello"
HOSTILE_TEXT_LINES = [
    "FIRST-LINE stays",
    "nul:\x00\x00 bs:abc\x08\x08\x08 end",
    "esc:\x1b[2J\x1b[H\x1b[31mred",
    "osc:\x1b]0;PWNED\x07 title",
    "cr:visible\rOVERWRITE",
    "LAST-LINE",
]
HOSTILE_TEXT = "\n".join(HOSTILE_TEXT_LINES)
SHOWN_TEXT_LINES = [
    "FIRST-LINE stays",
    r"nul:\x00\x00 bs:abc\x08\x08\x08 end",
    r"esc:\x1b[2J\x1b[H\x1b[31mred",
    r"osc:\x1b]0;PWNED\x07 title",
    r"cr:visible\rOVERWRITE",
    "LAST-LINE",
]
HOSTILE_PRINTF = r"printf 'OUT:\033[2J\033]0;PWNED\007\033[1A\033[2Kgone\n'"
SHOWN_TOOL_LINE = r"OUT:\x1b[2J\x1b]0;PWNED\x07\x1b[1A\x1b[2Kgone"


def _all_default_colours(terminal: ScreenTerminal) -> bool:
    """NO_COLOR is set: any coloured or reversed cell came from untrusted text."""
    for row in terminal.screen.buffer.values():
        for char in row.values():
            if char.fg != "default" or char.bg != "default" or char.reverse:
                return False
    return True


def _index_of_run(lines: list[str], wanted: list[str]) -> int:
    """Where `wanted` appears as consecutive screen lines (-1 when it does not)."""
    for start in range(len(lines) - len(wanted) + 1):
        if lines[start : start + len(wanted)] == wanted:
            return start
    return -1


APPROVAL_CASES = {
    "CR and erase-line hide the command": (
        "shell",
        {"command": HOSTILE_COMMAND},
        [r"touch X # \r\x1b[2Kecho hello"],
        "echo hello",
    ),
    "a bidi override reorders it": (
        "shell",
        {"command": "echo done \u202e; touch X"},
        [r"echo done \u202e; touch X"],
        None,
    ),
    "a hostile path and content": (
        "write_file",
        {"path": "X\r\x1b[2Knotes.txt", "content": "hello\x1b]0;PWNED\x07\n"},
        [r"X\r\x1b[2Knotes.txt", r"hello\x1b]0;PWNED\x07"],
        "notes.txt",
    ),
}


@pytest.mark.parametrize("case", list(APPROVAL_CASES))
def test_1a_approval_prompt_shows_the_exact_call_and_warns(agent: Agent, case: str) -> None:
    tool, arguments, shown, spoof = APPROVAL_CASES[case]
    server = agent.serve([reply(tool_calls=[(tool, arguments)]), reply(content="Understood, not run.")])
    terminal = ScreenTerminal()
    process = agent.spawn("-p", "make X", stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave)
    try:
        terminal.close_child_end()
        terminal.expect("Allow?")
        terminal.drain(timeout=0.3)  # the prompt line is complete
        asked = terminal.lines()
        terminal.write("n\n")
        terminal.expect("Tell the model why")
        terminal.write("\n")
        terminal.expect("Understood, not run.")
        assert process.wait(timeout=10) == 0
        terminal.drain()
    finally:
        kill_if_running(process)
        terminal.close()

    screen = "\n".join(asked)
    for expected in shown:
        assert expected in screen, screen
    assert "control or invisible characters" in screen, screen
    if spoof is not None:  # what the spoof would leave on a line of its own
        assert not [line for line in asked if line.lstrip("│ ").startswith(spoof)], screen
    assert terminal.screen.title == ""
    assert sorted(path.name for path in agent.workspace.iterdir()) == []
    (answer,) = tool_messages(agent.bodies(server)[1])
    assert "Not run" in text(answer)


def test_1b_assistant_text_cannot_move_clear_or_retitle(agent: Agent) -> None:
    agent.serve([reply(content=HOSTILE_TEXT, reasoning="THINKING\x1b]2;PWNED\x07\x1b[1A\x1b[2K\rDONE")])
    terminal = ScreenTerminal()
    process = agent.spawn(stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave)
    try:
        terminal.close_child_end()
        terminal.expect(PROMPT)
        terminal.write("say something\n")
        terminal.expect("LAST-LINE")
        terminal.expect(PROMPT)
        terminal.write("\n")
        assert process.wait(timeout=10) == 0
        terminal.drain()
    finally:
        kill_if_running(process)
        terminal.close()

    lines = terminal.lines()
    screen = terminal.text()
    assert _index_of_run(lines, SHOWN_TEXT_LINES) >= 0, screen
    # Nothing shown before the answer was erased or overwritten.
    assert any(line.startswith("nano-code · ") for line in lines), screen
    assert any("say something" in line for line in lines), screen
    assert any(r"THINKING\x1b]2;PWNED\x07\x1b[1A\x1b[2K\rDONE" in line for line in lines), screen
    assert terminal.screen.title != "PWNED"
    assert "PWNED" not in terminal.screen.title
    assert _all_default_colours(terminal), "untrusted text coloured the screen"
    # The escapes in the raw bytes, too: none of the hostile sequences went through.
    for sequence in (b"\x1b]0;PWNED", b"\x1b[2J", b"\x00", b"\x08", b"visible\rOVER"):
        assert sequence not in terminal.raw


def test_1c_tool_output_lines_are_escaped(agent: Agent) -> None:
    server = agent.serve(
        [reply(tool_calls=[("shell", {"command": HOSTILE_PRINTF})]), reply(content="TOOL-DONE")]
    )
    terminal = ScreenTerminal()
    process = agent.spawn(
        "-p", "print it", "--yes", stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave
    )
    try:
        terminal.close_child_end()
        terminal.expect("TOOL-DONE")
        assert process.wait(timeout=10) == 0
        terminal.drain()
    finally:
        kill_if_running(process)
        terminal.close()

    lines = terminal.lines()
    screen = terminal.text()
    tool_lines = [line for line in lines if line.lstrip().startswith("└")]
    assert tool_lines and SHOWN_TOOL_LINE in tool_lines[0], screen
    call_line = next(index for index, line in enumerate(lines) if line.startswith("● shell"))
    assert lines.index(tool_lines[0]) == call_line + 1, screen  # the call line was not erased
    assert not [line for line in lines if line.lstrip(" └").startswith("gone")], screen
    assert "PWNED" not in terminal.screen.title
    # The model still got the real output (escaping is for the terminal only).
    (answer,) = tool_messages(agent.bodies(server)[1])
    assert "\x1b]0;PWNED" in text(answer) or "PWNED" in text(answer)


def test_1d_server_error_text_cannot_drive_the_screen(agent: Agent) -> None:
    hostile = "quota\x1b]0;PWNED\x07\x1b[2J\x1b[H exceeded\rGONE"
    agent.serve(
        [
            http_error(500, {"error": {"message": hostile}}),
            http_error(400, {"error": {"message": hostile}}),
        ]
    )
    terminal = ScreenTerminal()
    process = agent.spawn("-p", "hi", stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave)
    try:
        terminal.close_child_end()
        terminal.drain(timeout=10)
        assert process.wait(timeout=5) == 1
    finally:
        kill_if_running(process)
        terminal.close()
    lines = terminal.lines()
    screen = terminal.text()
    shown = r"quota\x1b]0;PWNED\x07\x1b[2J\x1b[H exceeded"  # the CR may become a space
    retry = [line for line in lines if shown in line and "retrying" in line]
    final = [line for line in lines if shown in line and line.startswith("error")]
    assert len(retry) == 1 and len(final) == 1, screen
    assert lines.index(retry[0]) < lines.index(final[0])  # the notice was not erased
    assert "PWNED" not in terminal.screen.title
    assert not [line for line in lines if line.startswith("GONE")], screen


def _record(agent: Agent, path: Path, content: str, command: str) -> None:
    agent.serve([reply(tool_calls=[("shell", {"command": command})]), reply(content=content)])
    done = agent.run("-p", "go\x1b]0;PWNED\x07\x1b[2J\rTASK", "--yes", "--record", str(path))
    assert done.returncode == 0, done.stderr
    assert path.is_file()


def _run_bytes(agent: Agent, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        agent.command(args),
        cwd=agent.workspace,
        env=agent.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )


def test_1_replay_and_diff_write_no_raw_control_bytes(agent: Agent, tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    _record(agent, first, HOSTILE_TEXT, HOSTILE_PRINTF)
    _record(agent, second, HOSTILE_TEXT.replace("LAST", "\x1b]0;OTHER\x07\rLAST"), HOSTILE_PRINTF)
    # A file name can be hostile too.
    odd_name = tmp_path / "odd\x1b]0;PWNED\x07\r.yaml"
    shutil.copyfile(first, odd_name)
    agent.sessions_dir.mkdir(exist_ok=True)
    shutil.copyfile(first, agent.sessions_dir / "listed\x1b[2J.yaml")

    runs = {
        "replay": _run_bytes(agent, "replay", str(first)),
        "replay odd name": _run_bytes(agent, "replay", str(odd_name)),
        "replay --json": _run_bytes(agent, "replay", "--json", str(first)),
        "replay directory": _run_bytes(agent, "replay", str(tmp_path)),
        "diff": _run_bytes(agent, "diff", str(first), str(second)),
        "diff --json": _run_bytes(agent, "diff", "--json", str(first), str(second)),
        "diff odd name": _run_bytes(agent, "diff", str(odd_name), str(second)),
        "sessions": _run_bytes(agent, "sessions"),
        "sessions --json": _run_bytes(agent, "sessions", "--json"),
    }
    for name, done in runs.items():
        assert done.returncode in (0, 1), (name, done.returncode, done.stderr)
        for stream, data in (("stdout", done.stdout), ("stderr", done.stderr)):
            assert not control_bytes_in(data), (
                f"{name}: raw {control_bytes_in(data)} on {stream}: {data!r:.2000}"
            )
        assert b"Traceback" not in done.stderr and b"internal error" not in done.stderr, name

    replayed = runs["replay"].stdout.decode()
    assert "identical" in replayed
    assert r"osc:\x1b]0;PWNED\x07 title" in replayed
    assert r"cr:visible\rOVERWRITE" in replayed
    assert SHOWN_TOOL_LINE in replayed
    assert r"odd\x1b]0;PWNED\x07\r.yaml" in runs["replay odd name"].stdout.decode()
    assert runs["diff"].returncode == 1
    # the differing text is shown, escaped, in a window around where it differs
    assert r"\u001b]0;OTHER\u0007" in runs["diff"].stdout.decode()
    listed = runs["sessions"].stdout.decode()
    assert r"go\x1b]0;PWNED\x07\x1b[2J" in listed and r"listed\x1b[2J.yaml" in listed, listed
