"""One-shot runs of the real executable: tools, parallel calls, --json, stdin, budgets, bad replies."""

from __future__ import annotations

import json

import pytest
from cli_helpers import Agent, assistant_calls, tool_messages, user_text
from message_text import text

from nano_code.testing.fake_server import reply

SCRIPT_TEXT = 'echo "hello from the script"\n'


@pytest.mark.parametrize("stream_flag", [None, "--no-stream"], ids=["streaming", "no-stream"])
def test_multi_step_task_writes_runs_and_answers(agent: Agent, stream_flag: str | None) -> None:
    server = agent.serve(
        [
            reply(
                content="Writing it.",
                tool_calls=[("write_file", {"path": "hello.sh", "content": SCRIPT_TEXT})],
            ),
            reply(tool_calls=[("shell", {"command": "sh hello.sh"})]),
            reply(content="Done: hello.sh prints its greeting."),
        ]
    )
    flags = [stream_flag] if stream_flag else []
    result = agent.run("-p", "write hello.sh and run it", "--yes", *flags)

    assert result.returncode == 0, result.stderr
    assert (agent.workspace / "hello.sh").read_text() == SCRIPT_TEXT
    # stdout carries the answer and nothing else (`nano-code -p ... > answer.txt`)
    assert result.stdout == "Writing it.\nDone: hello.sh prints its greeting.\n"
    # tool lines go to stderr, never into the answer on stdout
    assert "● write_file hello.sh" in result.stderr
    assert "● shell sh hello.sh" in result.stderr
    assert "● " not in result.stdout

    bodies = agent.bodies(server)
    assert len(bodies) == 3
    assert all(bool(body.get("stream")) is (stream_flag is None) for body in bodies)
    assert user_text(bodies[0]) == "write hello.sh and run it"
    outputs = [text(m) for m in tool_messages(bodies[2])]
    assert len(outputs) == 2
    assert "hello.sh" in outputs[0]
    assert "hello from the script" in outputs[1]
    assert "[exit status: 0]" in outputs[1]
    # the assistant's own text is kept in the history too
    assert any(text(m) == "Writing it." for m in bodies[2]["messages"] if m["role"] == "assistant")


def test_parallel_tool_calls_are_all_answered_in_order(agent: Agent) -> None:
    (agent.workspace / "one.txt").write_text("first file\n")
    (agent.workspace / "two.txt").write_text("second file\n")
    server = agent.serve(
        [
            reply(
                tool_calls=[
                    ("read_file", {"path": "one.txt"}),
                    ("read_file", {"path": "two.txt"}),
                    ("shell", {"command": "echo from-the-shell"}),
                ]
            ),
            reply(content="All three done."),
        ]
    )
    result = agent.run("-p", "look around", "--yes")

    assert result.returncode == 0, result.stderr
    assert "All three done." in result.stdout
    second = agent.bodies(server)[1]
    calls = assistant_calls(second)
    answers = tool_messages(second)
    assert [c["id"] for c in calls] == ["call_0_0", "call_0_1", "call_0_2"]
    assert [m["tool_call_id"] for m in answers] == [c["id"] for c in calls]
    assert "first file" in text(answers[0])
    assert "second file" in text(answers[1])
    assert "from-the-shell" in text(answers[2])
    assert "[exit status: 0]" in text(answers[2])
    # all three answers come right after the assistant message that asked for them
    roles = [m["role"] for m in second["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "tool"]


def test_json_output_is_one_kernel_object_per_line(agent: Agent) -> None:
    (agent.workspace / "notes.txt").write_text("remember the milk\n")
    agent.serve(
        [
            reply(tool_calls=[("read_file", {"path": "notes.txt"})]),
            reply(content="The notes say: remember the milk."),
        ]
    )
    result = agent.run("-p", "what do the notes say?", "--json")

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, "nothing on stdout"
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) for o in objects)
    assert {o["kind"] for o in objects} <= {"event", "action"}
    types = {(o["kind"], o["type"]) for o in objects}
    for expected in [
        ("event", "UserInput"),
        ("action", "CallModel"),
        ("event", "ModelReply"),
        ("action", "RunTool"),
        ("event", "ToolResult"),
        ("action", "EndTurn"),
    ]:
        assert expected in types, f"{expected} missing from {sorted(types)}"
    assert objects[0] == {**objects[0], "kind": "event", "type": "UserInput"}
    assert objects[-1]["type"] in ("EndTurn", "WaitForUser")
    # an action's own "kind" field (ShowText's) must not overwrite the event/action tag
    shown = [o for o in objects if o["type"] == "ShowText"]
    assert all(o["kind"] == "action" for o in shown)
    # the human transcript went to stderr
    assert "The notes say: remember the milk." in result.stderr
    assert "● read_file notes.txt" in result.stderr


def test_task_is_read_from_stdin_without_p(agent: Agent) -> None:
    server = agent.serve([reply(content="Sure.")])
    result = agent.run(input="add a README\nplease\n")

    assert result.returncode == 0, result.stderr
    assert "Sure." in result.stdout
    assert "add a README\nplease" in user_text(agent.bodies(server)[0])


def test_prompt_and_stdin_both_reach_the_user_message(agent: Agent) -> None:
    server = agent.serve([reply(content="Looks fine.")])
    result = agent.run("-p", "review this", input="diff --git a/x b/x\n+new line\n")

    assert result.returncode == 0, result.stderr
    text = user_text(agent.bodies(server)[0])
    assert "review this" in text
    assert "+new line" in text
    assert text.index("review this") < text.index("+new line")


def test_empty_stdin_and_no_prompt_is_a_usage_error(agent: Agent) -> None:
    server = agent.serve([reply(content="never sent")])
    result = agent.run(input="  \n")

    assert result.returncode == 2
    assert "no task" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert server.requests == []


def test_step_budget_stops_a_model_that_never_finishes(agent: Agent) -> None:
    (agent.workspace / "loop.txt").write_text("again\n")
    server = agent.serve([reply(tool_calls=[("read_file", {"path": "loop.txt"})]) for _ in range(5)])
    result = agent.run("-p", "loop forever", "--max-steps", "2")

    assert result.returncode == 1
    assert "step budget" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(server.requests) == 2


def test_invalid_tool_arguments_are_reported_to_the_model_and_not_run(agent: Agent) -> None:
    server = agent.serve(
        [
            reply(tool_calls=[{"name": "write_file", "arguments": '{"path": "bad.txt", "content": "unfini'}]),
            reply(content="Sorry, fixed my mistake."),
        ]
    )
    result = agent.run("-p", "write bad.txt", "--yes")

    assert result.returncode == 0, result.stderr
    assert not (agent.workspace / "bad.txt").exists()
    second = agent.bodies(server)[1]
    (answer,) = tool_messages(second)
    assert answer["tool_call_id"] == "call_0_0"
    assert "not valid JSON" in text(answer)
    assert "not run" in text(answer)
    assert "Sorry, fixed my mistake." in result.stdout


def test_agents_md_is_part_of_the_system_message(agent: Agent) -> None:
    (agent.workspace / "AGENTS.md").write_text("Always run `make lint-7f3a` before finishing.\n")
    server = agent.serve([reply(content="ok")])
    result = agent.run("-p", "hi")

    assert result.returncode == 0, result.stderr
    system = agent.bodies(server)[0]["messages"][0]
    assert system["role"] == "system"
    assert "make lint-7f3a" in text(system)
