"""Grammars checked against brute-force enumeration of small languages."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaexamples.grammar.languages import (
    DOCUMENT_NEGATIVE_TYPES,
    GRAMMARS,
    NEGATIVE_TYPES,
    EvenCounts,
    _parity_table,
    even_count_strings,
    make_grammar,
    sample_even_counts,
)

ALPHABETS = [("★", "◆"), ("★", "◆", "▲")]
FOREIGN = ("✦", "✧")


def rule(name: str, s: tuple[str, ...]) -> bool:
    """Brute-force definitions of the three rules (alphabet and length checked elsewhere)."""
    if name == "g1":
        return True
    if name == "g2":
        return all(c % 2 == 0 for c in Counter(s).values())
    return s == s[::-1]


def all_strings(alphabet, max_len):
    for n in range(max_len + 1):
        yield from itertools.product(alphabet, repeat=n)


CONFIGS = [
    (name, alphabet, lo, hi)
    for name in GRAMMARS
    for alphabet in ALPHABETS
    for lo, hi in [(0, 5), (1, 6), (2, 4)]
]


@pytest.mark.parametrize("name,alphabet,lo,hi", CONFIGS)
def test_accepts_count_and_logp_match_enumeration(name, alphabet, lo, hi):
    g = make_grammar(name, alphabet, lo, hi)
    per_length = Counter()
    total_p = 0.0
    for s in all_strings(alphabet, hi + 2):
        expected = lo <= len(s) <= hi and rule(name, s)
        assert g.accepts(s) == expected, s
        assert g.accepts(list(s)) == expected
        if rule(name, s):
            per_length[len(s)] += 1
        if expected:
            total_p += math.exp(g.logp(s))
        else:
            assert g.logp(s) == -math.inf
    for n in range(hi + 3):
        assert g.count(n) == per_length[n], (name, n)
    assert g.lengths() == [n for n in range(lo, hi + 1) if per_length[n]]
    assert math.isclose(total_p, 1.0, rel_tol=1e-12)
    dist = g.length_distribution()
    assert list(dist) == g.lengths() and math.isclose(sum(dist.values()), 1.0)


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_rejects_foreign_symbols(name):
    g = make_grammar(name, ("★", "◆"), 1, 6)
    assert not g.accepts(["✦", "✦"])
    assert not g.accepts(["★", "✦", "★"] if name != "g2" else ["★", "★", "✦", "✦"])


def test_even_count_closed_form_matches_dp():
    for k in range(1, 7):
        for n in range(0, 16):
            assert even_count_strings(n, k) == _parity_table(k, n)[0]
    assert even_count_strings(4, 2) == 8  # ★★★★ ◆◆◆◆ and the six arrangements of ★★◆◆
    assert even_count_strings(60, 5) > 2**63  # exact big integers, no overflow


def test_odd_lengths_have_no_even_count_strings():
    assert all(even_count_strings(n, 4) == 0 for n in range(1, 20, 2))


def chi_square(g, n_samples, seed):
    """Chi-square statistic of sampled strings against exp(logp), and its degrees of freedom."""
    rng = np.random.default_rng(seed)
    observed = Counter(tuple(g.sample(rng)) for _ in range(n_samples))
    support = [s for s in all_strings(g.alphabet, g.max_length) if g.accepts(s)]
    assert set(observed) <= set(support)
    stat = 0.0
    for s in support:
        expected = n_samples * math.exp(g.logp(s))
        stat += (observed[s] - expected) ** 2 / expected
    return stat, len(support) - 1


@pytest.mark.parametrize(
    "name,alphabet,lo,hi",
    [("g1", ("★", "◆"), 1, 3), ("g2", ("★", "◆", "▲"), 2, 4), ("g3", ("★", "◆"), 1, 4)],
)
def test_sample_frequencies_match_logp(name, alphabet, lo, hi):
    g = make_grammar(name, alphabet, lo, hi)
    stat, dof = chi_square(g, 6000, seed=12345)
    # 99.9th percentile of chi-square is below dof + 4.5 * sqrt(2 dof) + 10 for these dofs
    assert stat < dof + 4.5 * math.sqrt(2 * dof) + 10, (stat, dof)


def test_even_count_sampler_is_uniform_at_fixed_length():
    rng = np.random.default_rng(7)
    counts = Counter(tuple(sample_even_counts(rng, ("a", "b", "c"), 4)) for _ in range(4200))
    assert len(counts) == even_count_strings(4, 3) == 21
    assert max(counts.values()) < 2 * min(counts.values())
    with pytest.raises(ValueError):
        sample_even_counts(rng, ("a", "b"), 3)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(GRAMMARS)),
    k=st.integers(1, 5),
    lo=st.integers(0, 4),
    extra=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_sample_is_accepted_and_has_finite_logp(name, k, lo, extra, seed):
    alphabet = tuple("★◆▲●■"[:k])
    g = make_grammar(name, alphabet, lo, lo + extra)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        s = g.sample(rng)
        assert g.accepts(s)
        assert math.isfinite(g.logp(s)) and g.logp(s) <= 0


def test_sampling_is_deterministic_given_seed():
    g = make_grammar("g2", ("★", "◆", "▲"), 2, 12)
    a = [g.sample(np.random.default_rng(3)) for _ in range(3)]
    b = [g.sample(np.random.default_rng(3)) for _ in range(3)]
    assert a == b


# -- hard negatives -------------------------------------------------------------------


def hamming(a, b):
    return sum(x != y for x, y in zip(a, b, strict=True))


def check_negative(g, kind, valid, neg):
    """The documented property of each negative type."""
    alphabet = set(g.alphabet)
    assert not g.accepts(neg), (kind, valid, neg)
    if kind == "minimal_edit":
        assert len(neg) == len(valid) and set(neg) <= alphabet and hamming(valid, neg) == 1
        if g.name == "g2":
            assert sum(c % 2 for c in Counter(neg).values()) == 2
        else:
            assert neg != neg[::-1]
    elif kind == "odd_length":
        assert len(neg) % 2 == 1 and g.min_length <= len(neg) <= g.max_length
        assert set(neg) <= alphabet and abs(len(neg) - len(valid)) == 1
        short, long_ = sorted((neg, valid), key=len)
        assert any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))
    elif kind == "out_of_alphabet":
        assert len(neg) == len(valid) and hamming(valid, neg) == 1
        assert [s for s in neg if s not in alphabet] != [] and set(neg) - alphabet <= set(FOREIGN)
    elif kind == "too_long":
        assert g.max_length < len(neg) <= g.max_length + 4
        assert set(neg) <= alphabet and rule(g.name, tuple(neg))
    elif kind == "empty":
        assert neg == [] and g.min_length > 0
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("name", sorted(GRAMMARS))
@pytest.mark.parametrize("alphabet", ALPHABETS)
def test_negatives_are_rejected_and_typed(name, alphabet):
    g = make_grammar(name, alphabet, 1, 8)
    rng = np.random.default_rng(11)
    made = Counter()
    for _ in range(150):
        valid = g.sample(rng)
        for kind in g.negative_types:
            neg = g.negative(kind, rng, valid, FOREIGN)
            if neg is None:
                impossible = kind == "minimal_edit" and len(valid) == 1
                assert impossible, (kind, valid)
                continue
            check_negative(g, kind, valid, neg)
            made[kind] += 1
    assert set(made) == set(g.negative_types)


def test_a_grammar_declares_exactly_the_negative_types_it_can_have():
    """A type is left out only where no string of that kind could be invalid."""
    symbols = ("★", "◆")
    g1, g2, g3 = (make_grammar(n, symbols, lo, 6) for n, lo in (("g1", 1), ("g2", 2), ("g3", 1)))
    strings = [list(s) for n in range(1, 7) for s in itertools.product(symbols, repeat=n)]
    # minimal edits: g1 has none, since every one-symbol substitution stays in g1
    assert "minimal_edit" not in g1.negative_types
    assert all(g1.accepts([*s[:i], c, *s[i + 1:]])
               for s in strings for i in range(len(s)) for c in symbols)
    for g in (g2, g3):
        assert "minimal_edit" in g.negative_types
        assert any(g.accepts(s) and not g.accepts([*s[:i], c, *s[i + 1:]])
                   for s in strings for i in range(len(s)) for c in symbols)
    # odd length is a negative only for g2, the one grammar without a valid odd length
    assert "odd_length" in g2.negative_types
    assert not any(g2.accepts(s) for s in strings if len(s) % 2)
    for g in (g1, g3):
        assert "odd_length" not in g.negative_types
        assert any(g.accepts(s) for s in strings if len(s) % 2)
    # the rest apply to every grammar; document-level negatives are never string types
    for g in (g1, g2, g3):
        assert {"out_of_alphabet", "too_long", "empty"} <= set(g.negative_types)
        assert set(g.negative_types) <= set(NEGATIVE_TYPES)
        assert not set(g.negative_types) & set(DOCUMENT_NEGATIVE_TYPES)


def test_negatives_return_none_when_impossible():
    rng = np.random.default_rng(0)
    g3 = make_grammar("g3", ("★", "◆"), 1, 5)
    assert g3.negative("minimal_edit", rng, ["★"]) is None
    assert g3.negative("out_of_alphabet", rng, ["★"]) is None  # no foreign symbols given
    assert make_grammar("g1", ("★",), 0, 3).negative("empty", rng, ["★"]) is None
    g2 = make_grammar("g2", ("★", "◆"), 2, 2)
    assert g2.negative("odd_length", rng, ["★", "★"]) is None  # lengths 1 and 3 out of bounds
    assert make_grammar("g2", ("★",), 2, 4).negative("minimal_edit", rng, ["★", "★"]) is None


def test_negative_argument_errors():
    rng = np.random.default_rng(0)
    g = make_grammar("g2", ("★", "◆"), 2, 6)
    with pytest.raises(ValueError, match="unknown negative type 'mirror'.*minimal_edit"):
        g.negative("mirror", rng, ["★", "★"])
    with pytest.raises(ValueError, match="unknown negative type 'minimal_edit'"):
        make_grammar("g1", ("★",), 1, 3).negative("minimal_edit", rng, ["★"])
    with pytest.raises(ValueError, match="derived from valid strings"):
        g.negative("minimal_edit", rng, ["★", "◆"])
    with pytest.raises(ValueError, match="foreign symbols"):
        g.negative("out_of_alphabet", rng, ["★", "★"], foreign=("◆",))


# -- configuration errors -------------------------------------------------------------


@pytest.mark.parametrize(
    "name,alphabet,lo,hi,message",
    [
        ("g1", (), 1, 3, "alphabet must be non-empty"),
        ("g1", ("★", "◆", "★"), 1, 3, r"distinct \(repeated: \['★'\]\)"),
        ("g1", ("★", "a b"), 1, 3, "without whitespace"),
        ("g1", ("★", ""), 1, 3, "without whitespace"),
        ("g3", ("★",), -1, 3, r"min_length must be >= 0 \(got -1\)"),
        ("g3", ("★",), 5, 3, r"min_length \(5\) must be <= max_length \(3\)"),
        ("g2", ("★", "◆"), 3, 3, r"g2: no even length in \[3, 3\]"),
        ("g1", ("★",), 1.5, 3, "min_length must be an integer"),
        ("g1", ("★",), 1, True, "max_length must be an integer"),
    ],
)
def test_invalid_configs_raise(name, alphabet, lo, hi, message):
    with pytest.raises(ValueError, match=message):
        make_grammar(name, alphabet, lo, hi)


def test_make_grammar_unknown_name_lists_allowed():
    with pytest.raises(ValueError, match=r"unknown grammar 'g4'; allowed: \['g1', 'g2', 'g3'\]"):
        make_grammar("g4", ("★",), 1, 3)


def test_grammar_is_frozen_and_registered():
    g = make_grammar("g2", ["★", "◆"], 2, 4)
    assert isinstance(g, EvenCounts) and g.alphabet == ("★", "◆") and g.name == "g2"
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.max_length = 10  # type: ignore[misc]
    assert set(GRAMMARS) == {"g1", "g2", "g3"}
    assert all(isinstance(cls.description, str) and cls.description for cls in GRAMMARS.values())
    assert make_grammar("g2", ("★", "◆"), 2, 4) == g  # value semantics: usable as a key
