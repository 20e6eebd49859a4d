"""Intervals cover: nominal 95 % intervals cover 93-97 % of the time by simulation, at the
sample sizes the workflow uses (3 seeds across runs; clusters of a valid string and its
negatives within a run)."""

from __future__ import annotations

import functools
import math

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


# -- proportions near 0 and 1 (per-type pair accuracy: n = 50 pairs) ----------------------


@pytest.mark.parametrize("p", [0.5, 0.9, 0.98])
def test_agresti_coull_covers_per_type_accuracy_at_n50(p):
    from scipy.stats import binom

    n, trials = 50, 4000
    exact = sum(binom.pmf(x, n, p) for x in range(n + 1)
                if stats.agresti_coull_interval(x, n).covers(p))
    rng = np.random.default_rng(int(p * 1000))
    simulated = np.mean([stats.agresti_coull_interval(int(x), n).covers(p)
                         for x in rng.binomial(n, p, size=trials)])
    assert abs(simulated - exact) < 3 * math.sqrt(exact * (1 - exact) / trials)
    # exact coverage: 93.5 % at 0.5, 97.03 % at 0.9 (Wilson's is the same there), 98.2 % at
    # 0.98, where no fixed interval can be in 93-97 % (next test); its minimum over every p
    # is 93.5 % (Wilson: 89.5 %, Jeffreys 88.4 %)
    assert 0.93 <= exact <= (0.975 if p < 0.95 else 0.985)


def test_agresti_coull_never_covers_much_less_than_95_percent_at_n50():
    from scipy.stats import binom

    n, x = 50, np.arange(51)
    intervals = [stats.agresti_coull_interval(int(k), n) for k in x]
    lows = np.array([iv.low for iv in intervals])
    highs = np.array([iv.high for iv in intervals])
    worst = min(binom.pmf(x, n, p)[(lows <= p) & (p <= highs)].sum()
                for p in np.linspace(0.005, 0.995, 199))
    assert worst >= 0.93


def test_near_one_no_interval_can_cover_between_93_and_97_percent():
    # At p = 0.98, n = 50 an interval containing 0.98 for x = 48..50 covers P(X >= 48) = 92.2 %;
    # adding x = 47 makes it P(X >= 47) = 98.2 %: nothing in between is possible. Wilson
    # takes the first (under-covers), Agresti-Coull the second.
    from scipy.stats import binom

    assert binom.sf(47, 50, 0.98) == pytest.approx(0.922, abs=1e-3)
    assert binom.sf(46, 50, 0.98) == pytest.approx(0.982, abs=1e-3)
    assert not stats.wilson_interval(47, 50).covers(0.98)
    assert stats.agresti_coull_interval(47, 50).covers(0.98)


def test_percentile_bootstrap_of_a_proportion_near_one_undercovers():
    # Why not the bootstrap for per-type accuracy: 50 of 50 right gives the interval [1, 1].
    rng = np.random.default_rng(5)
    hits, trials = 0, 600
    for _ in range(trials):
        x = rng.random(50) < 0.98
        means = x[rng.integers(0, 50, size=(300, 50))].mean(axis=1)
        lo, hi = stats.percentile_bounds(means)
        hits += lo <= 0.98 <= hi
    assert hits / trials < 0.8


# -- AUROC per negative type: 200 valid strings against 50 negatives made from them -----


def _scored_pairs(rng: np.random.Generator, auroc: float, shape: str):
    """(valid scores, negative scores, each negative's source) with population AUROC
    `auroc`. binormal: a negative scores its source minus a normal penalty; all or
    nothing: a negative is confusable (scored like any valid string, AUROC 1/2) with
    probability 2 (1 - auroc), else far below: the shape where a bootstrap fails worst."""
    valid = rng.normal(size=200)
    source = rng.choice(200, size=50, replace=False)
    if shape == "binormal":  # valid - negative ~ N(mu, 3)
        mu = stats.NormalDist().inv_cdf(auroc) * math.sqrt(3)
        negative = valid[source] - rng.normal(mu, 1.0, size=50)
    else:
        confusable = rng.random(50) < 2 * (1 - auroc)
        negative = np.where(confusable, rng.normal(size=50), valid[source] - 50)
    return valid, negative, source


@pytest.mark.parametrize("shape", ["binormal", "all_or_nothing"])
@pytest.mark.parametrize("auroc", [0.9, 0.98, 0.995, 0.999])
def test_auroc_interval_covers_near_one_whatever_the_scores(shape, auroc):
    from metaexamples.grammar.metrics import auroc as auroc_of

    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(TRIALS):
        valid, negative, _ = _scored_pairs(rng, auroc, shape)
        hits += stats.auroc_interval(auroc_of(valid, negative), 200, 50).covers(auroc)
    assert hits / TRIALS >= 0.93  # 94.9-99.9 %: conservative, the largest variance possible


def test_cluster_bootstrap_of_an_auroc_near_one_undercovers():
    # Why not the bootstrap for AUROC per type: with every negative far below, resamples
    # give 1 again and again, and the interval is [1, 1].
    from metaexamples.grammar.metrics import auroc as auroc_of

    def statistic(scores: np.ndarray, idx: np.ndarray) -> dict[str, float]:
        is_valid = idx < 200  # the first 200 items are the valid strings
        return {"auroc": auroc_of(scores[idx[is_valid]], scores[idx[~is_valid]])}

    rng = np.random.default_rng(12)
    hits, trials = 0, 200
    for _ in range(trials):
        valid, negative, source = _scored_pairs(rng, 0.995, "all_or_nothing")
        scores = np.concatenate([valid, negative])
        clusters = np.concatenate([np.arange(200), source])  # a string with its negatives
        bounds = stats.cluster_bootstrap(functools.partial(statistic, scores), clusters, rng,
                                         resamples=200)["auroc"]
        hits += bounds[0] <= 0.995 <= bounds[1]
    assert hits / trials < 0.6


# Pairs per valid string in the default's test splits: 201 pairs on 64 strings for g3, 251
# on 66 for g2 (the pooled pair accuracy's clusters).
PAIR_CLUSTERS = {"g3": {4: 26, 3: 26, 2: 7, 1: 5}, "g2": {5: 26, 4: 15, 3: 12, 2: 7, 1: 5, 6: 1}}


def _clustered_pairs(sizes: dict[int, int], p: float, concentration: float | None,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pair outcomes whose rate varies by valid string (Beta with mean p; None: constant)."""
    per_cluster = np.repeat(list(sizes), list(sizes.values()))
    clusters = np.repeat(np.arange(len(per_cluster)), per_cluster)
    rate = (rng.beta(p * concentration, (1 - p) * concentration, len(per_cluster))
            if concentration else np.full(len(per_cluster), p))
    return (rng.random(len(clusters)) < rate[clusters]).astype(float), clusters


@pytest.mark.parametrize("grammar", ["g2", "g3"])
@pytest.mark.parametrize("p,concentration", [(0.5, 2.0), (0.92, None), (0.92, 2.0),
                                             (0.98, 2.0), (0.995, None), (0.995, 2.0)])
def test_pooled_pair_accuracy_interval_covers_near_one(grammar, p, concentration):
    # concentration 2: some valid strings' pairs are mostly wrong, others all right
    rng = np.random.default_rng(3)
    trials = 4000
    hits = sum(stats.clustered_proportion_interval(
        *_clustered_pairs(PAIR_CLUSTERS[grammar], p, concentration, rng)).covers(p)
        for _ in range(trials))
    assert 0.93 <= hits / trials <= (0.97 if p <= 0.92 else 0.995)  # cautious only near 1


def test_cluster_bootstrap_of_pooled_pair_accuracy_near_one_undercovers():
    """Why pooled pair accuracy left the cluster bootstrap: [1, 1] whenever every pair is
    right (about half the runs at 0.995)."""
    rng = np.random.default_rng(4)
    trials, hits = 300, 0
    for _ in range(trials):
        y, clusters = _clustered_pairs(PAIR_CLUSTERS["g3"], 0.995, None, rng)
        low, high = stats.cluster_bootstrap(lambda idx, y=y: {"p": float(y[idx].mean())},
                                            clusters, rng, 200)["p"]
        hits += low <= 0.995 <= high
    assert hits / trials < 0.8


# -- pooled AUROC: 200 valid strings against every negative, clustered on their sources ---


def _clustered_scores(rng: np.random.Generator, shape: str, param: float):
    """Valid scores, negative scores and each negative's source, the negatives clustered on
    64 sources like g3's test split; returns the population AUROC too. binormal: a negative
    scores its source minus N(param, 1); all or nothing: with probability param a negative
    is confusable (scored like a valid string), else far below every valid string."""
    valid = rng.normal(size=200)
    sizes = PAIR_CLUSTERS["g3"]
    source = np.repeat(np.arange(sum(sizes.values())),
                       np.repeat(list(sizes), list(sizes.values())))
    if shape == "binormal":  # against its own source N(param, 1); against any other N(param, 3)
        nd = stats.NormalDist()
        truth = (nd.cdf(param) + 199 * nd.cdf(param / math.sqrt(3))) / 200
        negative = valid[source] - rng.normal(param, 1.0, size=len(source))
    else:
        truth = 1 - param / 2
        confusable = rng.random(len(source)) < param
        negative = np.where(confusable, rng.normal(size=len(source)), valid[source] - 50)
    return valid, negative, source, truth


def test_clustered_auroc_variance_without_clusters_is_delongs():
    rng = np.random.default_rng(13)
    pos, neg = rng.normal(1.0, 1.0, 60), rng.normal(size=40)
    # DeLong by its definition: placements from every pair, one sample variance per side
    greater = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    delong = greater.mean(axis=1).var(ddof=1) / 60 + greater.mean(axis=0).var(ddof=1) / 40
    clustered = stats.clustered_auroc_variance(pos, range(60), neg, range(60, 100))
    assert clustered == pytest.approx(delong, rel=0.03)  # K/(K-1) against (n-1)/n per side


def test_clustered_auroc_variance_matches_the_cluster_bootstrap():
    from metaexamples.grammar.metrics import auroc as auroc_of

    rng = np.random.default_rng(14)
    valid, negative, source, _ = _clustered_scores(rng, "binormal", 2.0)
    scores = np.concatenate([valid, negative])
    clusters = np.concatenate([np.arange(200), source])
    draws = []
    for idx in stats.cluster_draws(clusters, rng, 2000):
        is_valid = idx < 200
        draws.append(auroc_of(scores[idx[is_valid]], scores[idx[~is_valid]]))
    variance = stats.clustered_auroc_variance(valid, range(200), negative, source)
    assert variance == pytest.approx(np.var(draws), rel=0.15)


@pytest.mark.parametrize("shape,param", [("binormal", 1.0), ("binormal", 2.0),
                                         ("binormal", 3.5), ("binormal", 5.0),
                                         ("all_or_nothing", 0.3), ("all_or_nothing", 0.05),
                                         ("all_or_nothing", 0.01)])
def test_pooled_auroc_interval_covers_near_one(shape, param):
    """AUROC 0.72-0.998. A cluster bootstrap covered 75 % at 0.995 and 88 % at 0.978;
    this covers 97.8-99.9 %, cautious because the design effect never shrinks the
    largest variance independent samples could have."""
    from metaexamples.grammar.metrics import auroc as auroc_of

    rng = np.random.default_rng(15)
    hits, trials = 0, 2000
    for _ in range(trials):
        valid, negative, source, truth = _clustered_scores(rng, shape, param)
        variance = stats.clustered_auroc_variance(valid, range(200), negative, source)
        hits += stats.auroc_interval(auroc_of(valid, negative), 200, len(negative),
                                     variance=variance).covers(truth)
    assert hits / trials >= 0.93


# -- contrasts: paired seeds, two independent rates, many at once ---------------------------


@pytest.mark.parametrize("seeds", [3, 5])
def test_paired_t_over_seeds_covers(seeds):
    # Shaped like rule validity above chance: a large seed effect (initialisation and data
    # order) shared by both conditions of a seed, a small condition effect, values in [0, 1].
    rng = np.random.default_rng(seeds)
    hits, trials, effect = 0, 3000, 0.04
    for _ in range(trials):
        seed_effect = rng.normal(0.0, 0.08, size=seeds)
        ref = np.clip(0.2 + seed_effect + rng.normal(0, 0.03, seeds), 0, 1)
        cond = np.clip(0.2 + effect + seed_effect + rng.normal(0, 0.03, seeds), 0, 1)
        hits += stats.paired_t(cond - ref).interval.covers(effect)
    assert 0.93 <= hits / trials <= 0.97


def test_paired_t_p_value_agrees_with_its_interval():
    rng = np.random.default_rng(7)
    for _ in range(200):
        test = stats.paired_t(rng.normal(0.3, 1.0, size=4))
        assert (test.p_value < 0.05) == test.interval.excludes(0.0)


def test_newcombe_covers_two_models_sample_rates():
    rng = np.random.default_rng(8)
    n, p1, p2, trials = 200, 0.94, 0.89, 3000
    hits = 0
    for x1, x2 in zip(rng.binomial(n, p1, trials), rng.binomial(n, p2, trials), strict=True):
        test = stats.newcombe_difference(x1, n, x2, n)
        hits += test.interval.covers(p1 - p2)
        assert (test.p_value < 0.05) == test.interval.excludes(0.0)
    assert 0.93 <= hits / trials <= 0.97


def test_newcombe_is_mover_of_the_two_wilson_intervals():
    a, b = stats.wilson_interval(56, 70), stats.wilson_interval(48, 80)
    interval = stats.newcombe_difference(56, 70, 48, 80).interval
    assert (interval.low, interval.high) == pytest.approx(stats.mover_limits(a, b))


def test_mover_with_perfectly_correlated_estimates_subtracts_their_widths():
    a = stats.Interval(0.5, 0.3, 0.6, 10, "a")
    b = stats.Interval(0.2, 0.1, 0.25, 10, "b")
    # correlation 1: the difference moves by |0.2 - 0.05| down and |0.1 - 0.1| up
    assert stats.mover_limits(a, b, corr=1.0) == pytest.approx((0.3 - 0.15, 0.3))
    assert stats.mover_limits(a, b, corr=0.0) == pytest.approx(
        (0.3 - math.hypot(0.2, 0.05), 0.3 + math.hypot(0.1, 0.1)))


def test_proportion_minus_mean_with_constant_values_is_the_proportions_interval_shifted():
    hits = [True] * 3 + [False] * 37
    interval = stats.proportion_minus_mean(hits, [0.25] * 40)
    rate = stats.agresti_coull_interval(3, 40)
    assert interval.method == "mover" and interval.n == 40
    assert (interval.estimate, interval.low, interval.high) == pytest.approx(
        (rate.estimate - 0.25, rate.low - 0.25, rate.high - 0.25))
    assert math.isnan(stats.proportion_minus_mean([True], [0.5]).low)  # one item: no interval


def test_mover_test_p_value_agrees_with_its_interval():
    rng = np.random.default_rng(10)
    for x1, x2 in zip(rng.binomial(60, 0.5, 200), rng.binomial(60, 0.4, 200), strict=True):
        test = stats.mover_test(lambda lev, x=x1: stats.agresti_coull_interval(x, 60, lev),
                                lambda lev, x=x2: stats.agresti_coull_interval(x, 60, lev),
                                "mover")
        assert (test.p_value < 0.05) == test.interval.excludes(0.0)


def test_holm_keeps_the_familywise_error_rate_over_20_null_contrasts():
    rng = np.random.default_rng(9)
    trials, false_alarms = 2000, 0
    for _ in range(trials):
        # 20 null contrasts, each a paired t over 5 seeds
        p = [stats.paired_t(rng.normal(0.0, 1.0, 5)).p_value for _ in range(20)]
        false_alarms += min(stats.holm(p)) < 0.05
    assert false_alarms / trials <= 0.05 + 0.01  # 0.05 plus 2 simulation standard errors


def test_holm_matches_its_definition():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> 0.02, 0.03, 0.06, max(0.06, 0.04)
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])


# -- power: closed form and simulation ------------------------------------------------------


def test_seeds_needed_matches_the_closed_form_for_large_samples():
    # For many seeds the t-test is a z-test: n = ((z_0.975 + z_0.8) sd / effect)^2 = 7.85 (sd /
    # effect)^2, plus the small-sample correction of the t distribution (about one seed).
    from statistics import NormalDist

    z = NormalDist().inv_cdf
    for ratio in (2.0, 4.0, 8.0):
        closed = ((z(0.975) + z(0.8)) * ratio) ** 2
        needed = stats.seeds_needed(1.0, ratio)
        assert closed <= needed <= closed + 3


def test_seeds_needed_gives_the_power_it_promises_by_simulation():
    rng = np.random.default_rng(10)
    effect, sd = 0.05, 0.06
    n = stats.seeds_needed(effect, sd)
    trials = 3000

    def power(k: int) -> float:
        return np.mean([stats.paired_t(rng.normal(effect, sd, k)).p_value < 0.05
                        for _ in range(trials)])

    assert power(n) >= 0.78  # 0.80 minus simulation noise
    assert power(n - 1) < 0.80 + 0.02


def test_mde_t_is_the_effect_with_80_percent_power():
    for n, sd in ((3, 1.0), (5, 0.2), (10, 3.0)):
        assert stats.t_power(stats.mde_t(sd, n), sd, n) == pytest.approx(0.8, abs=1e-6)
    assert np.isnan(stats.mde_t(1.0, 1))


def test_stratified_mean_is_exact_where_told_and_weights_held_out_strata():
    test = stats.stratified_mean([1.0, 3.0, 10.0, 14.0], [2, 2, 3, 3],
                                 {1: 0.2, 2: 0.4, 3: 0.4}, exact={1: 5.0})
    assert test.interval.estimate == pytest.approx(0.2 * 5 + 0.4 * 2 + 0.4 * 12)
    # variance 0.4^2 (2/2) + 0.4^2 (8/2) = 0.8
    assert test.se == pytest.approx(math.sqrt(0.16 * 1 + 0.16 * 4))
    assert math.isnan(stats.stratified_mean([1.0], [2], {1: 0.5, 2: 0.5}).interval.estimate)
