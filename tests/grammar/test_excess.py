"""Excess NLL over every length: exact enumeration, the estimator against brute force, and
the coverage of its interval at the default's split sizes, against the true KL."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from metaexamples.grammar import excess
from metaexamples.grammar.data import distinct_valid, grammar_seed
from metaexamples.grammar.languages import make_grammar
from metaexamples.grammar.splits import SplitGrammar, SplitRule

ALPHABET = ("ᚠ", "ᚢ", "ᚦ", "ᚨ", "ᚱ")
DEFAULT_BOUNDS = {"g1": (1, 12), "g2": (2, 12), "g3": (1, 12)}  # config.yaml's grammars


@pytest.mark.parametrize("name", ["g1", "g2", "g3"])
@pytest.mark.parametrize("k", [2, 3])
def test_strings_of_length_are_every_valid_string(name, k):
    g = make_grammar(name, ALPHABET[:k], 1, 6)
    for n in range(1, 7):
        strings = g.strings_of_length(n)
        assert len(strings) == g.count(n)
        assert all(g.accepts(s) for s in strings)
        assert len({tuple(s) for s in strings}) == len(strings)


def test_exact_rows_cover_the_small_lengths_with_their_true_probability():
    g = make_grammar("g3", ALPHABET, 1, 12)
    rows = excess.exact_rows(g, 256)
    by_length = Counter(len(r["symbols"]) for r in rows)
    assert by_length == {1: 5, 2: 5, 3: 25, 4: 25, 5: 125, 6: 125}
    total = sum(math.exp(r["logp_true"]) for r in rows)
    assert total == pytest.approx(6 / 12)  # P(L <= 6): every string of those lengths


def test_estimator_equals_brute_force_kl_when_every_string_is_given():
    g = make_grammar("g2", ALPHABET[:3], 2, 8)
    rng = np.random.default_rng(0)
    dist = g.length_distribution()
    strings = [s for n in g.lengths() for s in g.strings_of_length(n)]
    model_logp = {tuple(s): g.logp(s) - rng.gamma(2.0, 0.5) for s in strings}
    kl = sum(math.exp(g.logp(s)) * (g.logp(s) - model_logp[tuple(s)]) for s in strings)
    exact_lengths = excess.exact_lengths(g, 25)  # L = 2, 4 exact; 6, 8 from "held-out"
    assert exact_lengths == [2, 4]
    exact = excess.exact_means(
        [len(s) for s in strings if len(s) in exact_lengths],
        [g.logp(s) - model_logp[tuple(s)] for s in strings if len(s) in exact_lengths])
    rest = [s for s in strings if len(s) not in exact_lengths]
    test = excess.excess_nll([len(s) for s in rest],
                             [g.logp(s) - model_logp[tuple(s)] for s in rest], dist, exact)
    assert test.interval.estimate == pytest.approx(kl)


def test_a_length_with_neither_exact_nor_held_out_strings_is_undefined_not_dropped():
    test = excess.excess_nll([3, 3], [1.0, 2.0], {1: 0.25, 2: 0.25, 3: 0.5}, exact={1: 0.0})
    assert math.isnan(test.interval.estimate)


def _heldout_lengths(name: str) -> Counter:
    """Lengths of the default's test split: 200 distinct valid strings, 10 % of the hash."""
    g = make_grammar(name, ALPHABET, *DEFAULT_BOUNDS[name])
    split = SplitGrammar(g, SplitRule(10, 10), "test")
    return Counter(len(r.symbols) for r in distinct_valid(split, 200, grammar_seed(0, name)))


@pytest.mark.parametrize("name", ["g1", "g2", "g3"])
def test_excess_nll_interval_covers_the_true_kl_over_every_length(name):
    """A model shaped like the trained ones: excess growing with length, right-skewed
    across strings; the truth is the KL over every string of every length."""
    g = make_grammar(name, ALPHABET, *DEFAULT_BOUNDS[name])
    dist = g.length_distribution()
    exact_lengths = excess.exact_lengths(g, 256)
    held = _heldout_lengths(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    trials, hits = 2000, 0
    skew = math.exp(0.75**2 / 2)  # mean of lognormal(0, 0.75)
    for _ in range(trials):
        truth, exact, lengths, values = 0.0, {}, [], []
        for n, p in dist.items():
            mu, sigma = 0.3 * n, 0.15 * n
            size = g.count(n) if g.count(n) <= 20_000 else held[n]
            draws = mu + sigma * (rng.lognormal(0.0, 0.75, size) - skew)
            if n in exact_lengths:
                exact[n] = float(draws.mean())
                truth += p * exact[n]
                continue
            truth += p * (float(draws.mean()) if g.count(n) <= 20_000 else mu)
            lengths += [n] * held[n]
            values += draws[: held[n]].tolist()  # a uniform sample of the length's strings
        hits += excess.excess_nll(lengths, values, dist, exact).interval.covers(truth)
    assert 0.93 <= hits / trials <= 0.97
