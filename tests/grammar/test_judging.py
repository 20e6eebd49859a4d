"""Judging samples, their rates, and the rates' within-run intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from metaexamples import stats
from metaexamples.grammar import contrasts, judging, metrics
from metaexamples.grammar.languages import make_grammar
from metaexamples.grammar.sampling import Sample

ALPHABET = ("★", "◆", "▲")


def test_judge_separates_format_and_rule_validity():
    g2 = make_grammar("g2", ALPHABET, 2, 8)
    assert judging.judge(g2, "<g2> ★ ★ </g2>") == judging.Judgement(True, True, True, 2)
    assert judging.judge(g2, "<g2> ★ ◆ </g2>") == judging.Judgement(True, True, False, 2)
    assert judging.judge(g2, "<g2> ★ x </g2>") == judging.Judgement(True, False, False, None)
    assert judging.judge(g2, "<g2> ★ ★") == judging.Judgement(False, False, False, None)
    assert judging.judge(g2, "<g2> ★ ★ </g2> tail").format_valid is False


def brute_chance(grammar, dist) -> float:
    """Enumerate every string of every length and count the accepted ones."""
    import itertools

    total = 0.0
    for n, p in dist.items():
        strings = list(itertools.product(grammar.alphabet, repeat=n))
        total += p * sum(grammar.accepts(list(s)) for s in strings) / len(strings)
    return total


@pytest.mark.parametrize("name,lo,hi", [("g1", 1, 5), ("g2", 2, 6), ("g3", 1, 6)])
def test_chance_rate_matches_enumeration(name, lo, hi):
    g = make_grammar(name, ALPHABET, lo, hi)
    dist = g.length_distribution()
    assert judging.chance_rate(g, dist) == pytest.approx(brute_chance(g, dist))


def test_generation_metrics():
    g3 = make_grammar("g3", ALPHABET, 1, 4)
    texts = ["<g3> ★ </g3>", "<g3> ★ </g3>", "<g3> ★ ◆ </g3>", "<g3> ★ ◆ ★ </g3>", "<g3> ★ ◆"]
    samples = [Sample(t, 3, "close_tag") for t in texts]
    rows = pd.DataFrame(judging.sample_rows(samples, g3, {"<g3> ★ </g3>"}))
    out = judging.generation_metrics(rows, {1: 0.5, 3: 0.5})
    assert out["format_validity"] == pytest.approx(4 / 5)
    assert out["rule_validity"] == pytest.approx(3 / 5)
    assert out["rule_validity_given_format"] == pytest.approx(3 / 4)
    # chance at the format-valid lengths 1, 1, 2, 3 over 3 symbols: 1, 1, 1/3, 1/3
    assert out["chance_given_lengths"] == pytest.approx((1 + 1 + 1 / 3 + 1 / 3) / 4)
    assert out["rule_validity_above_chance"] == pytest.approx(3 / 4 - 2 / 3)
    assert out["distinct_fraction"] == pytest.approx(4 / 5)
    assert out["novel_fraction"] == pytest.approx(1 / 3)
    # format-valid lengths 1, 1, 2, 3 -> {1: .5, 2: .25, 3: .25} vs {1: .5, 3: .5}
    assert out["length_tv_distance"] == pytest.approx(0.25)
    assert math.isnan(judging.total_variation({}, {1: 1.0}))
    assert np.isclose(sum(judging.length_histogram([1, 1, 2]).values()), 1.0)


def sampled_texts(grammar, rng, n: int, rule_follower: bool) -> list[str]:
    """n wrapped strings at the generator's lengths: the generator's own strings, or uniform
    random symbols (a model that learned the format and the lengths, nothing of the rule)."""
    texts = []
    for _ in range(n):
        symbols = grammar.sample(rng)
        if not rule_follower:
            symbols = list(rng.choice(grammar.alphabet, size=len(symbols)))
        texts.append(f"<{grammar.name}> {' '.join(symbols)} </{grammar.name}>")
    return texts


@pytest.mark.parametrize("name,lo,hi", [("g2", 2, 8), ("g3", 1, 8)])
def test_rule_validity_above_chance_is_zero_for_random_symbols_and_high_for_the_rule(
        name, lo, hi):
    g = make_grammar(name, ALPHABET, lo, hi)
    rng = np.random.default_rng(0)
    dist = g.length_distribution()

    def above_chance(texts):
        samples = [Sample(t, 3, "close_tag") for t in texts]
        rows = pd.DataFrame(judging.sample_rows(samples, g, set()))
        return judging.generation_metrics(rows, dist)

    # knows nothing of the rule: 0 up to sampling noise (sd of a mean of 4000 draws < 0.008)
    random = above_chance(sampled_texts(g, rng, 4000, rule_follower=False))
    assert abs(random["rule_validity_above_chance"]) < 0.025
    assert random["chance_given_lengths"] == pytest.approx(judging.chance_rate(g, dist),
                                                           abs=0.025)
    # knows the rule: every string valid, so 1 minus the chance at its lengths
    exact = above_chance(sampled_texts(g, rng, 400, rule_follower=True))
    assert exact["rule_validity_given_format"] == 1.0
    assert exact["rule_validity_above_chance"] == pytest.approx(
        1 - exact["chance_given_lengths"])
    assert exact["rule_validity_above_chance"] > 0.5


def test_every_generation_metric_has_an_interval_method():
    rows = pd.DataFrame({"text": ["<g1> ★ </g1>", "<g1> x"], "n_new_tokens": [3, 24],
                         "stop": ["close_tag", "max_new_tokens"], "well_formed": [True, False],
                         "format_valid": [True, False], "rule_valid": [True, False],
                         "length": [1, None], "chance_at_length": [1.0, None],
                         "in_train": [False, False]})
    point = judging.generation_metrics(rows, {1: 1.0})
    counts = {k for k in point if k.startswith("n_")}
    assert set(point) - counts == {*metrics.SAMPLE_INTERVALS, *metrics.SAMPLE_STATISTICS,
                                   *metrics.SAMPLE_UNRESAMPLED} - {"chance_rate"}
    intervals = judging.sample_intervals(rows)
    assert set(intervals) == set(metrics.SAMPLE_INTERVALS)
    for metric, (method, count) in metrics.SAMPLE_INTERVALS.items():
        assert intervals[metric].method == method and count in counts
    assert point["n_format_valid"] == intervals["rule_validity_given_format"].n == 1


# -- the interval of rule validity above chance, on samples shaped like the real ones ------

# Format-valid samples of 200 by length, (format-valid, rule-valid), from the default main
# job's trained models (fresh clone, 2026-12-03). g2's models write almost no valid string
# (5 of 162: a rate near 0); g3's write short palindromes and few long ones, so a sample's
# validity and its chance are strongly correlated through its length.
REAL_SAMPLES = {
    "g2 examples": ("g2", {0: (4, 0), 1: (15, 0), 2: (13, 2), 3: (12, 0), 4: (11, 1),
                           5: (8, 0), 6: (11, 1), 7: (21, 0), 8: (12, 1), 9: (17, 0),
                           10: (15, 0), 11: (5, 0), 12: (9, 0), 13: (3, 0), 14: (1, 0),
                           15: (2, 0), 16: (2, 0), 18: (1, 0)}),
    "g2 meta_10pct": ("g2", {0: (10, 0), 1: (12, 0), 2: (15, 2), 3: (6, 0), 4: (13, 2),
                             5: (15, 0), 6: (8, 0), 7: (19, 0), 8: (14, 1), 9: (9, 0),
                             10: (8, 1), 11: (6, 0), 12: (3, 1), 13: (5, 0), 14: (3, 0),
                             15: (3, 0), 16: (2, 0), 17: (3, 0), 20: (1, 0)}),
    "g3 examples": ("g3", {1: (21, 21), 2: (28, 25), 3: (18, 16), 4: (19, 6), 5: (10, 2),
                           6: (22, 2), 7: (14, 2), 8: (7, 0), 9: (9, 0), 10: (23, 0),
                           11: (9, 0), 12: (12, 0)}),
    "g3 meta_10pct": ("g3", {1: (54, 54), 2: (35, 31), 3: (12, 10), 4: (13, 2), 5: (10, 1),
                             6: (7, 1), 7: (13, 0), 8: (17, 0), 9: (15, 0), 10: (6, 0),
                             11: (4, 0), 12: (2, 0), 13: (1, 0), 14: (2, 0), 15: (1, 0)}),
}
N_SAMPLES = 200
SYMBOLS = ("a", "b", "c", "d", "e")  # the default selects 5 symbols


class SampleLaw:
    """A model's sample law: format-valid with probability `share`, then a length from the
    observed mix and rule-valid with the observed rate at that length (or `rule_rate`)."""

    def __init__(self, name: str, counts: dict[int, tuple[int, int]],
                 rule_rate: float | None = None):
        g = make_grammar(name, SYMBOLS, 1 if name != "g2" else 2, 12)
        self.lengths = np.array(sorted(counts))
        fmt = np.array([counts[n][0] for n in self.lengths], dtype=float)
        self.share = fmt.sum() / N_SAMPLES
        self.mix = fmt / fmt.sum()
        self.rule = (np.array([counts[n][1] for n in self.lengths]) / fmt
                     if rule_rate is None else np.full(len(fmt), rule_rate))
        self.chance = np.array([judging.chance_at_length(g, int(n)) for n in self.lengths])
        self.truth = float(self.mix @ self.rule - self.mix @ self.chance)

    def draw(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        fmt = rng.random(N_SAMPLES) < self.share
        at = rng.choice(len(self.lengths), N_SAMPLES, p=self.mix)
        return {"format_valid": fmt, "rule_valid": fmt & (rng.random(N_SAMPLES) < self.rule[at]),
                "chance_at_length": np.where(fmt, self.chance[at], np.nan)}


@pytest.mark.parametrize("shape,rule_rate", [
    ("g2 examples", None),  # near 0: a percentile bootstrap covered 92.0 % here
    ("g2 meta_10pct", None),
    ("g3 examples", None),
    ("g3 meta_10pct", None),
    ("g3 meta_10pct", 0.98),  # a model that has nearly learned the rule
    ("g3 meta_10pct", 0.0),  # one that writes no valid string
])
def test_rule_validity_above_chance_interval_covers(shape, rule_rate):
    law = SampleLaw(*REAL_SAMPLES[shape], rule_rate=rule_rate)
    rng = np.random.default_rng(0)
    trials = 4000  # coverage near 0 is about 96 %: 4,000 keep the simulation error at 0.3 %
    hits = sum(judging.above_chance_interval(law.draw(rng)).covers(law.truth)
               for _ in range(trials))
    assert 0.93 <= hits / trials <= 0.97


@pytest.mark.parametrize("condition,reference", [
    ("g3 meta_10pct", "g3 examples"), ("g2 meta_10pct", "g2 examples"),
    ("g2 examples", "g2 examples"),  # no difference, both near 0
])
def test_two_models_above_chance_contrast_covers(condition, reference):
    """One seed: what `contrasts` reports for this metric, two runs' independent samples.
    MOVER of the runs' own intervals would cover 97-98 % on the g2 pairs (too wide)."""
    a, b = SampleLaw(*REAL_SAMPLES[condition]), SampleLaw(*REAL_SAMPLES[reference])
    rng = np.random.default_rng(1)
    trials, hits = 2000, 0
    for _ in range(trials):
        test = contrasts._above_chance_test(a.draw(rng), b.draw(rng), 400, rng)
        hits += test.interval.covers(a.truth - b.truth)
    assert 0.93 <= hits / trials <= 0.97


def test_a_mean_chance_interval_stays_within_0_and_1():
    # g1: chance 1 at every length within bounds, 0 beyond: a t interval would pass 1
    rows = {"format_valid": np.ones(40, bool), "rule_valid": np.arange(40) > 0,
            "chance_at_length": np.where(np.arange(40) > 0, 1.0, 0.0),
            "well_formed": np.ones(40, bool), "stop": np.array(["close_tag"] * 40),
            "in_train": np.zeros(40, bool)}
    chance = judging.sample_intervals(rows)["chance_given_lengths"]
    assert chance.high == 1.0 and 0.9 < chance.low < chance.estimate
    assert stats.t_interval(rows["chance_at_length"]).high > 1.0  # what was clamped
