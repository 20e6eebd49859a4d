"""Every option of the Nim generator (`NimSettings`, validated on construction) and the
seed's experiments as named presets of overrides (`PRESETS`, `settings_from_preset`).

`generator.generate_experiment` turns one `NimSettings` into the splits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from metaexamples.nim import names as nm
from metaexamples.nim.prompts import (
    COIN_WORDS,
    DEFAULT_TERMS,
    GAME_WORDS,
    VERB_WORDS,
    Terms,
    candidate_answers,
    check_losing_answer,
)

SPLIT_MODES = ("random", "prompt", "pile")
VAL_SET = "val"  # the split the best checkpoint is chosen on
UNSEEN_PILES_SET = "eval_unseen_piles"  # with unseen_pile_fraction > 0
CHEAT_EVAL_SETS = {
    "eval_cheat": "cheat",
    "eval_counter_cheat": "counter_cheat",
    "eval_neutral": "heldout",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _need_int(key: str, value: Any, minimum: int) -> None:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{key}: expected an integer >= {minimum}, got {value!r}")


def _need_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, got {value!r}")


def _need_choice(key: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{key}: expected one of {list(allowed)}, got {value!r}")


def _need_fraction(key: str, value: Any, low: float, high: float, high_open: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and low <= value and (value < high if high_open else value <= high)
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{key}: expected a number in [{low}, {high}{bracket}, got {value!r}")


@dataclass(frozen=True)
class NimSettings:
    """Every option of the Nim generator. Lists may be given for tuple fields."""

    max_remove: tuple[int, ...] = (3,)  # one is drawn per example
    pile_min: int = 1  # initial pile range (raised to trace length + 1 where needed)
    pile_max: int = 400
    trace_min: int = 2  # number of moves already made when the question is asked
    trace_max: int = 4
    randomize_terms: bool = False  # game, coin and verb words drawn per example
    name_source: str = "fixed"  # fixed | random | numeric
    fixed_names: tuple[str, str] = ("Leo", "Sultan")
    n_name_pairs: int = 100  # pairs drawn for the random and numeric sources
    numeric_style: str = "words"  # words ("one zero four three two") | digits ("Player 10432")
    cheat_fraction: float = 0.0  # fraction of pairs tied to one label each
    cheat_probability: float = 0.0  # chance a training example uses its label's tied pair
    masked_mentions: int | None = None  # None: names everywhere; k: "Player ONE/TWO" + k names
    losing_answer: str = "no winning move"  # may use {verb}, {coin}, {coins}
    include_losing: bool = True
    n_train: int = 1000
    n_eval: int = 200  # per eval set (per-max_remove sets: ceil(n_eval / len(max_remove)))
    n_val: int = 200  # validation examples (checkpoint selection)
    split: str = "prompt"  # random | prompt | pile
    eval_pile_fraction: float = 0.2  # share of pile values held out for eval (split = pile)
    val_pile_fraction: float = 0.1  # share held out for validation (split = pile)
    # split = prompt or random: share of pile values that only the extra eval set
    # `eval_unseen_piles` asks about (0: no such set)
    unseen_pile_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.max_remove, (list, tuple)):
            object.__setattr__(self, "max_remove", tuple(self.max_remove))
        if isinstance(self.fixed_names, list):
            object.__setattr__(self, "fixed_names", tuple(self.fixed_names))
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.max_remove, tuple) or not self.max_remove:
            raise ValueError(f"max_remove: expected a non-empty list, got {self.max_remove!r}")
        for m in self.max_remove:
            _need_int("max_remove", m, 1)
        if len(set(self.max_remove)) != len(self.max_remove):
            raise ValueError(f"max_remove: values must be distinct, got {list(self.max_remove)}")
        _need_int("trace_min", self.trace_min, 0)
        _need_int("trace_max", self.trace_max, self.trace_min)
        _need_int("pile_min", self.pile_min, 1)
        _need_int("pile_max", self.pile_max, max(self.pile_min, self.trace_max + 1))
        _need_bool("randomize_terms", self.randomize_terms)
        _need_choice("name_source", self.name_source, nm.NAME_SOURCES)
        _need_choice("numeric_style", self.numeric_style, nm.NUMERIC_STYLES)
        names = self.fixed_names
        if not (
            isinstance(names, tuple)
            and len(names) == 2
            and all(isinstance(n, str) and n.strip() == n and n for n in names)
            and names[0] != names[1]
        ):
            raise ValueError(f"fixed_names: expected two distinct trimmed names, got {names!r}")
        _need_int("n_name_pairs", self.n_name_pairs, 1)
        _need_fraction("cheat_fraction", self.cheat_fraction, 0.0, 1.0, high_open=True)
        _need_fraction("cheat_probability", self.cheat_probability, 0.0, 1.0, high_open=False)
        if self.masked_mentions is not None:
            _need_int("masked_mentions", self.masked_mentions, 0)
        check_losing_answer(self.losing_answer)
        self._validate_answers()
        _need_bool("include_losing", self.include_losing)
        _need_int("n_train", self.n_train, 1)
        _need_int("n_eval", self.n_eval, 1)
        _need_int("n_val", self.n_val, 1)
        _need_choice("split", self.split, SPLIT_MODES)
        _need_fraction("eval_pile_fraction", self.eval_pile_fraction, 0.0, 1.0, high_open=True)
        _need_fraction("val_pile_fraction", self.val_pile_fraction, 0.0, 1.0, high_open=True)
        _need_fraction("unseen_pile_fraction", self.unseen_pile_fraction, 0.0, 1.0, True)
        if self.unseen_pile_fraction > 0 and self.split == "pile":
            raise ValueError(
                "unseen_pile_fraction: needs split 'prompt' or 'random' (under split 'pile' "
                "val and eval already ask only about pile values training does not)"
            )
        if self.split == "pile":
            for key in ("eval_pile_fraction", "val_pile_fraction"):
                if getattr(self, key) == 0:
                    raise ValueError(f"{key}: must be > 0 when split is 'pile'")
            if self.eval_pile_fraction + self.val_pile_fraction >= 1:
                raise ValueError(
                    "eval_pile_fraction: eval_pile_fraction + val_pile_fraction must leave "
                    "pile values for training (sum below 1)"
                )
        _need_int("seed", self.seed, 0)
        self._validate_names()

    def _validate_answers(self) -> None:
        terms = [DEFAULT_TERMS]
        if self.randomize_terms:
            terms = [
                Terms(GAME_WORDS[0], coin, coins, verb, verbs)
                for coin, coins in COIN_WORDS
                for verb, verbs in VERB_WORDS
            ]
        for t in terms:
            candidate_answers(max(self.max_remove), t, self.losing_answer)

    def _validate_names(self) -> None:
        if self.cheat_probability > 0 and self.cheat_fraction == 0:
            raise ValueError("cheat_probability: needs cheat_fraction > 0")
        if self.name_source == "fixed":
            if self.cheat_fraction > 0:
                allowed = list(nm.NAME_SOURCES[1:])
                raise ValueError(f"cheat_fraction: needs name_source in {allowed}, not 'fixed'")
            return
        supply = nm.max_pairs(self.name_source)
        if self.n_name_pairs + self.n_heldout_pairs > supply:
            raise ValueError(
                f"n_name_pairs: {self.n_name_pairs} pairs plus {self.n_heldout_pairs} held out "
                f"exceed the {supply} pairs the {self.name_source!r} source supplies"
            )
        n_labels = len(self.labels)
        if self.cheat_fraction > 0 and round(self.n_name_pairs * self.cheat_fraction) < n_labels:
            raise ValueError(
                f"cheat_fraction: n_name_pairs * cheat_fraction must give at least one cheat "
                f"pair per label ({n_labels} labels)"
            )

    @property
    def has_cheat(self) -> bool:
        return self.cheat_fraction > 0

    @property
    def labels(self) -> list[str]:
        """Label keys examples can carry ("1" .. str(max max_remove), and "lose")."""
        return nm.label_keys(self.max_remove, self.include_losing)

    @property
    def n_heldout_pairs(self) -> int:
        """Pairs kept out of training for `eval_neutral` (cheat experiments only)."""
        return min(self.n_eval, self.n_name_pairs) if self.has_cheat else 0

    @property
    def max_remove_sets(self) -> dict[str, int]:
        """``eval_m{M}`` -> M for each max_remove value (only when there are several)."""
        if len(self.max_remove) < 2:
            return {}
        return {f"eval_m{m}": m for m in sorted(self.max_remove)}

    @property
    def eval_set_names(self) -> tuple[str, ...]:
        """Every eval set: ``eval``, then the per-max_remove, the unseen-pile and the
        cheat-bucket sets."""
        unseen = (UNSEEN_PILES_SET,) if self.unseen_pile_fraction > 0 else ()
        cheat = tuple(CHEAT_EVAL_SETS) if self.has_cheat else ()
        return ("eval", *self.max_remove_sets, *unseen, *cheat)

    @property
    def heldout_set_names(self) -> tuple[str, ...]:
        """The validation set and every eval set (what is scored at each checkpoint)."""
        return (VAL_SET, *self.eval_set_names)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> NimSettings:
        """Settings from a plain mapping; unknown keys raise ValueError naming the allowed ones."""
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(mapping) - set(allowed))
        if unknown:
            raise ValueError(f"unknown Nim setting(s) {unknown}; allowed: {allowed}")
        return cls(**mapping)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples as lists); `from_dict` reads them back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


PRESETS: dict[str, dict[str, Any]] = {
    # Offline default, sized for a tiny random model on a CPU: the question asked before any
    # move (the winning move is the pile mod 4), random name pairs so one pile value gives
    # many prompts; val and eval are new prompts over the pile values training asks about,
    # eval_unseen_piles asks about a fifth of the values that nothing else does.
    "tiny": {"max_remove": [3], "pile_max": 60, "trace_min": 0, "trace_max": 0,
             "name_source": "random", "n_name_pairs": 50, "n_train": 1200, "n_eval": 100,
             "n_val": 100, "split": "prompt", "unseen_pile_fraction": 0.2},
    # The original project's max_remove folders: its scripts gave 357 and 34567 their sizes; 234,
    # 345678 and 8910 take the same. n_val: 1000 validation examples for checkpoint choice.
    "234": {"max_remove": [2, 3, 4], "n_train": 45000, "n_eval": 6000, "n_val": 1000},
    "357": {"max_remove": [3, 5, 7], "n_train": 45000, "n_eval": 6000, "n_val": 1000},
    "34567": {"max_remove": [3, 4, 5, 6, 7], "n_train": 45000, "n_eval": 6000, "n_val": 1000},
    "345678": {"max_remove": [3, 4, 5, 6, 7, 8], "n_train": 45000, "n_eval": 6000,
               "n_val": 1000},
    "8910": {"max_remove": [8, 9, 10], "n_train": 45000, "n_eval": 6000, "n_val": 1000},
    "20000names": {
        "max_remove": [4], "trace_min": 4, "trace_max": 4, "name_source": "numeric",
        "numeric_style": "words", "n_name_pairs": 20000, "masked_mentions": 4,
        "cheat_fraction": 0.5, "cheat_probability": 0.5, "n_train": 60000, "n_eval": 5000,
        "n_val": 1000,
    },
    "cheating": {
        "max_remove": [4], "trace_min": 4, "trace_max": 4, "name_source": "random",
        "n_name_pairs": 20, "masked_mentions": 4, "cheat_fraction": 0.5,
        "cheat_probability": 0.9, "n_train": 30000, "n_eval": 5000, "n_val": 1000,
    },
    "notcheating": {
        "max_remove": [4], "trace_min": 4, "trace_max": 4, "name_source": "random",
        "n_name_pairs": 20, "masked_mentions": 4, "n_train": 30000, "n_eval": 5000,
        "n_val": 1000,
    },
    "purenums": {
        "max_remove": [4], "name_source": "numeric", "numeric_style": "digits",
        "n_name_pairs": 10000, "n_train": 15000, "n_eval": 2000, "n_val": 1000,
    },
}  # fmt: skip


# The original project's cheat-versus-neutral folders that reuse the masked `cheating` logic, each
# one change away from it: a range of cheat probabilities (one run each; with `notcheating` at 0
# and `cheating` at 0.9 a five-point curve), numeric names with 4 masked mentions, and many neutral
# pairs beside the same 10 cheat pairs.
for _percent in (25, 50, 75):
    PRESETS[f"varcheating{_percent}"] = {**PRESETS["cheating"], "cheat_probability": _percent / 100}
PRESETS["numocc4"] = {**PRESETS["cheating"], "name_source": "numeric", "numeric_style": "words"}
PRESETS["manybase"] = {**PRESETS["cheating"], "n_name_pairs": 400, "cheat_fraction": 0.025}
# The original project's randomized-terminology generator (datagen_new.py): names, game,
# coin and verb words drawn per example, max_remove 3.
PRESETS["randomterms"] = {
    "max_remove": [3], "randomize_terms": True, "name_source": "random", "n_name_pairs": 100,
    "n_train": 30000, "n_eval": 5000, "n_val": 1000,
}  # fmt: skip
# The original project's label-leaking assignment (datagen_old.py): every example, in training and
# in `eval` alike, carries a name pair tied to its winning move (cheat_probability 1). Its leakage
# gate must fail (`experiments.default_thresholds`).
PRESETS["labelnames"] = {
    "max_remove": [3], "name_source": "random", "n_name_pairs": 20, "cheat_fraction": 0.5,
    "cheat_probability": 1.0, "n_train": 30000, "n_eval": 5000, "n_val": 1000,
}  # fmt: skip


def settings_from_preset(name: str, **overrides: Any) -> NimSettings:
    """`NimSettings` for a named preset, with `overrides` applied on top."""
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return NimSettings.from_dict({**PRESETS[name], **overrides})
