"""Intervals cover: nominal 95 % intervals cover 93-97 % of the time by simulation, at the
sample sizes the workflow uses (3 seeds across runs; clusters of a valid string and its
negatives within a run)."""

from __future__ import annotations

import numpy as np
import pytest

from metaexamples import stats

TRIALS = 2000


def test_t_interval_covers_with_three_seeds_on_normal_data():
    rng = np.random.default_rng(0)
    hits = sum(stats.t_interval(rng.normal(0.6, 0.1, size=3)).covers(0.6) for _ in range(TRIALS))
    assert 0.93 <= hits / TRIALS <= 0.97


def test_percentile_bootstrap_over_three_seeds_would_undercover():
    # Why the t interval: the bootstrap over seeds that it replaced covers far less than 95 %.
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(500):
        v = rng.normal(0.0, 1.0, size=3)
        means = v[rng.integers(0, 3, size=(500, 3))].mean(axis=1)
        lo, hi = stats.percentile_bounds(means)
        hits += lo <= 0.0 <= hi
    assert hits / 500 < 0.85


def _clustered_sample(
    rng: np.random.Generator, clusters: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    # Items of one cluster share a random effect (a valid string and the negatives made
    # from it share the string's difficulty): intra-cluster correlation 0.5.
    effects = rng.normal(0.0, 1.0, size=clusters)
    ids = np.repeat(np.arange(clusters), size)
    values = effects[ids] + rng.normal(0.0, 1.0, size=clusters * size)
    return values, ids


def test_cluster_bootstrap_covers_on_clustered_data():
    rng = np.random.default_rng(2)
    hits, trials = 0, 600
    for _ in range(trials):
        values, ids = _clustered_sample(rng, clusters=50, size=6)
        interval = stats.cluster_bootstrap(
            lambda idx, v=values: {"mean": float(v[idx].mean())}, ids, rng, resamples=400
        )["mean"]
        hits += interval[0] <= 0.0 <= interval[1]
    assert 0.93 <= hits / trials <= 0.97


def test_item_bootstrap_would_undercover_on_clustered_data():
    # Why clusters: resampling items as if independent gives intervals far too narrow.
    rng = np.random.default_rng(3)
    hits, trials = 0, 150
    for _ in range(trials):
        values, _ = _clustered_sample(rng, clusters=50, size=6)
        interval = stats.cluster_bootstrap(
            lambda idx, v=values: {"mean": float(v[idx].mean())}, np.arange(len(values)), rng,
            resamples=300,
        )["mean"]
        hits += interval[0] <= 0.0 <= interval[1]
    assert hits / trials < 0.85


@pytest.mark.parametrize("n", [100, 400])
def test_wilson_interval_covers_at_eval_set_sizes(n):
    rng = np.random.default_rng(n)
    p = 0.3
    hits = sum(stats.wilson_interval(int(rng.binomial(n, p)), n).covers(p) for _ in range(TRIALS))
    assert 0.93 <= hits / TRIALS <= 0.97


def test_small_samples_give_undefined_bounds_not_fake_ones():
    one = stats.t_interval([0.4])
    assert one.estimate == 0.4 and np.isnan(one.low) and not one.excludes(0.0)
    assert stats.t_interval([]).n == 0
    assert np.isnan(stats.wilson_interval(0, 0).estimate)


def test_wilson_interval_stays_inside_zero_one():
    assert stats.wilson_interval(0, 5).low == 0.0
    assert stats.wilson_interval(5, 5).high == 1.0
    assert stats.wilson_interval(5, 5).excludes(0.25)
