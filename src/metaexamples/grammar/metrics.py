"""What a model knows about a grammar, from per-string log-probabilities.

All metrics use the total log-probability of a string including its closing tag
(`scoring`), never a per-token mean, so length and tag effects do not masquerade as rule
knowledge (DESIGN.md §3 item 7):

- `auroc`: P(a random valid string scores above a random invalid one), ties count 1/2
  (the Mann-Whitney U statistic), overall and per negative type.
- `pair_accuracy`: share of negatives scored below the valid string they were derived
  from; on `minimal_edit` negatives this is the minimal-pair accuracy.
- `excess_nll`: mean over valid strings of NLL_model - NLL_true, in nats, where NLL_true
  is the generator's exact -log p; 0 means the model matches the generator.
- `bootstrap_interval`: percentile interval of any statistic over resampled units.

`split_metrics` computes every one of them from a table of scored rows, so the same
function serves point estimates and bootstrap resamples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

HEADLINE = ("excess_nll", "minimal_pair_accuracy", "auroc", "auroc_minimal_edit")


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank.

    >>> average_ranks(np.array([10.0, 20.0, 10.0, 30.0])).tolist()
    [1.5, 3.0, 1.5, 4.0]
    """
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0  # mean of ranks first+1 .. first+count
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.repeat(avg, counts)
    return ranks


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Area under the ROC curve of `positive` vs `negative` scores (higher = positive).

    Mann-Whitney: (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg) with average ranks for
    ties. NaN when either side is empty.

    >>> auroc([3.0, 2.0], [1.0, 2.0])
    0.875
    """
    pos = np.asarray(positive, dtype=float)
    neg = np.asarray(negative, dtype=float)
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    ranks = average_ranks(np.concatenate([pos, neg]))
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def pair_accuracy(valid: Sequence[float], invalid: Sequence[float]) -> float:
    """Share of pairs with valid > invalid (ties count 1/2); NaN for no pairs.

    >>> pair_accuracy([-1.0, -2.0, -3.0], [-2.0, -1.0, -3.0])
    0.5
    """
    v = np.asarray(valid, dtype=float)
    x = np.asarray(invalid, dtype=float)
    if len(v) != len(x):
        raise ValueError(f"pair_accuracy: {len(v)} valid vs {len(x)} invalid scores")
    if len(v) == 0:
        return math.nan
    return float(np.mean((v > x) + 0.5 * (v == x)))


def excess_nll(logprob: Sequence[float], logp_true: Sequence[float]) -> float:
    """Mean of (-logprob_model) - (-logp_true) over strings, in nats; NaN when empty.

    >>> excess_nll([-5.0, -4.0], [-3.0, -3.0])
    1.5
    """
    lp = np.asarray(logprob, dtype=float)
    lt = np.asarray(logp_true, dtype=float)
    if len(lp) == 0:
        return math.nan
    return float(np.mean(lt - lp))


Columns = Mapping[str, Any]


def columns(frame: pd.DataFrame, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """A DataFrame as a dict of numpy arrays (fast to index in a bootstrap loop)."""
    names = list(frame.columns) if names is None else list(names)
    return {n: frame[n].to_numpy() for n in names}


def take(cols: Columns, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Rows `idx` of every column."""
    return {k: np.asarray(v)[idx] for k, v in cols.items()}


def split_metrics(rows: Columns) -> dict[str, float]:
    """Every string-level metric of one split's scored rows.

    `rows` (a DataFrame or a dict of arrays) needs columns valid, negative_type,
    logprob, n_tokens, logp_true and pair_logprob (the score of the valid string a
    negative was derived from; NaN/None where there is none).
    """
    valid = np.asarray(rows["valid"], dtype=bool)
    kinds = np.asarray(rows["negative_type"], dtype=object)
    lp = np.asarray(rows["logprob"], dtype=float)
    pair = np.asarray(rows["pair_logprob"], dtype=float)
    vlp = lp[valid]
    tokens = np.asarray(rows["n_tokens"], dtype=float)[valid].sum()
    out: dict[str, float] = {
        "n_valid": float(valid.sum()),
        "n_invalid": float((~valid).sum()),
        "excess_nll": excess_nll(vlp, np.asarray(rows["logp_true"], dtype=float)[valid]),
        "mean_logprob_valid": float(vlp.mean()) if len(vlp) else math.nan,
        "nll_per_token_valid": float(-vlp.sum() / tokens) if tokens else math.nan,
        "perplexity_valid": float(math.exp(-vlp.sum() / tokens)) if tokens else math.nan,
        "auroc": auroc(vlp, lp[~valid]),
    }
    paired = ~valid & ~np.isnan(pair)
    out["pair_accuracy"] = pair_accuracy(pair[paired], lp[paired])
    for kind in sorted({k for k in kinds[~valid] if k is not None}):
        of_kind = ~valid & (kinds == kind)
        out[f"auroc_{kind}"] = auroc(vlp, lp[of_kind])
        both = of_kind & paired
        out[f"pair_accuracy_{kind}"] = pair_accuracy(pair[both], lp[both])
    out["minimal_pair_accuracy"] = out.get("pair_accuracy_minimal_edit", math.nan)
    out.setdefault("auroc_minimal_edit", math.nan)
    return out


def canonical_metrics(rows: Columns) -> dict[str, float]:
    """Token-weighted perplexity of held-out canonical documents (forgetting)."""
    tokens = np.asarray(rows["n_tokens"], dtype=float).sum()
    nll = -np.asarray(rows["logprob"], dtype=float).sum()
    per_token = nll / tokens if tokens else math.nan
    return {
        "canonical_documents": float(len(np.asarray(rows["n_tokens"]))),
        "canonical_tokens": float(tokens),
        "canonical_nll_per_token": float(per_token),
        "canonical_perplexity": float(math.exp(per_token)) if tokens else math.nan,
    }


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    n_units: int,
    rng: np.random.Generator,
    resamples: int = 1000,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(indices)` over `n_units` units.

    `statistic` gets an index array drawn with replacement from range(n_units);
    resamples where it is NaN are dropped. Returns (nan, nan) when nothing is left.
    """
    stats = bootstrap_samples(statistic, n_units, rng, resamples)
    return percentile_interval(stats, level)


def bootstrap_samples(
    statistic: Callable[[np.ndarray], float],
    n_units: int,
    rng: np.random.Generator,
    resamples: int,
) -> np.ndarray:
    if n_units == 0:
        return np.array([])
    draws = rng.integers(0, n_units, size=(resamples, n_units))
    return np.array([statistic(idx) for idx in draws], dtype=float)


def percentile_interval(stats: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    stats = np.asarray(stats, dtype=float)
    stats = stats[~np.isnan(stats)]
    if len(stats) == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def bootstrap_intervals(
    metrics_at: Callable[[np.ndarray], dict[str, float]],
    n_units: int,
    keys: Sequence[str],
    rng: np.random.Generator,
    resamples: int = 1000,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Intervals of several metrics at once: `metrics_at(idx)` on resampled unit indices.

    Units are resampled together (one draw serves every metric), e.g. the rows of a
    score table: ``bootstrap_intervals(lambda i: split_metrics(take(cols, i)), n, ...)``.
    """
    if n_units == 0:
        return {k: [math.nan, math.nan] for k in keys}
    draws = rng.integers(0, n_units, size=(resamples, n_units))
    collected: dict[str, list[float]] = {k: [] for k in keys}
    for idx in draws:
        values = metrics_at(idx)
        for k in keys:
            collected[k].append(values.get(k, math.nan))
    return {k: list(percentile_interval(np.array(v), level)) for k, v in collected.items()}


def mean_interval(
    values: Sequence[float], rng: np.random.Generator, resamples: int = 1000, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of `values` and its percentile bootstrap interval."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return (math.nan, math.nan, math.nan)
    lo, hi = bootstrap_interval(lambda idx: float(v[idx].mean()), len(v), rng, resamples, level)
    return (float(v.mean()), lo, hi)


def clean(values: dict[str, float]) -> dict[str, float | None]:
    """NaN -> None so the dict can be written as strict JSON."""
    out: dict[str, float | None] = {}
    for k, v in values.items():
        out[k] = None if v is None or (isinstance(v, float) and math.isnan(v)) else v
    return out
