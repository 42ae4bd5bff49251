"""Sessions for the viewer's tests, recorded by the real agent (`nano_code.testing.run`) against
the scripted server: hostile text everywhere, a long output, approvals, a retry, compaction, a fork,
and an eval folder laid out as `nano-code eval` writes it."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters.config import Settings
from nano_code.kernel.types import ApprovalMode
from nano_code.session.replay import replay_session
from nano_code.testing import FakeServer, http_error, reply, run

PWNED = "window.__pwned"
"""What hostile text would set if it ever ran as script."""
HOSTILE = (
    f"<script>{PWNED}=1</script>"
    f'<img src=x onerror="{PWNED}=2">'
    f"</textarea></pre></details><script>{PWNED}=3</script>"
    f'<a href="javascript:{PWNED}=4">click me</a>'
    '<link rel="stylesheet" href="http://127.0.0.1:9/x.css">'
    "\u202eevil-bidi\u202c and a NUL \x00 here"
)
"""A reply or output that would run script, load a resource or hide text if it were markup."""
LONG_LINES = 3000


def usage(prompt: int, completion: int, cost: float, cached: int = 0, written: int = 0) -> dict[str, Any]:
    details = {"cached_tokens": cached, "cache_write_tokens": written}
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost": cost,
        "prompt_tokens_details": details,
    }


def record(
    path: Path,
    script: Sequence[Mapping[str, Any]] | Any,
    task: str,
    *,
    approve_all: bool = True,
    **server: Any,
) -> Path:
    """`task` run by the real agent against a server answering with `script`, recorded to `path`."""
    workspace = path.parent / f"{path.stem}-ws"
    workspace.mkdir(parents=True, exist_ok=True)
    with FakeServer(script, **server) as fake:
        run(task, base_url=fake.base_url, workspace=workspace, record_to=path, approve_all=approve_all)
    return path


def hostile_session(path: Path) -> Path:
    """Hostile text in the task, the reply, the reasoning, tool arguments and outputs; a long
    output; a refused call with a hostile argument name; a retried step."""
    script = [
        http_error(503, {"error": {"message": f"overloaded {HOSTILE}"}}),
        reply(
            content=f"Let me look. {HOSTILE}",
            reasoning=f"thinking {HOSTILE}",
            tool_calls=[
                ("shell", {"command": f"printf '%s' '{HOSTILE.replace(chr(0), '')}'"}),
                ("shell", {"command": f"seq 1 {LONG_LINES}"}),
                ("shell", {"command": "echo hi", f"<img src=x onerror={PWNED}=6>": 1}),
            ],
            usage=usage(1000, 50, 0.0012, cached=600, written=200),
        ),
        reply(content=f"Done. {HOSTILE}", usage=usage(1500, 20, 0.0009, cached=1000)),
    ]
    return record(path, script, f"do it {HOSTILE}")


def plain_session(path: Path, task: str = "say hello", steps: int = 2) -> Path:
    """`steps` model calls: shell calls, then an answer."""
    calls = [reply(tool_calls=[("shell", {"command": f"echo step {n}"})]) for n in range(1, steps)]
    return record(path, [*calls, reply(content="hello")], task)


def compact_session(path: Path) -> Path:
    """A turn that outgrows a small context window: the kernel compacts it and sends the step again."""

    def respond(request: Mapping[str, Any], number: int) -> Mapping[str, Any]:
        if number < 6:
            return reply(tool_calls=[("shell", {"command": "seq 1 400"})])
        return reply(content="finished")

    return record(path, respond, "count a lot", context_limit=3000, summary=lambda request: "SUMMARY so far")


def ask_session(path: Path) -> Path:
    """Calls that need approval, recorded without --yes (and no terminal): asked, and denied."""
    calls = [
        ("write_file", {"path": "../outside.txt", "content": "x"}),
        ("read_file", {"path": "/etc/hostname"}),
    ]
    return record(path, [reply(tool_calls=calls), reply(content="ok")], "write outside", approve_all=False)


def fork(parent: Path, fork_at: int, fork_to: Path, ending: str = "a different ending") -> Path:
    """A fork of `parent` from step `fork_at`, its live part one answer."""
    workspace = fork_to.parent / f"{fork_to.stem}-ws"
    workspace.mkdir(parents=True, exist_ok=True)
    with FakeServer([reply(content=ending)]) as fake:
        settings = Settings(base_url=fake.base_url, model="fake/scripted-model", stream=False)
        report = replay_session(
            parent,
            fork_at=fork_at,
            fork_to=fork_to,
            live_settings=settings,
            workspace=workspace,
            approval=ApprovalMode.AUTO,
        )
    assert report.output_path is not None and Path(report.output_path).exists(), report.error
    return Path(report.output_path)


def eval_dir(root: Path, models: Sequence[str] = ("model-a", "model-b"), compare: bool = True) -> Path:
    """An eval folder as `nano-code eval` lays it out: eval.json, samples.csv, summary.csv,
    compare.csv (unless not `compare`) and the sessions under sessions/."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": "nano-code-eval",
        "format_version": 1,
        "suite": "suite.toml",
        "suite_sha256": "ab" * 32,
        "tasks": ["fix-bug", "<b>odd</b>"],
        "models": list(models),
        "epochs": 2,
        "settings": {"max_steps": 10, "yes": False},
        "nano_code_version": "0.1.0",
    }
    (root / "eval.json").write_text(json.dumps(manifest))
    samples = []
    for task in manifest["tasks"]:
        for model in models:
            for epoch in (1, 2):
                relative = f"sessions/{task.strip('<>/b')}/{model}/epoch-{epoch}.yaml"
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                plain_session(target, task=f"{task} by {model}, epoch {epoch}")
                outcome = "pass" if (epoch == 1 or model == models[0]) else "fail"
                samples.append([task, model, epoch, outcome, 2, 240, 0, 0, 0.002, 0.5, relative, ""])
    columns = ["task", "model", "epoch", "outcome", "steps", "total_tokens", "cached_tokens"]
    columns += ["cache_write_tokens", "cost", "duration_s", "session", "error"]
    _csv(root / "samples.csv", columns, samples)
    summary_columns = ["task", "model", "n", "passed", "pass_rate", "wilson_low", "wilson_high", "pass_at_1"]
    summary_columns += [
        "pass_at_2",
        "mean_steps",
        "mean_tokens",
        "mean_cost",
        "cached_tokens",
        "cache_write_tokens",
    ]
    summary = []
    for task in manifest["tasks"]:
        for model in models:
            rate = 1.0 if model == models[0] else 0.5
            summary.append([task, model, 2, int(rate * 2), rate, 0.3423, 1.0, rate, 1.0, 2, 240, 0.002, 0, 0])
    _csv(root / "summary.csv", summary_columns, summary)
    if compare and len(models) > 1:
        _csv(
            root / "compare.csv",
            ["model_a", "model_b", "tasks", "difference", "ci_low", "ci_high", "p_value"],
            [[models[0], models[1], 2, 0.5, 0.1, 0.9, 0.0455]],
        )
    return root


def _csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)


@attrs.frozen
class Recorded:
    """The sessions every test of this folder may read (never change)."""

    hostile: Path
    parent: Path
    fork: Path
    compact: Path
    ask: Path
    eval_dir: Path
    eval_without_compare: Path


@attrs.frozen
class Opened:
    """A view open in the browser, and what it asked the network for and complained about."""

    page: Any  # playwright.sync_api.Page
    requests: list[str]
    errors: list[str]

    def violations(self) -> list[str]:
        """Content-Security-Policy violations reported on the page (none: nothing was blocked)."""
        return list(self.page.evaluate("window.__cspViolations || []"))
