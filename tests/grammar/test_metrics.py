"""Metrics against brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from metaexamples.grammar import metrics


def brute_auroc(pos, neg) -> float:
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(20))
def test_auroc_matches_pairwise_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    pos = rng.integers(-5, 5, size=rng.integers(1, 30)).astype(float)  # many ties
    neg = rng.integers(-7, 3, size=rng.integers(1, 30)).astype(float)
    assert metrics.auroc(pos, neg) == pytest.approx(brute_auroc(pos, neg), abs=1e-12)


def test_auroc_continuous_and_edge_cases():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(1, 1, 200), rng.normal(0, 1, 150)
    assert metrics.auroc(pos, neg) == pytest.approx(brute_auroc(pos, neg), abs=1e-12)
    assert metrics.auroc([1, 2], [0, -1]) == 1.0
    assert metrics.auroc([0, -1], [1, 2]) == 0.0
    assert metrics.auroc([1, 1], [1]) == 0.5
    assert math.isnan(metrics.auroc([], [1.0]))


def test_average_ranks_share_tied_ranks():
    v = np.array([3.0, 1.0, 3.0, 2.0, 3.0])
    assert metrics.average_ranks(v).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]


def test_pair_accuracy_and_excess_nll():
    assert metrics.pair_accuracy([-1, -5, -2], [-2, -1, -2]) == pytest.approx(0.5)
    assert math.isnan(metrics.pair_accuracy([], []))
    with pytest.raises(ValueError):
        metrics.pair_accuracy([1.0], [])
    rng = np.random.default_rng(0)
    lp, lt = rng.normal(-10, 2, 50), rng.normal(-8, 1, 50)
    brute = sum((-a) - (-b) for a, b in zip(lp, lt, strict=True)) / 50
    assert metrics.excess_nll(lp, lt) == pytest.approx(brute)


def _table() -> pd.DataFrame:
    rows = [
        # valid strings
        dict(text="v1", valid=True, negative_type=None, logprob=-3.0, n_tokens=3,
             logp_true=-2.0, pair_logprob=None),
        dict(text="v2", valid=True, negative_type=None, logprob=-6.0, n_tokens=5,
             logp_true=-4.0, pair_logprob=None),
        # minimal edits of v1 (below it) and v2 (above it)
        dict(text="m1", valid=False, negative_type="minimal_edit", logprob=-4.0, n_tokens=3,
             logp_true=None, pair_logprob=-3.0),
        dict(text="m2", valid=False, negative_type="minimal_edit", logprob=-5.0, n_tokens=5,
             logp_true=None, pair_logprob=-6.0),
        dict(text="e1", valid=False, negative_type="empty", logprob=-9.0, n_tokens=1,
             logp_true=None, pair_logprob=-3.0),
    ]
    return pd.DataFrame(rows)


def test_split_metrics_by_hand():
    out = metrics.split_metrics(_table())
    assert metrics.split_metrics(metrics.columns(_table())) == out
    assert out["excess_nll"] == pytest.approx(((3 - 2) + (6 - 4)) / 2)
    assert out["minimal_pair_accuracy"] == pytest.approx(0.5)
    assert out["pair_accuracy_empty"] == 1.0
    assert out["pair_accuracy"] == pytest.approx(2 / 3)
    assert out["auroc_minimal_edit"] == pytest.approx(brute_auroc([-3, -6], [-4, -5]))
    assert out["auroc"] == pytest.approx(brute_auroc([-3, -6], [-4, -5, -9]))
    assert out["perplexity_valid"] == pytest.approx(math.exp(9 / 8))


def test_split_metrics_without_minimal_edits_is_nan():
    t = _table()
    out = metrics.split_metrics(t[t["negative_type"] != "minimal_edit"])
    assert math.isnan(out["minimal_pair_accuracy"]) and math.isnan(out["auroc_minimal_edit"])


def test_bootstrap_is_seeded_and_covers_the_mean():
    values = np.random.default_rng(3).normal(5.0, 1.0, 400)
    a = metrics.mean_interval(values, np.random.default_rng(7), resamples=500)
    b = metrics.mean_interval(values, np.random.default_rng(7), resamples=500)
    assert a == b
    mean, lo, hi = a
    assert lo < mean < hi and lo < 5.0 < hi
    se = values.std(ddof=1) / math.sqrt(len(values))
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_bootstrap_intervals_resample_rows_together():
    table = _table()
    cols = metrics.columns(table)
    iv = metrics.bootstrap_intervals(lambda i: metrics.split_metrics(metrics.take(cols, i)),
                                     len(table), ["auroc", "excess_nll"],
                                     np.random.default_rng(0), resamples=200)
    lo, hi = iv["excess_nll"]
    assert 1.0 <= lo <= hi <= 2.0
    assert all(math.isnan(x) for x in metrics.percentile_interval(np.array([np.nan])))
