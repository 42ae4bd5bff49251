"""nano_code.evals.stats against values worked out by hand, textbook tables and brute force."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nano_code.evals import stats
from nano_code.evals.stats import (
    Z_95,
    mean_interval,
    paired_comparison,
    pass_at_k,
    regularized_incomplete_beta,
    sign_flip_p_value,
    t_quantile,
    t_two_sided_p,
    wilson_interval,
)

# --- Wilson ---------------------------------------------------------------------------------------


def test_wilson_for_7_of_10_matches_the_hand_computation() -> None:
    """p = 0.7, n = 10, z = 1.959964, z^2 = 3.841459:
    denominator 1 + z^2/n = 1.3841459;
    centre (0.7 + z^2/20) / 1.3841459 = 0.8920730 / 1.3841459 = 0.6444934;
    half z * sqrt(0.21/10 + z^2/400) / 1.3841459 = 1.959964 * sqrt(0.0306036) / 1.3841459
       = 1.959964 * 0.1749390 / 1.3841459 = 0.2477153;
    so 0.3967781 .. 0.8922087."""
    low, high = wilson_interval(7, 10)
    assert low == pytest.approx(0.3967781, abs=1e-6)
    assert high == pytest.approx(0.8922087, abs=1e-6)


def test_wilson_at_none_and_all_passing_stays_inside_zero_one() -> None:
    """With c = 0 the formula reduces to [0, z^2 / (n + z^2)]; with c = n to [n / (n + z^2), 1].
    For n = 10: z^2 / 13.841459 = 0.277533 and 10 / 13.841459 = 0.722467."""
    assert wilson_interval(0, 10) == (0.0, pytest.approx(Z_95**2 / (10 + Z_95**2)))
    assert wilson_interval(0, 10)[1] == pytest.approx(0.277533, abs=1e-6)
    assert wilson_interval(10, 10) == (pytest.approx(0.722467, abs=1e-6), 1.0)
    assert wilson_interval(1, 1) == (pytest.approx(1 / (1 + Z_95**2)), 1.0)


def test_wilson_with_no_sample_is_the_whole_range_and_bad_counts_are_refused() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match=r"within 0\.\.n"):
        wilson_interval(3, 2)
    with pytest.raises(ValueError, match=r"within 0\.\.n"):
        wilson_interval(-1, 2)


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_the_observed_rate_inside_zero_one(counts: tuple[int, int]) -> None:
    passed, n = counts
    low, high = wilson_interval(passed, n)
    assert 0.0 <= low <= passed / n <= high <= 1.0
    assert low < high


# --- pass@k ---------------------------------------------------------------------------------------


def test_pass_at_k_for_5_samples_2_passing_matches_the_fractions() -> None:
    """n = 5, c = 2, 1 - C(3, k) / C(5, k):
    k=1: 1 - 3/5 = 2/5; k=2: 1 - 3/10 = 7/10; k=3: 1 - 1/10 = 9/10;
    k=4, 5: C(3, k) = 0, so 1."""
    expected = [Fraction(2, 5), Fraction(7, 10), Fraction(9, 10), Fraction(1), Fraction(1)]
    assert [pass_at_k(5, 2, k) for k in range(1, 6)] == [pytest.approx(float(f)) for f in expected]


def test_pass_at_k_more_values_by_hand() -> None:
    """n=10, c=3, k=2: 1 - C(7,2)/C(10,2) = 1 - 21/45 = 8/15.
    n=1000, c=1, k=500: C(999,500)/C(1000,500) = (1000-500)/1000, so 1/2 -- binomials of ~300 digits,
    which the product form never builds. No pass: 0 for every k; all pass: 1 for every k."""
    assert pass_at_k(10, 3, 2) == pytest.approx(8 / 15)
    assert pass_at_k(1000, 1, 500) == pytest.approx(0.5)
    assert [pass_at_k(4, 0, k) for k in range(1, 5)] == [0.0] * 4
    assert [pass_at_k(4, 4, k) for k in range(1, 5)] == [1.0] * 4


def test_pass_at_k_is_defined_for_1_to_n_only() -> None:
    for n, passed, k in [(3, 1, 4), (3, 1, 0), (0, 0, 1), (3, 4, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, passed, k)


@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_pass_at_1_is_the_pass_rate_and_pass_at_k_rises_with_k(counts: tuple[int, int]) -> None:
    n, passed = counts
    assert pass_at_k(n, passed, 1) == pytest.approx(passed / n)
    values = [pass_at_k(n, passed, k) for k in range(1, n + 1)]
    assert all(0.0 <= value <= 1.0 for value in values)
    assert all(earlier <= later + 1e-12 for earlier, later in itertools.pairwise(values))


@given(st.integers(1, 30).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_equals_the_binomial_formula(case: tuple[int, int, int]) -> None:
    n, passed, k = case
    assert pass_at_k(n, passed, k) == pytest.approx(1 - math.comb(n - passed, k) / math.comb(n, k))


# --- Student's t ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("df", "table"),
    [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (9, 2.262), (30, 2.042), (120, 1.980)],
)
def test_t_quantile_matches_the_textbook_table(df: int, table: float) -> None:
    """The two-sided 5 % critical values printed in every statistics textbook."""
    assert t_quantile(0.975, df) == pytest.approx(table, abs=5e-4)


def test_t_quantile_tends_to_the_normal_one() -> None:
    assert t_quantile(0.975, 100_000) == pytest.approx(Z_95, abs=1e-4)


def test_t_tail_in_closed_form() -> None:
    """df=1 is Cauchy: P(|T| >= t) = 1 - 2 atan(t) / pi, so 1/2 at t = 1.
    df=2: P(|T| >= t) = 1 - t / sqrt(2 + t^2), so 1 - 2 / sqrt(6) = 0.183503 at t = 2."""
    assert t_two_sided_p(1.0, 1) == pytest.approx(0.5)
    assert t_two_sided_p(2.0, 2) == pytest.approx(1 - 2 / math.sqrt(6))
    assert t_two_sided_p(0.0, 7) == pytest.approx(1.0)
    assert t_two_sided_p(math.inf, 7) == 0.0


def _t_tail_abramowitz_stegun(t: float, df: int) -> float:
    """1 - A(t|df), A from Abramowitz and Stegun 26.7.3 (odd df) and 26.7.4 (even df), theta = atan(t/sqrt(df))."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2:
        series, term = 0.0, 1.0
        for j in range(1, (df - 1) // 2 + 1):
            series += term
            term *= cos2 * (2 * j) / (2 * j + 1)
        inside = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * series)
    else:
        series, term = 0.0, 1.0
        for j in range(df // 2):
            series += term
            term *= cos2 * (2 * j + 1) / (2 * j + 2)
        inside = math.sin(theta) * series
    return 1 - inside


@given(st.floats(0.0, 40.0), st.integers(1, 60))
def test_t_tail_agrees_with_the_closed_form_series(t: float, df: int) -> None:
    assert t_two_sided_p(t, df) == pytest.approx(_t_tail_abramowitz_stegun(t, df), abs=1e-9)


@given(st.floats(0.51, 0.9999), st.integers(1, 500))
def test_t_quantile_inverts_the_tail(probability: float, df: int) -> None:
    assert t_two_sided_p(t_quantile(probability, df), df) == pytest.approx(2 * (1 - probability), rel=1e-6)


@given(st.floats(0.0, 1.0), st.floats(0.1, 20.0), st.floats(0.1, 20.0))
def test_incomplete_beta_special_cases(x: float, a: float, b: float) -> None:
    """I_x(a, 1) = x^a and I_x(1, b) = 1 - (1 - x)^b."""
    assert regularized_incomplete_beta(x, a, 1.0) == pytest.approx(x**a, abs=1e-10)
    assert regularized_incomplete_beta(x, 1.0, b) == pytest.approx(1 - (1 - x) ** b, abs=1e-10)


@given(st.integers(0, 1024).map(lambda k: k / 1024), st.floats(0.1, 200.0), st.floats(0.1, 200.0))
def test_incomplete_beta_is_symmetric(x: float, a: float, b: float) -> None:
    """I_x(a, b) = 1 - I_{1-x}(b, a) (x in 1024ths, so 1 - x is exact)."""
    assert regularized_incomplete_beta(x, a, b) == pytest.approx(
        1 - regularized_incomplete_beta(1 - x, b, a), abs=1e-10
    )


# --- the paired comparison ------------------------------------------------------------------------

HAND_TABLE = [Fraction(1, 2), Fraction(1, 5), Fraction(-1, 10), Fraction(3, 10)]
"""Per-task differences a - b of a small suite, checked by hand below."""


def test_paired_t_interval_on_a_small_table_by_hand() -> None:
    """d = 0.5, 0.2, -0.1, 0.3: mean 0.9 / 4 = 0.225; deviations 0.275, -0.025, -0.325, 0.075,
    squares sum 0.1875, s^2 = 0.1875 / 3 = 0.0625, s = 0.25, standard error 0.25 / 2 = 0.125;
    t(0.975, 3) = 3.182446, half-width 0.397806: 0.225 +- 0.397806 = -0.172806 .. 0.622806."""
    result = paired_comparison(HAND_TABLE)
    assert result.tasks == 4
    assert result.difference == pytest.approx(0.225)
    assert result.ci_low == pytest.approx(-0.172806, abs=1e-6)
    assert result.ci_high == pytest.approx(0.622806, abs=1e-6)


def test_sign_flip_p_on_a_small_table_by_hand() -> None:
    """Scaled by 10 the differences are 5, 2, -1, 3 with sum 9. A sign pattern flips a subset F of
    the magnitudes {5, 2, 1, 3} (total 11) and sums to 11 - 2 * sum(F); |11 - 2 sum(F)| >= 9 when
    sum(F) <= 1 ({} and {1}) or sum(F) >= 10 ({5, 2, 3} and all four): 4 of 16 patterns, p = 1/4."""
    assert paired_comparison(HAND_TABLE).p_value == 0.25
    assert paired_comparison(HAND_TABLE).p_exact


def test_identical_models_differ_by_zero_with_p_one() -> None:
    result = paired_comparison([Fraction(0)] * 6)
    assert (result.difference, result.ci_low, result.ci_high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_one_task_gives_a_difference_but_no_interval_nor_p() -> None:
    result = paired_comparison([Fraction(2, 5)])
    assert (result.tasks, result.difference, result.ci_low, result.ci_high, result.p_value) == (
        1,
        0.4,
        None,
        None,
        None,
    )
    assert result.smallest_p is None


def test_no_task_gives_nothing() -> None:
    result = paired_comparison([])
    assert (result.tasks, result.difference, result.p_value) == (0, None, None)


def test_the_same_difference_on_every_task() -> None:
    """Three tasks, each +1: no spread, so the t interval is the point 1 .. 1; of the 8 sign patterns
    only +++ and --- reach |sum| = 3, so p = 2/8, the smallest 3 tasks allow."""
    result = paired_comparison([Fraction(1)] * 3)
    assert (result.ci_low, result.ci_high, result.p_value) == (1.0, 1.0, 0.25)
    assert result.smallest_p == 0.25


def test_mean_interval_needs_two_values() -> None:
    with pytest.raises(ValueError):
        mean_interval([0.5], (0.0, 1.0))


rates = st.fractions(min_value=0, max_value=1, max_denominator=6)
differences = st.lists(st.tuples(rates, rates).map(lambda pair: pair[0] - pair[1]), min_size=2, max_size=9)


@given(differences)
def test_the_sign_flip_count_equals_brute_force(values: list[Fraction]) -> None:
    observed = abs(sum(values))
    patterns = list(itertools.product((1, -1), repeat=len(values)))
    extreme = sum(
        1
        for signs in patterns
        if abs(sum(s * abs(v) for s, v in zip(signs, values, strict=True))) >= observed
    )
    assert sign_flip_p_value(values) == (pytest.approx(extreme / len(patterns)), True)


@given(differences)
def test_swapping_the_models_flips_the_sign_and_keeps_p(values: list[Fraction]) -> None:
    forward = paired_comparison(values)
    backward = paired_comparison([-value for value in values])
    assert forward.difference == pytest.approx(-backward.difference)  # type: ignore[operator]
    assert forward.ci_low == pytest.approx(-backward.ci_high)  # type: ignore[operator]
    assert forward.p_value == backward.p_value
    assert forward.smallest_p <= forward.p_value <= 1.0  # type: ignore[operator]


def test_sampled_sign_flips_are_deterministic_and_near_the_exact_p(monkeypatch: pytest.MonkeyPatch) -> None:
    values = [Fraction((index % 7) - 2, 5) for index in range(40)]
    exact, counted = sign_flip_p_value(values)
    assert counted
    monkeypatch.setattr(stats, "EXACT_WORK_LIMIT", 0)
    sampled, counted = sign_flip_p_value(values)
    assert not counted
    assert sampled == sign_flip_p_value(values)[0]
    assert sampled == pytest.approx(exact, abs=0.01)
    assert sampled > 0


def test_a_large_suite_is_counted_exactly_and_quickly() -> None:
    """2000 tasks of 10 epochs each: the exact count stays under EXACT_WORK_LIMIT cells."""
    values = [Fraction((index % 5) - 2, 10) for index in range(2000)]
    p_value, counted = sign_flip_p_value(values)
    assert counted
    assert 0 < p_value <= 1


def test_against_scipy_when_it_is_installed() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    assert t_quantile(0.975, 7) == pytest.approx(scipy_stats.t.ppf(0.975, 7), rel=1e-9)
    assert t_two_sided_p(2.5, 11) == pytest.approx(2 * scipy_stats.t.sf(2.5, 11), rel=1e-9)
    interval = scipy_stats.binomtest(7, 10).proportion_ci(method="wilson")
    assert wilson_interval(7, 10) == (pytest.approx(interval.low), pytest.approx(interval.high))
