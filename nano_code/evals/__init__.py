"""Evals: a task suite across models and epochs, every sample a recorded session (docs/evals.md).

from nano_code.evals import run_eval
result = run_eval("suite.toml", ["model-a", "model-b"], epochs=5, output="runs/cmp", jobs=4)
print(result.report)          # result.samples, result.summary, result.compare: the tables
"""

from nano_code.evals.live_task import LiveRun, run_task_live
from nano_code.evals.rundir import RunDirError
from nano_code.evals.runner import EvalError, EvalResult, EvalStopped, Progress, run_eval
from nano_code.evals.sample import SampleResult, SampleSpec, run_sample
from nano_code.evals.suite import Suite, SuiteError, Task, load_suite
from nano_code.evals.summary import SAMPLE_COLUMNS, SampleRow

__all__ = [
    "SAMPLE_COLUMNS",
    "EvalError",
    "EvalResult",
    "EvalStopped",
    "LiveRun",
    "Progress",
    "RunDirError",
    "SampleResult",
    "SampleRow",
    "SampleSpec",
    "Suite",
    "SuiteError",
    "Task",
    "load_suite",
    "run_eval",
    "run_sample",
    "run_task_live",
]
