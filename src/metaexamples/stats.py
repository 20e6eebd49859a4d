"""Interval estimates shared by both families.

- `t_interval`: across seeds (independent runs), Student-t with n - 1 degrees of freedom.
  Exact coverage for normal data at any n >= 2; a percentile bootstrap over 3 seeds
  covers about 75 % at a nominal 95 %, which is why it is not used there.
- `wilson_interval`: a proportion from n independent trials (exact match on an eval set).
- `cluster_bootstrap`: within one run, when items are not independent (a valid string and
  the negatives made from it), resample whole clusters, then apply any statistic.

Every function returns an `Interval`, which names its method and its n, so a table can
say how each interval was made.

>>> t_interval([1.0, 2.0, 3.0]).rounded(3)
Interval(estimate=2.0, low=-0.484, high=4.484, n=3, method='t')
>>> wilson_interval(8, 10).rounded(3)
Interval(estimate=0.8, low=0.49, high=0.943, n=10, method='wilson')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval; NaN bounds when n is too small."""

    estimate: float
    low: float
    high: float
    n: int
    method: str

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    def excludes(self, value: float) -> bool:
        """True when the interval is defined and `value` lies outside it."""
        return not (math.isnan(self.low) or math.isnan(self.high)) and not self.covers(value)

    def rounded(self, digits: int) -> Interval:
        return Interval(*(round(float(v), digits) for v in (self.estimate, self.low, self.high)),
                        n=self.n, method=self.method)


def _finite(values: Sequence[float]) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v[~np.isnan(v)]


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean of `values` with a Student-t interval (n - 1 degrees of freedom); NaNs dropped."""
    v = _finite(values)
    n = len(v)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "t")
    mean = float(v.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, "t")
    from scipy.special import stdtrit  # the t quantile; scipy.stats takes seconds to import

    half = float(stdtrit(n - 1, 0.5 + level / 2) * v.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n, "t")


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> Interval:
    """Proportion successes / n with its Wilson score interval."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "wilson")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high, n, "wilson")


def percentile_bounds(samples: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The central `level` range of bootstrap `samples` (NaN samples dropped)."""
    s = _finite(samples)
    if len(s) == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(s, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def cluster_draws(
    clusters: Sequence[object], rng: np.random.Generator, resamples: int
) -> list[np.ndarray]:
    """Item indices of `resamples` cluster-bootstrap resamples.

    Each resample draws as many clusters as there are, with replacement, and takes every
    item of each drawn cluster. With every item its own cluster this is the plain bootstrap.
    """
    labels, inverse = np.unique(np.asarray(clusters, dtype=object).astype(str),
                                return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(labels))]
    if not members:
        return []
    picks = rng.integers(0, len(members), size=(resamples, len(members)))
    return [np.concatenate([members[k] for k in row]) for row in picks]


def cluster_bootstrap(
    statistic: Callable[[np.ndarray], dict[str, float]],
    clusters: Sequence[object],
    rng: np.random.Generator,
    resamples: int = 1000,
    level: float = LEVEL,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every value of `statistic(item_indices)` under a cluster
    bootstrap; one set of draws serves every key the statistic returns."""
    collected: dict[str, list[float]] = {}
    for idx in cluster_draws(clusters, rng, resamples):
        for key, value in statistic(idx).items():
            collected.setdefault(key, []).append(value)
    return {key: percentile_bounds(values, level) for key, values in collected.items()}
