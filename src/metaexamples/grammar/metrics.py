"""What a model knows about a grammar, from per-string log-probabilities.

All metrics use the total log-probability of a string including how it ends (its
closing tag; end-of-text for an `unclosed_tag` negative, see `scoring`), never a
per-token mean, so length and tag effects do not masquerade as rule knowledge:

- `auroc`: P(a random valid string scores above a random invalid one), ties count 1/2
  (the Mann-Whitney U statistic), pooled over the negative types and per type.
- `pair_accuracy`: share of negatives scored below the valid string they were derived
  from; on `minimal_edit` negatives this is the minimal-pair accuracy.
- `excess_nll`: KL(p_true || model) in nats over every length (`excess`): per length L,
  the mean of NLL_model - NLL_true, exact over every string at short lengths and
  estimated from held-out valid strings at the others, weighted by the generator's P(L).
  0 for the generator itself.

`split_metrics` computes all of them from a table of scored rows, so the same function
serves point estimates and (cluster) bootstrap resamples (`metaexamples.stats`).
Every per-type metric comes with its count ``n_<type>``: a type with fewer than
`MIN_CELL` negatives gets no interval bar in the figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from metaexamples.grammar import excess as excess_mod

HEADLINE_SPLIT = "test"  # the split whose metrics get intervals and make the summary
MIN_CELL = 20  # fewer strings than this: the cell is reported with its n, not as an interval
# Sample metrics (`judging.generation_metrics`) by how their within-run interval is made:
# closed form (`judging.sample_intervals`): metric -> (method, the samples it counts)
SAMPLE_INTERVALS: dict[str, tuple[str, str]] = {
    "well_formed_rate": ("agresti_coull", "n_samples"),
    "format_validity": ("agresti_coull", "n_samples"),
    "rule_validity": ("agresti_coull", "n_samples"),
    "closed_rate": ("agresti_coull", "n_samples"),
    "rule_validity_given_format": ("agresti_coull", "n_format_valid"),
    "novel_fraction": ("agresti_coull", "n_rule_valid"),
    "chance_given_lengths": ("t", "n_format_valid"),
    "rule_validity_above_chance": ("mover", "n_format_valid"),
}
SAMPLE_STATISTICS = ("mean_new_tokens", "length_tv_distance")  # bootstrap over samples
SAMPLE_UNRESAMPLED = ("distinct_fraction", "chance_rate")  # resamples repeat strings; constant


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


def split_metrics(
    rows: Columns, length_distribution: Mapping[int, float],
    exact: Mapping[int, float] | None = None, exact_counts: Mapping[int, int] | None = None,
) -> dict[str, float]:
    """Every string-level metric of one split's scored rows.

    `rows` (a DataFrame or a dict of arrays) needs columns valid, negative_type, length,
    logprob, n_tokens, logp_true and pair_logprob (the score of the valid string a
    negative was derived from; NaN/None where there is none). `length_distribution` is
    the generator's P(L), which weights `excess_nll`; `exact` gives the model's mean
    excess over every string of the lengths it covers (`excess.exact_means`), which then
    replaces the held-out strings there, and `exact_counts` how many strings that is.
    """
    valid = np.asarray(rows["valid"], dtype=bool)
    kinds = np.asarray(rows["negative_type"], dtype=object)
    lp = np.asarray(rows["logprob"], dtype=float)
    pair = np.asarray(rows["pair_logprob"], dtype=float)
    vlp = lp[valid]
    tokens = np.asarray(rows["n_tokens"], dtype=float)[valid].sum()
    excess = np.asarray(rows["logp_true"], dtype=float)[valid] - vlp
    valid_lengths = np.asarray(rows["length"], dtype=int)[valid]
    weighted = excess_mod.excess_nll(valid_lengths, excess, length_distribution,
                                     exact).interval.estimate
    per_length = excess_mod.per_length(valid_lengths, excess, length_distribution, exact,
                                       exact_counts)
    out: dict[str, float] = {
        "n_valid": float(valid.sum()),
        "n_invalid": float((~valid).sum()),
        "excess_nll": weighted,
        "excess_nll_string_mean": excess_nll(vlp, vlp + excess),
        "mean_logprob_valid": float(vlp.mean()) if len(vlp) else math.nan,
        "nll_per_token_valid": float(-vlp.sum() / tokens) if tokens else math.nan,
        "perplexity_valid": float(math.exp(-vlp.sum() / tokens)) if tokens else math.nan,
        "auroc": auroc(vlp, lp[~valid]),
    }
    for n, (mean, count) in per_length.items():
        out[f"excess_nll_len{n}"] = mean
        out[f"n_valid_len{n}"] = float(count)
    paired = ~valid & ~np.isnan(pair)
    out["pair_accuracy"] = pair_accuracy(pair[paired], lp[paired])
    clusters = np.asarray(rows["cluster"], dtype=object) if "cluster" in rows else None
    if clusters is not None:  # the resampling unit of pooled pair accuracy
        out["n_pair_clusters"] = float(len(set(clusters[paired].tolist())))
    for kind in sorted({k for k in kinds[~valid] if k is not None}):
        of_kind = ~valid & (kinds == kind)
        out[f"n_{kind}"] = float(of_kind.sum())
        out[f"auroc_{kind}"] = auroc(vlp, lp[of_kind])
        both = of_kind & paired
        out[f"pair_accuracy_{kind}"] = pair_accuracy(pair[both], lp[both])
    out["minimal_pair_accuracy"] = out.get("pair_accuracy_minimal_edit", math.nan)
    out.setdefault("auroc_minimal_edit", math.nan)
    return out


def within_run_interval(metric: str) -> tuple[str, str]:
    """(method, count column) of the interval one run's evaluation gives `metric`.

    >>> within_run_interval("auroc_minimal_edit"), within_run_interval("rule_validity")
    (('wilson_worst_case', 'n_minimal_edit'), ('agresti_coull', 'n_samples'))
    """
    if metric in SAMPLE_INTERVALS:
        return SAMPLE_INTERVALS[metric]
    if metric in SAMPLE_STATISTICS:
        return "bootstrap", "n_samples"
    if metric in SAMPLE_UNRESAMPLED:
        return "none", "n_samples"
    if metric.startswith("canonical_"):
        return "bootstrap", "canonical_documents"
    if metric.startswith("excess_nll_len"):
        return "cluster_bootstrap", "n_valid_len" + metric[len("excess_nll_len"):]
    if metric == "excess_nll":
        return "stratified_t", "n_valid"
    if metric == "minimal_pair_accuracy":
        return "agresti_coull", "n_minimal_edit"
    if metric == "pair_accuracy":
        return "agresti_coull_effective_n", "n_pair_clusters"
    if metric.startswith("pair_accuracy_"):
        return "agresti_coull", "n_" + metric[len("pair_accuracy_"):]
    if metric == "auroc":
        return "wilson_worst_case_clustered", "n_valid"
    if metric.startswith("auroc_"):
        return "wilson_worst_case", "n_" + metric[len("auroc_"):]
    return "cluster_bootstrap", "n_valid"


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

