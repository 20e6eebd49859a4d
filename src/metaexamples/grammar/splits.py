"""Train/val/test assignment by a stable hash of the document text.

Every string, valid or not, belongs to exactly one split, decided by its text alone, so
evaluation strings can never appear in training data, whichever generator produced
them (grammar examples, negatives, or instances quoted inside metaexamples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from metaexamples.grammar.documents import example_text
from metaexamples.io import stable_hash

SPLITS = ("train", "val", "test")
# A negative with a single possible string (the empty string) cannot be split by hash;
# it is shared by the evaluation splits and, being invalid, never a training example.
UNSPLIT_NEGATIVES = ("empty",)


@dataclass(frozen=True)
class SplitRule:
    val_percent: int
    test_percent: int

    def split_of(self, text: str) -> str:
        bucket = stable_hash(text) % 100
        if bucket < self.val_percent:
            return "val"
        if bucket < self.val_percent + self.test_percent:
            return "test"
        return "train"


class SplitGrammar:
    """A grammar whose samples and negatives are restricted to one split.

    Delegates everything else to the wrapped grammar. Rejection sampling keeps the
    within-split distribution proportional to the generator's.
    """

    def __init__(self, grammar: Any, rule: SplitRule, split: str, max_tries: int = 10_000):
        self._grammar = grammar
        self._rule = rule
        self.split = split
        self._max_tries = max_tries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grammar, name)

    def in_split(self, symbols: Sequence[str]) -> bool:
        return self._rule.split_of(example_text(self._grammar.name, symbols)) == self.split

    def sample(self, rng) -> list[str]:
        for _ in range(self._max_tries):
            s = self._grammar.sample(rng)
            if self.in_split(s):
                return s
        raise RuntimeError(
            f"{self._grammar.name}: no {self.split} string in {self._max_tries} draws; "
            "the language is too small for these split percentages"
        )

    def negative(self, kind: str, rng, valid: Sequence[str], foreign: Sequence[str] = ()):
        if kind in UNSPLIT_NEGATIVES:
            return self._grammar.negative(kind, rng, valid, foreign)
        for _ in range(20):
            neg = self._grammar.negative(kind, rng, valid, foreign)
            if neg is None or self.in_split(neg):
                return neg
        return None
