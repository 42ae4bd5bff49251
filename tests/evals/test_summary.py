"""nano_code.evals.summary: the rows of summary.csv and compare.csv, and the report, on small tables."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nano_code.evals.summary import SAMPLE_COLUMNS, SampleRow, compare_rows, report, summary_rows


def sample(task: str, model: str, epoch: int, outcome: str, cost: float | None = 0.01) -> SampleRow:
    """One sample with fixed figures: 4 steps, 1000 tokens, 600 read from the cache, 100 written."""
    return SampleRow(
        task=task,
        model=model,
        epoch=epoch,
        outcome=outcome,
        steps=4,
        total_tokens=1000,
        cached_tokens=600,
        cache_write_tokens=100,
        cost=cost,
        duration_s=2.0,
        session=f"sessions/{task}/{model}/epoch-{epoch}.yaml",
        error="server failed" if outcome == "error" else "",
    )


def outcomes(task: str, model: str, *results: str) -> list[SampleRow]:
    """One sample per result, epochs 1, 2, ..."""
    return [sample(task, model, epoch, result) for epoch, result in enumerate(results, start=1)]


SUITE = [
    *outcomes("fix-bug", "a", "pass", "pass", "fail"),
    *outcomes("fix-bug", "b", "pass", "fail"),
    sample("fix-bug", "b", 3, "error", cost=None),
    *outcomes("add-test", "a", "pass", "pass"),
    *outcomes("add-test", "b", "fail", "fail"),
    *outcomes("rename", "a", "fail", "pass"),
    *outcomes("rename", "b", "fail", "pass"),
    *outcomes("docs", "a", "pass"),
]
"""Two models over four tasks; b never ran docs and one of b's samples ended in an error."""


def test_sample_columns_are_the_agreed_ones_in_order() -> None:
    assert SAMPLE_COLUMNS == (
        "task",
        "model",
        "epoch",
        "outcome",
        "steps",
        "total_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "cost",
        "duration_s",
        "session",
        "error",
    )


def test_an_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        attrs.evolve(sample("t", "m", 1, "pass"), outcome="skipped")


def test_summary_rows_have_the_agreed_columns_and_hand_figures() -> None:
    """fix-bug x b: 3 samples (pass, fail, error), 1 passed: the error counts in n and not in passed.
    pass@1 = 1/3; pass@2 = 1 - C(2,2)/C(3,2) = 2/3; pass@3 = 1 - C(2,3)/C(3,3) = 1; pass@4: 3 < 4, empty.
    Cost: two samples reported 0.01 each, one none, so the mean over those reporting is 0.01."""
    rows = summary_rows(SUITE, max_k=4)
    assert [(row["task"], row["model"]) for row in rows] == [
        ("add-test", "a"),
        ("add-test", "b"),
        ("docs", "a"),
        ("fix-bug", "a"),
        ("fix-bug", "b"),
        ("rename", "a"),
        ("rename", "b"),
    ]
    row = rows[4]
    assert list(row) == [
        "task",
        "model",
        "n",
        "passed",
        "pass_rate",
        "wilson_low",
        "wilson_high",
        "pass_at_1",
        "pass_at_2",
        "pass_at_3",
        "pass_at_4",
        "mean_steps",
        "mean_tokens",
        "mean_cost",
        "cached_tokens",
        "cache_write_tokens",
    ]
    assert (row["n"], row["passed"], row["pass_rate"]) == (3, 1, pytest.approx(1 / 3))
    assert [row[f"pass_at_{k}"] for k in (1, 2, 3)] == [pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]
    assert row["pass_at_4"] is None
    assert (row["mean_steps"], row["mean_tokens"], row["mean_cost"]) == (4.0, 1000.0, pytest.approx(0.01))
    assert (row["cached_tokens"], row["cache_write_tokens"]) == (1800, 300)
    assert 0 < row["wilson_low"] < 1 / 3 < row["wilson_high"] < 1


def test_mean_cost_is_empty_when_no_sample_reported_one() -> None:
    rows = summary_rows([sample("t", "m", 1, "pass", cost=None)], max_k=1)
    assert rows[0]["mean_cost"] is None


def test_no_samples_give_no_summary_rows_and_an_empty_comparison() -> None:
    assert summary_rows([], max_k=3) == []
    [row] = compare_rows([], ["a", "b"])
    assert (row["tasks"], row["difference"], row["p_value"]) == (0, None, None)


def test_compare_rows_by_hand_over_the_tasks_both_ran() -> None:
    """Tasks both ran: add-test (1 - 0 = 1), fix-bug (2/3 - 1/3 = 1/3), rename (1/2 - 1/2 = 0);
    docs (a only) is left out. Mean (1 + 1/3 + 0) / 3 = 4/9 = 0.444444.
    s^2 = ((5/9)^2 + (1/9)^2 + (4/9)^2) / 2 = (25 + 1 + 16) / 81 / 2 = 21/81, s = 0.509175,
    standard error s / sqrt(3) = 0.293972; t(0.975, 2) = 4.302653, half-width 1.264860:
    0.444444 +- 1.264860 = -0.820416 .. 1.709304, cut to the possible -0.820416 .. 1.
    Sign flips over magnitudes {1, 1/3, 0} (times 3: 3, 1, 0; observed sum 4): |sum| >= 4 only for
    + + (either sign of the 0) and - - : 4 of 8 patterns, p = 1/2."""
    [row] = compare_rows(SUITE, ["a", "b"])
    assert row["model_a"] == "a" and row["model_b"] == "b" and row["tasks"] == 3
    assert row["difference"] == pytest.approx(4 / 9)
    assert row["ci_low"] == pytest.approx(-0.820416, abs=1e-6)
    assert row["ci_high"] == 1.0
    assert row["p_value"] == 0.5


def test_pairs_follow_the_given_order() -> None:
    rows = compare_rows(SUITE, ["b", "a", "c"])
    assert [(row["model_a"], row["model_b"]) for row in rows] == [("b", "a"), ("b", "c"), ("a", "c")]
    assert rows[0]["difference"] == pytest.approx(-4 / 9)
    assert rows[1] == {
        "model_a": "b",
        "model_b": "c",
        "tasks": 0,
        "difference": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
    }


def test_identical_models_differ_by_zero_with_p_one() -> None:
    twin = [attrs.evolve(row, model="twin") for row in SUITE if row.model == "a"]
    [row] = compare_rows([*SUITE, *twin], ["a", "twin"])
    assert (row["tasks"], row["difference"], row["p_value"]) == (4, 0.0, 1.0)


def test_one_task_in_common_gives_no_interval_nor_p() -> None:
    rows = [*outcomes("only", "a", "pass", "pass"), *outcomes("only", "b", "pass", "fail")]
    [row] = compare_rows(rows, ["a", "b"])
    assert (row["tasks"], row["difference"], row["ci_low"], row["ci_high"], row["p_value"]) == (
        1,
        0.5,
        None,
        None,
        None,
    )


def test_the_samples_are_read_once() -> None:
    def once() -> Iterator[SampleRow]:
        yield from SUITE

    assert summary_rows(once(), max_k=2) == summary_rows(SUITE, max_k=2)
    assert report(once(), ["a", "b"], 2) == report(SUITE, ["a", "b"], 2)


suites = st.lists(
    st.builds(
        sample,
        task=st.sampled_from(["t1", "t2", "t3", "t4", "t5"]),
        model=st.sampled_from(["a", "b"]),
        epoch=st.integers(1, 4),
        outcome=st.sampled_from(["pass", "fail", "error"]),
    ),
    max_size=40,
)


@given(suites)
def test_swapping_the_models_flips_the_difference_and_keeps_p(samples: list[SampleRow]) -> None:
    [forward] = compare_rows(samples, ["a", "b"])
    [backward] = compare_rows(samples, ["b", "a"])
    assert forward["tasks"] == backward["tasks"]
    assert forward["p_value"] == backward["p_value"]
    if forward["difference"] is not None:
        assert forward["difference"] == pytest.approx(-backward["difference"])
    if forward["ci_low"] is not None:
        assert forward["ci_low"] == pytest.approx(-backward["ci_high"])


@given(suites, st.integers(1, 6))
def test_every_summary_row_is_consistent(samples: list[SampleRow], max_k: int) -> None:
    rows = summary_rows(samples, max_k)
    assert sum(row["n"] for row in rows) == len(samples)
    for row in rows:
        assert row["pass_at_1"] == pytest.approx(row["pass_rate"])
        assert row["wilson_low"] <= row["pass_rate"] <= row["wilson_high"]
        for k in range(1, max_k + 1):
            assert (row[f"pass_at_{k}"] is None) == (k > row["n"])


EXPECTED_REPORT = """\
a: 4 tasks, 8 samples
task      n  passed  pass rate (95% CI)  pass@1  pass@2  pass@3     cost  cache read  cache written
add-test  2       2    1.00 (0.34-1.00)    1.00    1.00       -  $0.0200        1200            200
docs      1       1    1.00 (0.21-1.00)    1.00       -       -  $0.0100         600            100
fix-bug   3       2    0.67 (0.21-0.94)    0.67    1.00    1.00  $0.0300        1800            300
rename    2       1    0.50 (0.09-0.91)    0.50    1.00       -  $0.0200        1200            200
mean pass rate over tasks 0.79 (95% CI 0.39 to 1.00, Student's t over tasks); cost $0.0800; \
prompt cache 4800 tokens read, 800 written

b: 3 tasks, 7 samples (1 error, counted as not passed)
task      n  passed  pass rate (95% CI)  pass@1  pass@2  pass@3                    cost  cache read  cache written
add-test  2       0    0.00 (0.00-0.66)    0.00    0.00       -                 $0.0200        1200            200
fix-bug   3       1    0.33 (0.06-0.79)    0.33    0.67    1.00  $0.0200 (1 unreported)        1800            300
rename    2       1    0.50 (0.09-0.91)    0.50    1.00       -                 $0.0200        1200            200
mean pass rate over tasks 0.28 (95% CI 0.00 to 0.91, Student's t over tasks); cost $0.0600 (1 unreported); \
prompt cache 4200 tokens read, 700 written

c: no samples

a vs b, over the 3 tasks both ran (of 4):
  a passes more often, by 0.444 per task on average (95% CI -0.820 to 1.000, Student's t paired over tasks).
  p = 0.5 (exact sign-flip test): not significant at the 5% level; with 3 tasks no p-value can fall below 0.25.

a vs c: no task was run by both, so there is nothing to compare.

b vs c: no task was run by both, so there is nothing to compare.
"""


def test_the_report_text() -> None:
    """The figures are those of the hand computations above; Wilson for 2/3:
    centre (2/3 + z^2/6) / (1 + z^2/3) = 1.306910 / 2.280486 = 0.573084,
    half z * sqrt(2/27 + z^2/36) / 2.280486 = 1.959964 * 0.425184 / 2.280486 = 0.365424: 0.21 .. 0.94."""
    assert report(SUITE, ["a", "b", "c"], max_k=3) == EXPECTED_REPORT


def test_the_report_says_when_the_other_model_is_ahead_and_when_it_is_significant() -> None:
    """Six tasks, b passing every one and a none: each difference -1, so every one of the 64 sign
    patterns but the two uniform ones falls short, p = 2/64 = 0.03125."""
    rows = []
    for task in range(6):
        rows += [*outcomes(f"t{task}", "a", "fail"), *outcomes(f"t{task}", "b", "pass")]
    text = report(rows, ["a", "b"], 1)
    assert "b passes more often, by 1.000 per task on average (95% CI 1.000 to 1.000" in text
    assert "p = 0.0312 (exact sign-flip test): significant at the 5% level." in text
    assert "no p-value can fall below" not in text


def test_the_report_for_one_task_and_for_equal_models() -> None:
    one = [*outcomes("only", "a", "pass", "pass"), *outcomes("only", "b", "pass", "fail")]
    assert report(one, ["a", "b"], 2).endswith(
        "a vs b, over the 1 task both ran:\n"
        "  a passes more often, by 0.500 per task on average.\n"
        "  One task gives no interval and no p-value: they need at least 2.\n"
    )
    equal = [*outcomes("t1", "a", "pass"), *outcomes("t1", "b", "pass")]
    equal += [*outcomes("t2", "a", "fail"), *outcomes("t2", "b", "fail")]
    assert "both pass at the same mean rate per task: difference 0.000 (95% CI 0.000 to 0.000" in report(
        equal, ["a", "b"], 1
    )
