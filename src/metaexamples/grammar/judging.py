"""Judging sampled strings, and the sample rates with their within-run intervals.

Judging a sample (`judge`) separates
- format validity: the wrapper is well formed and every symbol is in the alphabet;
- rule validity: the string is in the language (so also format-valid);
and `chance_rate` gives the rule-validity a random well-formed string would have (at the
generator's length law; `chance_given_lengths` at the samples' own lengths).
`generation_metrics` turns judged samples into rates, `sample_intervals` gives each rate
its interval over the samples it counts. Nothing here needs torch, so the contrasts can
use it too.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from metaexamples import stats
from metaexamples.grammar.documents import parse_example

if TYPE_CHECKING:
    from metaexamples.grammar.sampling import Sample

@dataclass(frozen=True)
class Judgement:
    well_formed: bool
    format_valid: bool
    rule_valid: bool
    length: int | None  # number of symbols when format-valid


def judge(grammar_obj, text: str) -> Judgement:
    """Format and rule validity of one sampled text under `grammar_obj` (a `Grammar`)."""
    well_formed, symbols = parse_example(grammar_obj.name, text)
    alphabet = set(grammar_obj.alphabet)
    format_valid = well_formed and all(s in alphabet for s in symbols)
    rule_valid = format_valid and grammar_obj.accepts(symbols)
    return Judgement(well_formed, format_valid, rule_valid, len(symbols) if format_valid else None)


def chance_at_length(grammar_obj, length: int) -> float:
    """P(valid) for a uniform random string of `length` alphabet symbols (0 out of bounds).

    >>> from metaexamples.grammar.languages import make_grammar
    >>> g3 = make_grammar("g3", ("a", "b"), 1, 3)
    >>> [chance_at_length(g3, n) for n in (1, 2, 3, 4)]
    [1.0, 0.5, 0.5, 0.0]
    """
    if not grammar_obj.min_length <= length <= grammar_obj.max_length:
        return 0.0
    return grammar_obj.count(length) / len(grammar_obj.alphabet) ** length


def chance_rate(grammar_obj, length_distribution: dict[int, float]) -> float:
    """P(valid) for a uniform random string over the alphabet with length ~ the given law.

    sum_L P(L) * count(L) / k^L.

    >>> from metaexamples.grammar.languages import make_grammar
    >>> g3 = make_grammar("g3", ("a", "b"), 1, 3)
    >>> round(chance_rate(g3, {1: 1 / 3, 2: 1 / 3, 3: 1 / 3}), 4)  # (1 + 1/2 + 1/2) / 3
    0.6667
    """
    return float(sum(p * chance_at_length(grammar_obj, int(n))
                     for n, p in length_distribution.items()))


def length_histogram(lengths: Iterable[int]) -> dict[int, float]:
    counts = Counter(lengths)
    total = sum(counts.values())
    return {n: c / total for n, c in sorted(counts.items())} if total else {}


def total_variation(p: dict[int, float], q: dict[int, float]) -> float:
    """Total variation distance between two distributions over lengths.

    >>> total_variation({1: 0.5, 2: 0.5}, {2: 1.0})
    0.5
    """
    if not p or not q:
        return math.nan
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


def sample_rows(samples: Sequence[Sample], grammar_obj, train_texts: set[str]) -> list[dict]:
    """One JSON-ready row per sample with its judgement."""
    rows = []
    for i, s in enumerate(samples):
        j = judge(grammar_obj, s.text)
        rows.append({
            "index": i,
            "text": s.text,
            "n_new_tokens": s.n_new_tokens,
            "stop": s.stop,
            "well_formed": j.well_formed,
            "format_valid": j.format_valid,
            "rule_valid": j.rule_valid,
            "length": j.length,
            "chance_at_length": (chance_at_length(grammar_obj, j.length)
                                 if j.format_valid else None),
            "in_train": s.text in train_texts,
        })
    return rows


def generation_metrics(rows, length_distribution: dict[int, float]) -> dict[str, float]:
    """Validity, diversity and length statistics of judged samples.

    `rows`: a DataFrame or dict of arrays with the columns of `sample_rows`.
    `novel_fraction` is among rule-valid samples (an invalid sample is trivially novel);
    the length histogram is over format-valid samples. `chance_given_lengths` is the rule
    validity that uniform random symbols would have at the lengths of the format-valid
    samples, so `rule_validity_above_chance` (rule validity given format minus it) is 0 for
    a model that learned the format and its own length law but nothing of the rule.
    """
    fmt = np.asarray(rows["format_valid"], dtype=bool)
    rule = np.asarray(rows["rule_valid"], dtype=bool)
    n, n_fmt, n_rule = len(fmt), int(fmt.sum()), int(rule.sum())
    if n == 0:
        return {"n_samples": 0.0}
    texts = np.asarray(rows["text"], dtype=object)
    in_train = np.asarray(rows["in_train"], dtype=bool)
    stops = np.asarray(rows["stop"], dtype=object)
    lengths = [int(x) for x in np.asarray(rows["length"], dtype=object)[fmt]]
    given_format = n_rule / n_fmt if n_fmt else math.nan
    chance = (float(np.asarray(rows["chance_at_length"], dtype=object)[fmt].astype(float).mean())
              if n_fmt else math.nan)
    return {
        "n_samples": float(n),
        "n_format_valid": float(n_fmt),
        "n_rule_valid": float(n_rule),
        "well_formed_rate": float(np.asarray(rows["well_formed"], dtype=bool).mean()),
        "format_validity": n_fmt / n,
        "rule_validity": n_rule / n,
        "rule_validity_given_format": given_format,
        "chance_given_lengths": chance,
        "rule_validity_above_chance": given_format - chance,
        "distinct_fraction": len(set(texts)) / n,
        "novel_fraction": float((~in_train[rule]).mean()) if n_rule else math.nan,
        "closed_rate": float((stops == "close_tag").mean()),
        "mean_new_tokens": float(np.asarray(rows["n_new_tokens"], dtype=float).mean()),
        "length_tv_distance": total_variation(length_histogram(lengths), length_distribution),
    }


def judged(rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(format_valid, rule_valid, chance_at_length) of judged samples as arrays; the chance
    is NaN where a sample is not format-valid."""
    return (np.asarray(rows["format_valid"], dtype=bool),
            np.asarray(rows["rule_valid"], dtype=bool),
            np.asarray(rows["chance_at_length"], dtype=object).astype(float))


def above_chance(fmt: np.ndarray, rule: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """Rule validity among the format-valid samples minus their mean chance, over the last
    axis, so a matrix of bootstrap resamples gives one value per row (NaN without a
    format-valid sample).

    >>> float(above_chance(np.array([True, True, False]), np.array([True, False, False]),
    ...                    np.array([0.5, 0.1, np.nan])))
    0.2
    """
    n_fmt = fmt.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((rule & fmt).sum(axis=-1) - np.where(fmt, chance, 0.0).sum(axis=-1)) / n_fmt


def above_chance_interval(rows, level: float = stats.LEVEL) -> stats.Interval:
    """`rule_validity_above_chance` with its interval over the format-valid samples: rule
    validity among them minus their mean chance (`stats.proportion_minus_mean`)."""
    fmt, rule, chance = judged(rows)
    return stats.proportion_minus_mean(rule[fmt], chance[fmt], level)


def _within_0_1(interval: stats.Interval) -> stats.Interval:
    """A mean of chances is in [0, 1]; its t interval need not be."""
    low, high = np.clip([interval.low, interval.high], 0.0, 1.0)  # NaN stays NaN
    return dataclasses.replace(interval, low=float(low), high=float(high))


def sample_intervals(rows, level: float = stats.LEVEL) -> dict[str, stats.Interval]:
    """The within-run intervals of the sample rates, each over the samples it counts.

    A rate of some of the samples (rule validity among the format-valid ones, novelty
    among the rule-valid ones) is a proportion given its denominator, so it gets the same
    Agresti-Coull interval as a rate of all of them; a bootstrap would collapse at 0 and 1.
    """
    fmt, rule, chance = judged(rows)
    n = len(fmt)
    well_formed = np.asarray(rows["well_formed"], dtype=bool)
    closed = np.asarray(rows["stop"], dtype=object) == "close_tag"
    novel = ~np.asarray(rows["in_train"], dtype=bool)[rule]
    ac = stats.agresti_coull_interval
    return {
        "well_formed_rate": ac(int(well_formed.sum()), n),
        "format_validity": ac(int(fmt.sum()), n),
        "rule_validity": ac(int(rule.sum()), n),
        "closed_rate": ac(int(closed.sum()), n),
        "rule_validity_given_format": ac(int(rule[fmt].sum()), int(fmt.sum())),
        "novel_fraction": ac(int(novel.sum()), len(novel)),
        "chance_given_lengths": _within_0_1(stats.t_interval(chance[fmt], level)),
        "rule_validity_above_chance": above_chance_interval(rows, level),
    }
