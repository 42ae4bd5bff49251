"""The statistics of an eval: pure functions, no I/O, standard library only.

- `wilson_interval`: a 95 % interval for one pass rate (`session/intervals.py`, shared with
  `replay --samples`), sound at 0 and n passes.
- `pass_at_k`: the unbiased estimator of Chen et al. (2021), 1 - C(n-c, k) / C(n, k), as a product.
- `paired_comparison`: two models over the tasks both ran. The interval on the mean difference
  comes from Student's t paired over tasks; the p-value from the sign-flip permutation test
  (Fisher 1935), exact by counting, which assumes no normal shape of the differences.

docs/eval-statistics.md gives the formulas, the references and how to read the results.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from fractions import Fraction
from functools import cache

import attrs

from nano_code.session.intervals import CONFIDENCE
from nano_code.session.intervals import Z_95 as Z_95  # named here for the eval tables and tests
from nano_code.session.intervals import wilson_interval as wilson_interval

EXACT_WORK_LIMIT = 30_000_000
"""Cells the exact sign-flip count may fill (about a second); beyond it the test samples sign flips."""

MONTE_CARLO_FLIPS = 20_000
"""Random sign flips drawn when the exact count would be too long: p within about +-0.003 at p = 0.05."""

MONTE_CARLO_SEED = 20_211_907
"""Fixed, so the same samples always give the same p-value."""


def pass_at_k(n: int, passed: int, k: int) -> float:
    """The chance that at least one of k samples drawn without replacement from n passes.

    Unbiased (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), computed as 1 - prod_{i<k} (n-c-i)/(n-i)
    so no binomial coefficient is ever formed. Defined for 1 <= k <= n.
    """
    if not 0 <= passed <= n:
        raise ValueError(f"passed must be within 0..n, got {passed} of {n}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    failed = n - passed
    if failed < k:
        return 1.0
    all_fail = 1.0
    for i in range(k):
        all_fail *= (failed - i) / (n - i)
    return 1.0 - all_fail


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2)."""
    if df < 1:
        raise ValueError(f"Student's t needs df >= 1, got {df}")
    if math.isinf(t):
        return 0.0
    if t * t < df:
        # The same tail through the complement, so a small t keeps its precision near 1.
        return 1.0 - regularized_incomplete_beta(t * t / (df + t * t), 0.5, df / 2)
    return regularized_incomplete_beta(df / (df + t * t), df / 2, 0.5)


@cache
def t_quantile(probability: float, df: int) -> float:
    """The t with P(T <= t) = probability (> 0.5), found by bisection on `t_two_sided_p`."""
    if not 0.5 < probability < 1:
        raise ValueError(f"probability must be within (0.5, 1), got {probability}")
    tail = 2 * (1 - probability)
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > tail:
        low, high = high, high * 2
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if t_two_sided_p(middle, df) > tail:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), by the continued fraction of Numerical Recipes (Press et al. 2007, section 6.4)."""
    if not 0 <= x <= 1:
        raise ValueError(f"x must be within [0, 1], got {x}")
    if x in (0, 1):
        return float(x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1) / (a + b + 2):
        return front * _beta_continued_fraction(x, a, b) / a
    return 1.0 - front * _beta_continued_fraction(1 - x, b, a) / b


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of I_x(a, b), evaluated by the modified Lentz method."""
    tiny, epsilon = 1e-300, 1e-15

    def guarded(value: float) -> float:
        return tiny if abs(value) < tiny else value

    c = 1.0
    d = 1.0 / guarded(1 - (a + b) * x / (a + 1))
    result = d
    for m in range(1, 10_000):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 / guarded(1 + even * d)
        c = guarded(1 + even / c)
        result *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 / guarded(1 + odd * d)
        c = guarded(1 + odd / c)
        step = d * c
        result *= step
        if abs(step - 1) < epsilon:
            break
    return result


DIFFERENCE_BOUNDS = (-1.0, 1.0)
"""The range of a difference of two pass rates."""


@attrs.frozen
class PairedComparison:
    """Model a against model b over the tasks both ran, from the per-task differences a - b."""

    tasks: int
    """How many tasks the comparison is over."""
    difference: float | None
    """The mean over tasks of a's pass rate minus b's; None without a task."""
    ci_low: float | None
    """The 95 % interval on `difference` (Student's t, paired over tasks, cut to -1..1); None under 2 tasks."""
    ci_high: float | None
    p_value: float | None
    """Two-sided sign-flip permutation test of 'no difference'; None under 2 tasks."""
    p_exact: bool
    """True when every sign flip was counted; False when MONTE_CARLO_FLIPS were drawn."""

    @property
    def smallest_p(self) -> float | None:
        """The smallest p-value the test can give with this many tasks, 2 / 2^tasks."""
        return 2.0 / 2.0**self.tasks if self.tasks >= 2 else None


def paired_comparison(differences: Sequence[Fraction]) -> PairedComparison:
    """Mean difference, its t interval and the sign-flip p-value for per-task differences a - b of
    pass rates.

    The differences are exact fractions (a difference of pass rates is one), so the permutation
    test can count sign flips on integers.
    """
    tasks = len(differences)
    if tasks == 0:
        return PairedComparison(0, None, None, None, None, True)
    mean = float(sum(differences, Fraction(0)) / tasks)
    if tasks == 1:
        return PairedComparison(1, mean, None, None, None, True)
    low, high = mean_interval([float(d) for d in differences], DIFFERENCE_BOUNDS)
    p_value, exact = sign_flip_p_value(differences)
    return PairedComparison(tasks, mean, low, high, p_value, exact)


def mean_interval(values: Sequence[float], bounds: tuple[float, float]) -> tuple[float, float]:
    """The 95 % Student's t interval on the mean of `values` (at least 2), mean +- t * s / sqrt(n),
    cut to `bounds`, the range the mean can take: the cut drops only values the mean cannot have,
    so the interval covers the true mean exactly as often."""
    n = len(values)
    if n < 2:
        raise ValueError("an interval on a mean needs at least 2 values")
    mean = math.fsum(values) / n
    variance = math.fsum((value - mean) ** 2 for value in values) / (n - 1)
    half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * math.sqrt(variance / n)
    return max(bounds[0], mean - half), min(bounds[1], mean + half)


def sign_flip_p_value(differences: Sequence[Fraction]) -> tuple[float, bool]:
    """Two-sided p of the paired sign-flip test, and whether it was counted exactly.

    Under 'no difference' each task's difference is as likely to have either sign, so p is the share
    of the 2^n sign patterns whose |sum| is at least the observed |sum|. Scaled to integers, the
    distribution of the sum is built one task at a time (the count of patterns reaching each sum).
    """
    scale = math.lcm(*(d.denominator for d in differences))
    weights = [abs(int(d * scale)) for d in differences]
    observed = abs(sum(int(d * scale) for d in differences))
    total = sum(weights)
    if len(weights) * (2 * total + 1) > EXACT_WORK_LIMIT:
        return _sampled_sign_flip_p(weights, observed), False
    counts = [1]
    for weight in weights:
        counts = _shifted_sum(counts, weight)
    offset = (len(counts) - 1) // 2
    extreme = sum(counts[offset + observed :]) + sum(counts[: offset - observed + 1])
    if observed == 0:
        extreme = sum(counts)
    return float(Fraction(extreme, 2 ** len(weights))), True


def _shifted_sum(counts: list[int], weight: int) -> list[int]:
    """The counts of sums after one more task whose difference is +weight or -weight."""
    padding = [0] * (2 * weight)
    return [down + up for down, up in zip(counts + padding, padding + counts, strict=True)]


def _sampled_sign_flip_p(weights: Sequence[int], observed: int) -> float:
    """The sign-flip p from MONTE_CARLO_FLIPS random patterns, as (hits + 1) / (draws + 1) so it is
    never 0 (Phipson and Smyth 2010).

    A pattern is random bits, one per task (1: the difference keeps its sign); its sum is read a byte
    at a time from tables of the sums of every subset of 8 tasks.
    """
    chunks = [weights[start : start + 8] for start in range(0, len(weights), 8)]
    tables = [[_subset_sum(chunk, byte) for byte in range(256)] for chunk in chunks]
    generator = random.Random(MONTE_CARLO_SEED)
    total = sum(weights)
    hits = 0
    for _ in range(MONTE_CARLO_FLIPS):
        pattern = generator.getrandbits(8 * len(chunks)).to_bytes(len(chunks), "little")
        kept = sum(table[byte] for table, byte in zip(tables, pattern, strict=True))
        if abs(2 * kept - total) >= observed:
            hits += 1
    return (hits + 1) / (MONTE_CARLO_FLIPS + 1)


def _subset_sum(weights: Sequence[int], mask: int) -> int:
    """The sum of the weights whose bit is set in mask."""
    return sum(weight for index, weight in enumerate(weights) if mask >> index & 1)
