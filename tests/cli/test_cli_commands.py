"""The interactive prompt's commands, typed on a real pseudo-terminal, then the session replayed."""

from __future__ import annotations

from cli_helpers import PROMPT, Agent, Terminal, kill_if_running
from git_helpers import git

from nano_code.adapters.session_file import load_session
from nano_code.cli import commands
from nano_code.session.replay import replay_session
from nano_code.testing.fake_server import reply


def test_parse_knows_commands_from_paths() -> None:
    assert commands.parse("/cost") == commands.Command("/cost", "")
    assert commands.parse("  /model  openai/gpt-4.1 ") == commands.Command("/model", "openai/gpt-4.1")
    assert commands.parse("/etc/hosts has a typo, fix it") is None  # a message that starts with a path
    assert commands.parse("/frobnicate") == commands.Command("/frobnicate", "")  # unknown: said so, not sent
    assert commands.parse("fix /cost") is None


LONG = "".join(f"line {n}: some text long enough to be worth summarising\n" for n in range(60))


def test_each_command_on_a_terminal_and_the_session_replays(agent: Agent) -> None:
    (agent.workspace / "notes.txt").write_text("old line\n")
    git(agent.workspace, "init", "-q")
    git(agent.workspace, "add", "-A")
    git(agent.workspace, "commit", "-qm", "init")
    server = agent.serve(
        [
            reply(
                tool_calls=[("write_file", {"path": "notes.txt", "content": "new line\n" + LONG})],
                usage={"prompt_tokens": 1200, "completion_tokens": 30, "cost": 0.0042},
            ),
            reply(
                content="Rewrote notes.txt.",
                usage={
                    "prompt_tokens": 1300,
                    "completion_tokens": 10,
                    "prompt_tokens_details": {"cached_tokens": 1100, "cache_write_tokens": 150},
                },
            ),
            reply(content="Summary: notes.txt was rewritten to say 'new line'."),  # /compact's summary
            reply(content="after compact"),
            reply(content="after clear"),
        ]
    )
    terminal = Terminal()
    process = agent.spawn(
        "--yes",
        "--record",
        "s.yaml",
        env={"NANO_CODE_CONTEXT_TOKENS": "4000"},  # small, so the first turn is worth compacting
        stdin=terminal.slave,
        stdout=terminal.slave,
        stderr=terminal.slave,
    )
    try:
        terminal.close_child_end()
        assert "/help for commands" in terminal.read_until(PROMPT)
        terminal.write("/help\n")
        shown = terminal.read_until(PROMPT)
        for name in ("/cost", "/clear", "/compact", "/model", "/diff", "/exit"):
            assert name in shown
        terminal.write("rewrite notes.txt\n")
        terminal.read_until("Rewrote notes.txt.")
        terminal.read_until(PROMPT)
        terminal.write("/cost\n")
        shown = terminal.read_until(PROMPT)
        assert "last turn: 2,500 tokens in (1,100 read from cache, 150 written) / 40 out" in shown
        assert "$0.0042" in shown
        assert "session: 2,500 tokens in" in shown
        terminal.write("/diff\n")
        shown = terminal.read_until(PROMPT)
        assert "-old line" in shown and "+new line" in shown
        terminal.write("/model other/model\n")
        assert "other/model from the next request on" in terminal.read_until(PROMPT)
        terminal.write("/compact\n")
        shown = terminal.read_until(PROMPT)
        assert "Summary: notes.txt" not in shown  # the summary is for the model, not shown as an answer
        assert "compacted the conversation" in shown
        terminal.write("go on\n")
        terminal.read_until("after compact")
        terminal.read_until(PROMPT)
        terminal.write("/clear\n")
        terminal.read_until(PROMPT)
        terminal.write("fresh start\n")
        terminal.read_until("after clear")
        terminal.read_until(PROMPT)
        terminal.write("/nonsense\n")
        assert "unknown command /nonsense; /help lists them" in terminal.read_until(PROMPT)
        terminal.write("/exit\n")
        assert process.wait(timeout=15) == 0
    finally:
        kill_if_running(process)
        terminal.close()

    bodies = [request["body"] for request in server.requests]
    assert len(bodies) == 5  # /nonsense and the other commands reached no model
    assert [body["model"] for body in bodies[2:]] == ["other/model"] * 3  # /model took effect
    after_compact = bodies[3]["messages"]
    assert any("new line" in str(m.get("content")) for m in after_compact[1:-1])  # the summary is kept
    assert any(m["role"] == "tool" for m in bodies[1]["messages"])
    assert not any(m["role"] == "tool" for m in after_compact)  # the first turn's calls were summarised
    after_clear = bodies[4]["messages"]
    assert [m["role"] for m in after_clear] == ["system", "user"]
    assert after_clear[1]["content"] == "fresh start"

    session = load_session(agent.workspace / "s.yaml")
    typed = [entry["command"] for entry in session.journal if "command" in entry]
    assert typed == [
        "/help",
        "/cost",
        "/diff",
        "/model other/model",
        "/compact",
        "/clear",
        "/nonsense",
        "/exit",
    ]
    report = replay_session(agent.workspace / "s.yaml")
    assert report.status == "identical", report.divergence.render() if report.divergence else report.error


def test_an_empty_reply_says_so_on_stderr(agent: Agent) -> None:
    agent.serve([reply(content="", finish_reason="stop")])
    done = agent.run("-p", "say something")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    assert "the model sent an empty reply (finish_reason: stop)" in done.stderr
