"""Player names: where they come from, and which name pairs are tied to labels.

A *name pair* is the two players of one example. Three sources:

- ``fixed``: one pair for every example (by default Leo and Sultan).
- ``random``: pairs of distinct first names drawn from `BUILTIN_NAMES`.
- ``numeric``: pairs of distinct five-digit numbers, written as digit words
  (``"one zero four three two"``) or as ``"Player 10432"``; enough for 20,000 pairs.

For shortcut ("cheat") experiments a fraction of the pairs is tied to one label each, in
turn over the labels, so a cheat pair always appears with the same answer; the rest are
neutral. Held-out pairs never occur in training and serve the neutral evaluation set::

    >>> import random
    >>> plan = plan_names("numeric", 10, 2, 0.5, ["1", "2", "lose"], random.Random(0))
    >>> len(plan.neutral), len(plan.heldout), sorted(plan.cheat_by_label)
    (5, 2, ['1', '2', 'lose'])
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import permutations

NamePair = tuple[str, str]

NAME_SOURCES = ("fixed", "random", "numeric")
NUMERIC_STYLES = ("words", "digits")
PICK_MODES = ("mixed", "cheat", "counter_cheat", "heldout")
LOSE_KEY = "lose"
NUMERIC_SPACE = 100_000  # five-digit numbers 00000 .. 99999

BUILTIN_NAMES = (
    "Alice", "Bob", "Carol", "Daniel", "Eve", "Frank", "Grace", "Heidi",
    "Ivan", "Judy", "Karim", "Laura", "Mallory", "Nadia", "Oscar", "Peggy",
    "Quentin", "Rupert", "Sybil", "Trent", "Ursula", "Victor", "Wendy", "Xavier",
    "Yasmin", "Zoe", "Amara", "Bruno", "Chloe", "Dmitri", "Elena", "Farid",
    "Greta", "Hugo", "Ines", "Jonas", "Keiko", "Liam", "Marta", "Nikhil",
    "Olga", "Pablo", "Rosa", "Sven", "Tariq", "Uma", "Vera", "Wei",
    "Ximena", "Yusuf", "Zainab", "Anton", "Bianca", "Cyrus", "Dalia", "Emil",
    "Fiona", "Goran", "Hana", "Igor", "Jana", "Kofi", "Lena", "Milo",
)  # fmt: skip

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def label_key(label_move: int | None) -> str:
    """The string key of a label: the winning move, or ``"lose"`` for a losing position."""
    return LOSE_KEY if label_move is None else str(label_move)


def label_keys(max_removes: Sequence[int], include_losing: bool = True) -> list[str]:
    """Every label key that examples with these max_remove values can carry, in order."""
    keys = [str(move) for move in range(1, max(max_removes) + 1)]
    return keys + [LOSE_KEY] if include_losing else keys


def numeric_name(number: int, style: str) -> str:
    """A player name made from a five-digit number."""
    digits = f"{number:05d}"
    if style == "words":
        return " ".join(DIGIT_WORDS[int(c)] for c in digits)
    if style == "digits":
        return f"Player {digits}"
    raise ValueError(f"numeric_style: expected one of {NUMERIC_STYLES}, got {style!r}")


def max_pairs(source: str) -> int:
    """How many distinct pairs a source can supply."""
    if source == "fixed":
        return 1
    if source == "random":
        return len(BUILTIN_NAMES) * (len(BUILTIN_NAMES) - 1)
    if source == "numeric":
        return NUMERIC_SPACE // 2
    raise ValueError(f"name_source: expected one of {NAME_SOURCES}, got {source!r}")


def draw_pairs(
    source: str,
    n_pairs: int,
    rng: random.Random,
    fixed: NamePair = ("Leo", "Sultan"),
    numeric_style: str = "words",
) -> list[NamePair]:
    """`n_pairs` distinct name pairs from `source` (``fixed`` gives its one pair)."""
    if n_pairs > max_pairs(source):
        raise ValueError(f"n_name_pairs: {source!r} names supply at most {max_pairs(source)}")
    if source == "fixed":
        return [tuple(fixed)]  # type: ignore[list-item]
    if source == "random":
        return rng.sample(list(permutations(BUILTIN_NAMES, 2)), n_pairs)
    numbers = rng.sample(range(NUMERIC_SPACE), 2 * n_pairs)
    names = [numeric_name(k, numeric_style) for k in numbers]
    return [(names[2 * i], names[2 * i + 1]) for i in range(n_pairs)]


@dataclass(frozen=True)
class NamePlan:
    """Which pairs are cheat pairs (and for which label), neutral, or held out."""

    cheat_by_label: Mapping[str, tuple[NamePair, ...]]
    neutral: tuple[NamePair, ...]
    heldout: tuple[NamePair, ...] = ()
    _label_of: Mapping[NamePair, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        label_of = {pair: key for key, pairs in self.cheat_by_label.items() for pair in pairs}
        object.__setattr__(self, "_label_of", label_of)

    @property
    def has_cheat(self) -> bool:
        return any(self.cheat_by_label.values())

    def cheat_label(self, pair: Sequence[str]) -> str | None:
        """The label a cheat pair is tied to, or None for any other pair."""
        return self._label_of.get(tuple(pair))  # type: ignore[arg-type]

    def manifest(self) -> dict[str, object]:
        def listed(pairs: Sequence[NamePair]) -> list[list[str]]:
            return [list(p) for p in pairs]

        return {
            "cheat_by_label": {k: listed(v) for k, v in sorted(self.cheat_by_label.items())},
            "neutral": listed(self.neutral),
            "heldout": listed(self.heldout),
        }


def plan_names(
    source: str,
    n_pairs: int,
    n_heldout: int,
    cheat_fraction: float,
    labels: Sequence[str],
    rng: random.Random,
    fixed: NamePair = ("Leo", "Sultan"),
    numeric_style: str = "words",
) -> NamePlan:
    """Draw the pairs and split them into cheat (round-robin over `labels`), neutral, held out."""
    if source == "fixed":
        return NamePlan(cheat_by_label={}, neutral=(tuple(fixed),))  # type: ignore[arg-type]
    pairs = draw_pairs(source, n_pairs + n_heldout, rng, fixed, numeric_style)
    pool, heldout = pairs[:n_pairs], pairs[n_pairs:]
    n_cheat = round(n_pairs * cheat_fraction)
    cheat, neutral = pool[:n_cheat], pool[n_cheat:]
    by_label: dict[str, list[NamePair]] = {key: [] for key in labels} if n_cheat else {}
    for i, pair in enumerate(cheat):
        by_label[labels[i % len(labels)]].append(pair)
    return NamePlan(
        cheat_by_label={k: tuple(v) for k, v in by_label.items()},
        neutral=tuple(neutral),
        heldout=tuple(heldout),
    )


def choose_pair(
    plan: NamePlan, label: str, mode: str, rng: random.Random, cheat_probability: float = 0.0
) -> tuple[NamePair, str | None]:
    """A name pair for an example with `label`, and its bucket.

    Modes: ``mixed`` (the training distribution: a pair tied to `label` with probability
    `cheat_probability`, else a neutral pair), ``cheat`` (always the tied pair),
    ``counter_cheat`` (a pair tied to another label), ``heldout`` (a pair never trained on).
    The bucket is None when the plan has no cheat pairs.
    """
    if mode not in PICK_MODES:
        raise ValueError(f"mode: expected one of {PICK_MODES}, got {mode!r}")
    if not plan.has_cheat:
        if mode != "mixed":
            raise ValueError(f"mode {mode!r} needs cheat pairs (cheat_fraction > 0)")
        return rng.choice(plan.neutral), None
    if mode == "heldout":
        return rng.choice(plan.heldout), "neutral"
    tied = plan.cheat_by_label.get(label, ())
    if mode == "counter_cheat":
        others = [k for k, pairs in sorted(plan.cheat_by_label.items()) if k != label and pairs]
        return rng.choice(plan.cheat_by_label[rng.choice(others)]), "counter_cheat"
    if mode == "cheat":
        if not tied:
            raise ValueError(f"no cheat pair is tied to label {label!r}")
        return rng.choice(tied), "cheat"
    if tied and rng.random() < cheat_probability:
        return rng.choice(tied), "cheat"
    return rng.choice(plan.neutral), "neutral"
