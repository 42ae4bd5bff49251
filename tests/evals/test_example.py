"""The worked example of docs/evals.md: examples/eval/suite.toml against examples/eval/model.py,
served as the guide serves it, gives the outcomes the guide shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nano_code.evals import run_eval

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "eval"


def test_the_example_suite_runs_against_the_example_model(clean_cwd: Path, tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "model.py"), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        models = ["example/careful", "example/hasty"]
        result = run_eval(EXAMPLE / "suite.toml", models, 2, tmp_path / "out", base_url=url, jobs=2)
    finally:
        server.terminate()
        server.wait(timeout=10)
    outcomes = {(r.task, r.model, r.epoch): r.outcome for r in result.samples}
    assert len(outcomes) == 16
    assert {o for (_, m, _), o in outcomes.items() if m == "example/careful"} == {"pass"}
    hasty = {(t, e): o for (t, m, e), o in outcomes.items() if m == "example/hasty"}
    assert hasty["fix-add", 1] == hasty["fix-add", 2] == "fail"
    assert sorted([hasty["count-lines", 1], hasty["count-lines", 2]]) == ["fail", "pass"]
    assert hasty["hello", 1] == hasty["greet", 2] == "pass"
    assert all(r.cost is not None and r.cost > 0 for r in result.samples)
