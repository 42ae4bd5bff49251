"""The Wilson score interval for a pass rate (Wilson 1927), sound at 0 and n passes where the
textbook normal interval collapses (Brown, Cai and DasGupta 2001). Standard library only: the
pass rates of `replay --samples` forks and of eval runs are bounded by this one formula."""

from __future__ import annotations

import math
from statistics import NormalDist

CONFIDENCE = 0.95
"""The level of every interval here."""

Z_95 = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
"""The standard normal quantile for a two-sided 95 % interval (1.959963984540054)."""


def wilson_interval(passed: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for `passed` successes in `n` trials, inside [0, 1] and around
    the observed rate. With no trial there is no information: the interval is all of [0, 1]."""
    if not 0 <= passed <= n:
        raise ValueError(f"passed must be within 0..n, got {passed} of {n}")
    if n == 0:
        return 0.0, 1.0
    rate = passed / n
    denominator = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if passed == 0 else min(rate, max(0.0, centre - half))
    high = 1.0 if passed == n else max(rate, min(1.0, centre + half))
    return low, high
