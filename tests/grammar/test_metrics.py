"""Metrics against brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from metaexamples import stats
from metaexamples.grammar import excess as excess_mod
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


DIST = {1: 0.5, 2: 0.25, 3: 0.25}  # the generator's P(L) for the table below


def _table() -> pd.DataFrame:
    rows = [
        # valid strings (clusters v1, v2)
        dict(text="v1", valid=True, negative_type=None, length=1, logprob=-3.0, n_tokens=3,
             logp_true=-2.0, pair_logprob=None, cluster="v1"),
        dict(text="v2", valid=True, negative_type=None, length=2, logprob=-6.0, n_tokens=5,
             logp_true=-4.0, pair_logprob=None, cluster="v2"),
        # minimal edits of v1 (below it) and v2 (above it)
        dict(text="m1", valid=False, negative_type="minimal_edit", length=1, logprob=-4.0,
             n_tokens=3, logp_true=None, pair_logprob=-3.0, cluster="v1"),
        dict(text="m2", valid=False, negative_type="minimal_edit", length=2, logprob=-5.0,
             n_tokens=5, logp_true=None, pair_logprob=-6.0, cluster="v2"),
        dict(text="e1", valid=False, negative_type="empty", length=0, logprob=-9.0, n_tokens=1,
             logp_true=None, pair_logprob=-3.0, cluster="v1"),
    ]
    return pd.DataFrame(rows)


def test_split_metrics_by_hand():
    out = metrics.split_metrics(_table(), DIST)
    assert metrics.split_metrics(metrics.columns(_table()), DIST) == out
    # no string of length 3 and none scored exactly: the KL is undefined, never renormalised
    assert math.isnan(out["excess_nll"])
    # with length 3 scored exactly (every string of it 4 nats off): 0.5 * 1 + 0.25 * (2 + 4)
    exact = metrics.split_metrics(_table(), DIST, exact={3: 4.0}, exact_counts={3: 8})
    assert exact["excess_nll"] == pytest.approx(0.5 * 1 + 0.25 * 2 + 0.25 * 4)
    assert exact["excess_nll_len3"] == 4.0 and exact["n_valid_len3"] == 8
    assert out["excess_nll_string_mean"] == pytest.approx(((3 - 2) + (6 - 4)) / 2)
    assert out["excess_nll_len2"] == 2.0 and math.isnan(out["excess_nll_len3"])
    assert out["n_valid_len3"] == 0 and out["n_minimal_edit"] == 2 and out["n_empty"] == 1
    assert out["minimal_pair_accuracy"] == pytest.approx(0.5)
    assert out["pair_accuracy_empty"] == 1.0
    assert out["pair_accuracy"] == pytest.approx(2 / 3)
    assert out["auroc_minimal_edit"] == pytest.approx(brute_auroc([-3, -6], [-4, -5]))
    assert out["auroc"] == pytest.approx(brute_auroc([-3, -6], [-4, -5, -9]))
    assert out["perplexity_valid"] == pytest.approx(math.exp(9 / 8))


def test_weighted_excess_nll_is_unbiased_where_the_string_mean_is_not():
    """Held-out strings over-represent long lengths; weighting by P(L) undoes it."""
    rng = np.random.default_rng(0)
    dist = {2: 0.5, 8: 0.5}
    true_kl = 0.5 * 1.0 + 0.5 * 5.0  # the model is 1 nat off at length 2, 5 nats at 8
    lengths = np.array([2] * 5 + [8] * 95)  # distinct strings: few short ones exist
    excess = np.where(lengths == 2, 1.0, 5.0) + rng.normal(0, 0.01, len(lengths))
    weighted = excess_mod.excess_nll(lengths, excess, dist).interval.estimate
    assert weighted == pytest.approx(true_kl, abs=0.01)
    assert float(excess.mean()) > true_kl + 1.5
    assert excess_mod.per_length(lengths, excess, dist)[2][1] == 5


def test_split_metrics_without_minimal_edits_is_nan():
    t = _table()
    out = metrics.split_metrics(t[t["negative_type"] != "minimal_edit"], DIST)
    assert math.isnan(out["minimal_pair_accuracy"]) and math.isnan(out["auroc_minimal_edit"])


def test_cluster_bootstrap_resamples_a_string_with_its_negatives():
    table = _table()
    cols = metrics.columns(table)
    iv = stats.cluster_bootstrap(
        lambda i: metrics.split_metrics(metrics.take(cols, i), DIST, exact={3: 0.0}),
        table["cluster"], np.random.default_rng(0), resamples=200)
    lo, hi = iv["auroc"]
    assert 0.0 <= lo <= hi <= 1.0
    # a resample holds v1 or v2 with its own negatives: v1's edit is always below it
    lo, hi = iv["pair_accuracy_minimal_edit"]
    assert lo == 0.0 and hi == 1.0
