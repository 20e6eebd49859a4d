"""Interval estimates shared by both families.

- `t_interval`: across seeds (independent runs), Student-t with n - 1 degrees of freedom.
  Exact coverage for normal data at any n >= 2; a percentile bootstrap over 3 seeds
  covers about 75 % at a nominal 95 %, which is why it is not used there.
- `wilson_interval`: a proportion from n independent trials (exact match on an eval set).
- `agresti_coull_interval`: a proportion of a run's samples or pairs. Near 0 and 1 it
  keeps its coverage (n = 50: at least 93.5 % for every p; Wilson's falls to 89.5 %).
- `stratified_mean`: a mean over length strata with known weights, some strata exact
  (every string enumerated), the rest estimated from held-out strings (excess NLL).
- `cluster_bootstrap`: within one run, when items are not independent (a valid string and
  the negatives made from it), resample whole clusters, then apply any statistic.
- `proportion_minus_mean`: a rate minus a mean over the same items (rule validity above
  chance), from the rate's Agresti-Coull and the mean's t interval joined by
  `mover_limits` (MOVER), so the rate's skew near 0 and 1 is kept.

Contrasts between two conditions (`grammar/contrasts.py`) use `paired_t` (across seeds),
`newcombe_difference` (two runs' sample rates: `mover_test` of two Wilson intervals),
`normal_interval` (a bootstrap standard error), `holm` for many contrasts at once, and
`mde_t` / `mde_normal` / `seeds_needed` for the smallest effect a design can detect.

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
POWER = 0.80


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


def wilson_interval(successes: float, n: float, level: float = LEVEL) -> Interval:
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
    if len(labels) == 0:
        return []
    picks = rng.integers(0, len(labels), size=(resamples, len(labels)))
    if len(labels) == len(inverse):  # every item its own cluster: the plain bootstrap
        item_of = np.empty(len(labels), dtype=int)
        item_of[inverse] = np.arange(len(inverse))
        return list(item_of[picks])
    members = [np.flatnonzero(inverse == k) for k in range(len(labels))]
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


def auroc_interval(auroc: float, n_positive: int, n_negative: int,
                   level: float = LEVEL, variance: float | None = None) -> Interval:
    """AUROC with Wilson's interval at the largest variance any two score distributions
    give it from independent samples, A(1 - A) / min(m, n) (Birnbaum and Klose, 1957),
    so it needs no model of the scores and does not collapse at 0 or 1 as a bootstrap
    does. Near 1 a cluster bootstrap covers as little as 9 %; this covers 94.9-99.9 % in
    every shape tested (`tests/test_stats.py`), at up to 1.7 times the bootstrap's width
    at 0.9.

    When the negatives come in clusters, pass their `variance`
    (`clustered_auroc_variance`): where it exceeds that largest variance, the sample
    size shrinks by the ratio (the design effect), never grows.

    >>> auroc_interval(1.0, 200, 50).rounded(3)
    Interval(estimate=1.0, low=0.929, high=1.0, n=50, method='wilson_worst_case')
    >>> auroc_interval(0.9, 200, 50, variance=0.0036).rounded(3)  # design effect 2
    Interval(estimate=0.9, low=0.725, high=0.968, n=50, method='wilson_worst_case_clustered')
    """
    n = min(n_positive, n_negative)
    method = "wilson_worst_case" if variance is None else "wilson_worst_case_clustered"
    n_eff = float(n)
    if variance is not None and 0.0 < auroc < 1.0:
        n_eff = n / max(1.0, variance / (auroc * (1.0 - auroc) / n))
    iv = wilson_interval(auroc * n_eff, n_eff, level)
    return Interval(auroc, iv.low, iv.high, n, method)


def clustered_auroc_variance(positive: Sequence[float], positive_clusters: Sequence[object],
                             negative: Sequence[float],
                             negative_clusters: Sequence[object]) -> float:
    """Variance of the Mann-Whitney AUROC when scores come in independent clusters (a
    valid string and the negatives made from it): DeLong's placement values summed per
    cluster (Obuchowski, 1997). With every score its own cluster it is DeLong's.
    """
    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    m, n = len(pos), len(neg)
    sorted_pos, sorted_neg = np.sort(pos), np.sort(neg)

    def share_below(sorted_other: np.ndarray, x: np.ndarray) -> np.ndarray:
        below = np.searchsorted(sorted_other, x, "left")
        ties = np.searchsorted(sorted_other, x, "right") - below
        return (below + 0.5 * ties) / len(sorted_other)

    pos_place = share_below(sorted_neg, pos)  # negatives below each positive
    neg_place = 1.0 - share_below(sorted_pos, neg)  # positives above each negative
    auroc = float(pos_place.mean())
    labels, index = np.unique(np.concatenate([
        np.asarray(positive_clusters, dtype=object).astype(str),
        np.asarray(negative_clusters, dtype=object).astype(str)]), return_inverse=True)
    k = len(labels)
    if k < 2 or m == 0 or n == 0:
        return math.nan
    at_pos, at_neg = index[:m], index[m:]
    pos_dev = (np.bincount(at_pos, pos_place, k) - np.bincount(at_pos, minlength=k) * auroc)
    neg_dev = (np.bincount(at_neg, neg_place, k) - np.bincount(at_neg, minlength=k) * auroc)
    scale = k / (k - 1)
    s10 = scale * float((pos_dev**2).sum()) / m
    s01 = scale * float((neg_dev**2).sum()) / n
    s11 = scale * float((pos_dev * neg_dev).sum())
    return s10 / m + s01 / n + 2.0 * s11 / (m * n)


def agresti_coull_interval(successes: float, n: float, level: float = LEVEL) -> Interval:
    """Proportion successes / n with the Agresti-Coull interval (ties may count 1/2).

    >>> agresti_coull_interval(50, 50).rounded(3)
    Interval(estimate=1.0, low=0.915, high=1.0, n=50, method='agresti_coull')
    """
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "agresti_coull")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    n_tilde = n + z * z
    p_tilde = (successes + z * z / 2) / n_tilde
    half = z * math.sqrt(p_tilde * (1 - p_tilde) / n_tilde)
    return Interval(successes / n, max(0.0, p_tilde - half), min(1.0, p_tilde + half), n,
                    "agresti_coull")


def clustered_proportion_interval(hits: Sequence[float], clusters: Sequence[object],
                                  level: float = LEVEL) -> Interval:
    """A proportion of items that come in clusters (the pairs made from one valid string),
    with the Agresti-Coull interval at its effective sample size n / deff: deff is the
    cluster (ratio-estimator) variance over the binomial one, at least 1, and 1 when every
    item or none is a hit (Korn and Graubard's effective n, 1998).

    A cluster bootstrap collapses to [1, 1] when every pair is right and covers 48-64 % at
    0.995 on the default's cluster sizes; this keeps 94-99 % (`tests/test_stats.py`).

    >>> clustered_proportion_interval([1, 1, 1, 0, 1, 1], list("aabbcc")).rounded(3)
    Interval(estimate=0.833, low=0.383, high=0.994, n=3, method='agresti_coull_effective_n')
    """
    h = np.asarray(hits, dtype=float)
    labels, index = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
    n, k = len(h), len(labels)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "agresti_coull_effective_n")
    p = float(h.mean())
    deff = 1.0
    if 0.0 < p < 1.0 and k > 1:
        per_cluster = np.bincount(index, weights=h, minlength=k)
        sizes = np.bincount(index, minlength=k)
        cluster_var = k / (k - 1) * float(((per_cluster - p * sizes) ** 2).sum()) / n**2
        deff = max(1.0, cluster_var / (p * (1 - p) / n))
    n_eff = n / deff
    iv = agresti_coull_interval(p * n_eff, n_eff, level)
    return Interval(p, iv.low, iv.high, k, "agresti_coull_effective_n")


def _t_quantile(df: float, q: float) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


def _t_two_sided_p(t: float, df: float) -> float:
    from scipy.special import stdtr

    return float(2.0 * stdtr(df, -abs(t)))


@dataclass(frozen=True)
class Test:
    """An interval with the two-sided p-value of 'the true value is 0' and the smallest
    true value the same test detects with `POWER` (its minimum detectable effect)."""

    __test__ = False  # a result, not a pytest test class
    interval: Interval
    p_value: float
    se: float


def paired_t(differences: Sequence[float], level: float = LEVEL) -> Test:
    """Mean of paired differences (one per seed) with its t interval and t-test p-value.

    >>> test = paired_t([0.1, 0.3, 0.2])
    >>> test.interval.rounded(3), round(test.p_value, 4)
    (Interval(estimate=0.2, low=-0.048, high=0.448, n=3, method='paired_t'), 0.0742)
    """
    d = _finite(differences)
    n = len(d)
    if n < 2:
        mean = float(d.mean()) if n else math.nan
        return Test(Interval(mean, math.nan, math.nan, n, "paired_t"), math.nan, math.nan)
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
    half = _t_quantile(n - 1, 0.5 + level / 2) * se
    p = 1.0 if se == 0 and mean == 0 else (0.0 if se == 0 else _t_two_sided_p(mean / se, n - 1))
    return Test(Interval(mean, mean - half, mean + half, n, "paired_t"), p, se)


def normal_interval(estimate: float, se: float, n: int, method: str,
                    level: float = LEVEL) -> Test:
    """estimate +- z * se, with the z-test p-value (a bootstrap standard error, say)."""
    if not (math.isfinite(estimate) and math.isfinite(se)):
        return Test(Interval(estimate, math.nan, math.nan, n, method), math.nan, se)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    if se == 0:
        p = 1.0 if estimate == 0 else 0.0
    else:
        p = 2.0 * NormalDist().cdf(-abs(estimate) / se)
    return Test(Interval(estimate, estimate - z * se, estimate + z * se, n, method), p, se)


def stratified_mean(
    values: Sequence[float], strata: Sequence[int], weights: dict[int, float],
    exact: dict[int, float] | None = None, level: float = LEVEL,
) -> Test:
    """sum_L w_L * mean_L: exact where `exact` gives a stratum's value, otherwise the mean
    of `values` in that stratum, with a t interval (Welch-Satterthwaite degrees of freedom).

    Weights are used as given (not renormalised): a stratum with neither an exact value nor
    a value in `values` makes the estimate NaN. A stratum with one value borrows the
    largest variance among the others.

    >>> t = stratified_mean([1.0, 3.0, 2.0, 4.0], [2, 2, 3, 3], {1: 0.5, 2: 0.25, 3: 0.25},
    ...                     exact={1: 0.0})
    >>> round(t.interval.estimate, 3), round(t.se, 4), t.interval.n
    (1.25, 0.3536, 4)
    """
    exact = exact or {}
    v = np.asarray(values, dtype=float)
    s = np.asarray(strata, dtype=int)
    keep = ~np.isnan(v)
    v, s = v[keep], s[keep]
    estimate = 0.0
    parts: list[tuple[float, int, float]] = []  # (weight, n, variance or nan)
    for stratum, w in weights.items():
        if stratum in exact:
            estimate += w * exact[stratum]
            continue
        at = v[s == stratum]
        if len(at) == 0:
            return Test(Interval(math.nan, math.nan, math.nan, len(v), "stratified_t"),
                        math.nan, math.nan)
        estimate += w * float(at.mean())
        parts.append((w, len(at), float(at.var(ddof=1)) if len(at) > 1 else math.nan))
    known = [var for _, _, var in parts if not math.isnan(var)]
    fallback = max(known) if known else 0.0
    terms = [(w * w * (fallback if math.isnan(var) else var) / n, n) for w, n, var in parts]
    var_total = sum(t for t, _ in terms)
    if not terms or var_total == 0:
        return Test(Interval(estimate, estimate, estimate, len(v), "stratified_t"),
                    math.nan if not terms else (1.0 if estimate == 0 else 0.0), 0.0)
    df = var_total**2 / sum(t * t / max(n - 1, 1) for t, n in terms)
    se = math.sqrt(var_total)
    half = _t_quantile(df, 0.5 + level / 2) * se
    return Test(Interval(estimate, estimate - half, estimate + half, len(v), "stratified_t"),
                _t_two_sided_p(estimate / se, df), se)


def mover_limits(first: Interval, second: Interval, corr: float = 0.0) -> tuple[float, float]:
    """Limits for first - second from each estimate's own interval (MOVER: Zou and Donner,
    2008): each side's distance to its limit is that estimate's own, so a skewed interval
    near 0 or 1 stays skewed. `corr` is the correlation of the two estimates (0 when they
    come from independent data).

    >>> [round(x, 4) for x in mover_limits(Interval(0.5, 0.4, 0.6, 1, "a"),
    ...                                     Interval(0.2, 0.1, 0.3, 1, "b"))]
    [0.1586, 0.4414]
    """
    d = first.estimate - second.estimate
    lo1, hi1 = first.estimate - first.low, first.high - first.estimate
    lo2, hi2 = second.estimate - second.low, second.high - second.estimate
    return (d - math.sqrt(max(0.0, lo1 * lo1 + hi2 * hi2 - 2 * corr * lo1 * hi2)),
            d + math.sqrt(max(0.0, hi1 * hi1 + lo2 * lo2 - 2 * corr * hi1 * lo2)))


def mover_test(first: Callable[[float], Interval], second: Callable[[float], Interval],
               method: str, level: float = LEVEL) -> Test:
    """first - second of two estimates from independent data, each given as its interval
    at any level; the interval is `mover_limits`' and the p-value the smallest 1 - level
    at which it excludes 0, so interval and test agree."""
    def limits(lev: float) -> tuple[float, float]:
        return mover_limits(first(lev), second(lev))

    a, b = first(level), second(level)
    d, n = a.estimate - b.estimate, a.n + b.n
    if not all(map(math.isfinite, (a.low, a.high, b.low, b.high))):
        return Test(Interval(d, math.nan, math.nan, n, method), math.nan, math.nan)
    lo, hi = limits(level)
    if d == 0:
        p = 1.0
    else:
        small, large = 1e-12, 1.0 - 1e-12  # levels; find where 0 leaves the interval
        if (limits(large)[0] > 0) if d > 0 else (limits(large)[1] < 0):
            p = 1e-12
        else:
            for _ in range(60):
                mid = (small + large) / 2
                l_, h_ = limits(mid)
                if l_ > 0 or h_ < 0:
                    small = mid
                else:
                    large = mid
            p = 1.0 - small
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return Test(Interval(d, lo, hi, n, method), p, (hi - lo) / (2 * z))


def newcombe_difference(x1: float, n1: int, x2: float, n2: int, level: float = LEVEL) -> Test:
    """p1 - p2 of two independent proportions with Newcombe's hybrid score interval
    (method 10: `mover_test` of the two Wilson intervals).

    >>> t = newcombe_difference(56, 70, 48, 80)
    >>> t.interval.rounded(4)
    Interval(estimate=0.2, low=0.0524, high=0.3339, n=150, method='newcombe')
    """
    if n1 == 0 or n2 == 0:
        return Test(Interval(math.nan, math.nan, math.nan, n1 + n2, "newcombe"), math.nan,
                    math.nan)
    return mover_test(lambda lev: wilson_interval(x1, n1, lev),
                      lambda lev: wilson_interval(x2, n2, lev), "newcombe", level)


def proportion_minus_mean(hits: Sequence[bool], values: Sequence[float],
                          level: float = LEVEL) -> Interval:
    """mean(hits) - mean(values) over the same n items: Agresti-Coull for the proportion,
    t for the mean, joined by `mover_limits` with the two means' correlation.

    A bootstrap of this difference undercovers when the proportion is near 0 (92 % on the
    samples of a model that writes few valid strings); this keeps the proportion's
    skewed interval.

    >>> proportion_minus_mean([True, False, False, False], [0.5, 0.25, 0.25, 0.5]).rounded(3)
    Interval(estimate=-0.125, low=-0.33, high=0.253, n=4, method='mover')
    """
    h = np.asarray(hits, dtype=float)
    v = np.asarray(values, dtype=float)
    n = len(h)
    if n < 2:
        return Interval(float(h.mean() - v.mean()) if n else math.nan, math.nan, math.nan, n,
                        "mover")
    rate, mean = agresti_coull_interval(float(h.sum()), n, level), t_interval(v, level)
    corr = float(np.corrcoef(h, v)[0, 1]) if h.std() > 0 and v.std() > 0 else 0.0
    low, high = mover_limits(rate, mean, corr)
    return Interval(rate.estimate - mean.estimate, max(-1.0, low), min(1.0, high), n, "mover")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count).

    >>> holm([0.01, 0.04, 0.03, float("nan")])
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p_values, dtype=float)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    out = np.full(len(p), math.nan)
    running = 0.0
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="mergesort")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return [float(round(v, 12)) if not math.isnan(v) else math.nan for v in out]


def mde_normal(se: float, alpha: float = 1 - LEVEL, power: float = POWER) -> float:
    """Smallest true difference a two-sided z-test at `alpha` detects with `power`."""
    nd = NormalDist()
    return (nd.inv_cdf(1 - alpha / 2) + nd.inv_cdf(power)) * se


def t_power(effect: float, sd: float, n: int, alpha: float = 1 - LEVEL) -> float:
    """Power of the two-sided paired t-test with `n` pairs when the true mean difference is
    `effect` and the differences' standard deviation is `sd` (noncentral t)."""
    from scipy.stats import nct

    if n < 2 or sd <= 0:
        return math.nan
    df, crit = n - 1, _t_quantile(n - 1, 1 - alpha / 2)
    nc = effect * math.sqrt(n) / sd
    upper, lower = float(nct.sf(crit, df, nc)), float(nct.cdf(-crit, df, nc))
    if math.isnan(upper):  # scipy's series fails far in the tail, where power is ~1
        upper = 1.0 if nc > crit else 0.0
    return upper + (0.0 if math.isnan(lower) else lower)


def mde_t(sd: float, n: int, alpha: float = 1 - LEVEL, power: float = POWER) -> float:
    """Smallest true mean difference the paired t-test (n pairs, differences' sd) detects
    with `power`; NaN below 2 pairs."""
    from scipy.optimize import brentq

    if n < 2 or not math.isfinite(sd):
        return math.nan
    if sd == 0:
        return 0.0
    upper = sd
    while t_power(upper, sd, n, alpha) < power:
        upper *= 2
    return float(brentq(lambda e: t_power(e, sd, n, alpha) - power, 0.0, upper, xtol=1e-10))


def seeds_needed(effect: float, sd: float, alpha: float = 1 - LEVEL, power: float = POWER,
                 max_seeds: int = 10_000) -> int:
    """Smallest number of paired seeds whose t-test detects `effect` with `power`.

    >>> seeds_needed(1.0, 1.0)  # a difference as large as the spread of the differences
    10
    """
    if effect <= 0 or sd <= 0:
        raise ValueError(f"effect ({effect}) and sd ({sd}) must be positive")
    for n in range(2, max_seeds + 1):
        if t_power(effect, sd, n, alpha) >= power:
            return n
    raise ValueError(f"more than {max_seeds} seeds needed for effect {effect} at sd {sd}")
