"""Leakage between Nim train and eval sets, and a gate that refuses leaky data.

Measured for each eval set against the training set:

- exact prompt overlap: eval examples whose prompt occurs verbatim in train;
- number-normalised overlap: the same after every digit run becomes ``<N>`` (same template
  and names, different numbers);
- pile overlap: eval examples whose question pile value occurs as a question pile in train
  (a model can memorise the answer of each pile value it trained on, so accuracy on shared
  piles measures recall as much as the rule);
- a names-only classifier: the majority label of each name pair in train, applied to eval
  (unseen pairs get the overall majority), against the majority-class baseline; the gate
  uses the advantage's 95 % lower bound.

And over train: the mutual information between name pair and label, in bits. The plug-in
estimate is biased upward when pairs are many and examples per pair few, so the report also
gives its mean under label shuffles and the excess over that mean, which the gate uses.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from metaexamples.nim.names import label_key

NUMBER_RE = re.compile(r"\d+")
NUMBER_PLACEHOLDER = "<N>"

Row = Mapping[str, Any]


def normalise_numbers(text: str) -> str:
    """`text` with every run of digits replaced by ``<N>``."""
    return NUMBER_RE.sub(NUMBER_PLACEHOLDER, text)


def entropy_bits(values: Sequence[Hashable]) -> float:
    """Plug-in Shannon entropy of the empirical distribution of `values`."""
    n = len(values)
    return -sum(c / n * math.log2(c / n) for c in Counter(values).values()) if n else 0.0


def mutual_information_bits(xs: Sequence[Hashable], ys: Sequence[Hashable]) -> float:
    """Plug-in mutual information I(X; Y) in bits: H(X) + H(Y) - H(X, Y)."""
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length ({len(xs)} vs {len(ys)})")
    joint = list(zip(xs, ys, strict=True))
    return max(0.0, entropy_bits(xs) + entropy_bits(ys) - entropy_bits(joint))


def shuffled_mutual_information_bits(
    xs: Sequence[Hashable], ys: Sequence[Hashable], rng: random.Random, n_permutations: int = 5
) -> float:
    """Mean plug-in MI after shuffling `ys`: the estimator's bias under independence."""
    shuffled = list(ys)
    total = 0.0
    for _ in range(n_permutations):
        rng.shuffle(shuffled)
        total += mutual_information_bits(xs, shuffled)
    return total / n_permutations


def _majority(counter: Counter) -> Hashable:
    """The most frequent value; ties go to the smallest by string order."""
    return min(counter, key=lambda k: (-counter[k], str(k)))


def _pair(row: Row) -> tuple[str, ...] | None:
    names = row.get("names")
    return tuple(names) if names else None


def _label(row: Row) -> str:
    return label_key(row["label_move"])


def names_only_accuracy(train_rows: Sequence[Row], eval_rows: Sequence[Row]) -> dict[str, Any]:
    """Held-out accuracy of predicting the label from the name pair alone.

    Returns ``accuracy``, ``majority_baseline_accuracy`` (the train majority label for every
    example), ``advantage`` (their difference), ``advantage_lower`` (the advantage less 1.96
    standard errors of the paired per-example difference: what the gate checks, so that
    noise on near-uniform labels does not fail clean data) and ``pair_coverage`` (share of
    eval examples whose pair occurs in train); all None when eval is empty.
    """
    by_pair: dict[tuple[str, ...] | None, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for row in train_rows:
        by_pair[_pair(row)][_label(row)] += 1
        overall[_label(row)] += 1
    if not eval_rows or not overall:
        return dict.fromkeys(
            ("accuracy", "majority_baseline_accuracy", "advantage", "advantage_lower",
             "pair_coverage")
        )  # fmt: skip
    default = _majority(overall)
    rule = {pair: _majority(counts) for pair, counts in by_pair.items()}
    hits = baseline = covered = 0
    diffs = []
    for row in eval_rows:
        pair, label = _pair(row), _label(row)
        covered += pair in rule
        hit, base = rule.get(pair, default) == label, default == label
        hits += hit
        baseline += base
        diffs.append(int(hit) - int(base))
    n = len(eval_rows)
    advantage = (hits - baseline) / n
    variance = sum((d - advantage) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return {
        "accuracy": hits / n,
        "majority_baseline_accuracy": baseline / n,
        "advantage": advantage,
        "advantage_lower": advantage - 1.96 * math.sqrt(variance / n),
        "pair_coverage": covered / n,
    }


def overlap(train_keys: set[Hashable], eval_keys: Sequence[Hashable]) -> dict[str, Any]:
    """How many eval keys (with repeats) occur in train, and the share of distinct ones."""
    n = len(eval_keys)
    count = sum(k in train_keys for k in eval_keys)
    distinct = set(eval_keys)
    return {
        "count": count,
        "fraction": count / n if n else 0.0,
        "distinct_fraction": len(distinct & train_keys) / len(distinct) if distinct else 0.0,
    }


def leakage_report(
    train_rows: Sequence[Row],
    eval_rows_by_name: Mapping[str, Sequence[Row]],
    n_permutations: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Every leakage measurement for one experiment (see the module docstring).

    Rows need ``prompt``, ``pile`` and ``label_move``; name measurements use ``names``
    and are None when the rows carry none.
    """
    train_prompts = {r["prompt"] for r in train_rows}
    train_normalised = {normalise_numbers(p) for p in train_prompts}
    train_piles = {r["pile"] for r in train_rows}
    pairs = [_pair(r) for r in train_rows]
    labels = [_label(r) for r in train_rows]
    has_names = any(p is not None for p in pairs)
    mi = shuffled = None
    if has_names:
        mi = mutual_information_bits(pairs, labels)
        rng = random.Random(seed)
        shuffled = shuffled_mutual_information_bits(pairs, labels, rng, n_permutations)
    report: dict[str, Any] = {
        "train": {
            "n": len(train_rows),
            "n_name_pairs": len(set(pairs)) if has_names else None,
            "label_entropy_bits": entropy_bits(labels),
            "name_label_mi_bits": mi,
            "name_label_mi_bits_shuffled": shuffled,
            "name_label_mi_bits_excess": None if mi is None else mi - shuffled,
        },
        "eval": {},
    }
    for name, rows in eval_rows_by_name.items():
        exact = overlap(train_prompts, [r["prompt"] for r in rows])
        normalised = overlap(train_normalised, [normalise_numbers(r["prompt"]) for r in rows])
        piles = overlap(train_piles, [r["pile"] for r in rows])
        names = names_only_accuracy(train_rows, rows) if has_names else {}
        report["eval"][name] = {
            "n": len(rows),
            "exact_overlap_count": exact["count"],
            "exact_overlap_fraction": exact["fraction"],
            "normalised_overlap_count": normalised["count"],
            "normalised_overlap_fraction": normalised["fraction"],
            "pile_overlap_count": piles["count"],
            "pile_overlap_fraction": piles["fraction"],
            "pile_values_overlap_fraction": piles["distinct_fraction"],
            "names_only_accuracy": names.get("accuracy"),
            "majority_baseline_accuracy": names.get("majority_baseline_accuracy"),
            "names_only_advantage": names.get("advantage"),
            "names_only_advantage_lower": names.get("advantage_lower"),
            "name_pair_coverage": names.get("pair_coverage"),
        }
    return report


@dataclass(frozen=True)
class LeakageThresholds:
    """Upper limits the gate enforces; None switches a check off.

    Shortcut experiments (``cheat_fraction > 0``) plant a name-label link on purpose, so
    their configuration switches the two name checks off.
    """

    max_exact_overlap_fraction: float | None = 0.0
    max_normalised_overlap_fraction: float | None = None
    max_pile_overlap_fraction: float | None = None
    max_name_label_mi_bits: float | None = 0.05  # excess over shuffled labels, train
    # over the majority baseline (its 95 % lower bound), each eval set
    max_names_only_advantage: float | None = 0.05
    # Why this experiment's data leak on purpose (a shortcut planted for study): the gate
    # must then fail, and the workflow goes on; None: a failing gate stops the workflow.
    expected_failure: str | None = None

    def __post_init__(self) -> None:
        reason = self.expected_failure
        if reason is not None and not (isinstance(reason, str) and reason.strip()):
            raise ValueError(f"expected_failure: expected a reason (text) or null, got {reason!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name == "expected_failure":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{f.name}: expected a number >= 0 or null, got {value!r}")

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> LeakageThresholds:
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(mapping) - set(allowed))
        if unknown:
            raise ValueError(f"unknown leakage threshold(s) {unknown}; allowed: {allowed}")
        return cls(**mapping)


_EVAL_CHECKS = (
    ("exact_overlap_fraction", "max_exact_overlap_fraction"),
    ("normalised_overlap_fraction", "max_normalised_overlap_fraction"),
    ("pile_overlap_fraction", "max_pile_overlap_fraction"),
    ("names_only_advantage_lower", "max_names_only_advantage"),
)


def leakage_gate(
    report: Mapping[str, Any],
    thresholds: LeakageThresholds | Mapping[str, Any] | None = None,
) -> list[str]:
    """The violations of `thresholds` in `report`, one line each; empty means pass."""
    if thresholds is None:
        thresholds = LeakageThresholds()
    elif not isinstance(thresholds, LeakageThresholds):
        thresholds = LeakageThresholds.from_dict(thresholds)
    violations = []

    def check(where: str, metric: str, value: float | None, limit: float | None) -> None:
        if value is not None and limit is not None and value > limit:
            violations.append(f"{where}: {metric} = {value:.4g} exceeds {limit:g}")

    check(
        "train",
        "name_label_mi_bits_excess",
        report["train"]["name_label_mi_bits_excess"],
        thresholds.max_name_label_mi_bits,
    )
    for name, metrics in report["eval"].items():
        for metric, limit_name in _EVAL_CHECKS:
            check(name, metric, metrics[metric], getattr(thresholds, limit_name))
    return violations
