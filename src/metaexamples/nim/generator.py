"""One parametric generator for every Nim experiment (it replaces the seed's six scripts).

`NimSettings` holds every option; `PRESETS` names the seed's experiments as plain dicts of
overrides; `generate_experiment` returns the splits and `write_experiment` writes them::

    data/nim/{experiment}/train.jsonl, val.jsonl, eval.jsonl[, eval_m{M}.jsonl ...]
                          [, eval_cheat.jsonl, eval_counter_cheat.jsonl, eval_neutral.jsonl],
                          manifest.json

Each row carries the structured game state beside the text, so tools check labels without
parsing prose: ``id, split, prompt, answer, max_remove, initial_pile, moves, pile,
label_move, names, bucket, candidates`` (see `ROW_KEYS`). ``label_move`` is the winning
move or null for a losing position; ``candidates`` lists the max_remove + 1 answers of that
example's terminology (take 1 .. take max_remove, then the losing answer), in the order
`metrics.candidate_index` uses.

``val`` is the validation set the best checkpoint is chosen on: held out like the eval sets
and disjoint from every one of them, so no eval example takes part in the choice.

Splits (``split``):

- ``random``: train and the held-out sets are drawn independently (overlap with train is
  possible and reported); val prompts never occur in an eval set.
- ``prompt``: no val or eval prompt occurs in train; val and eval prompts are all distinct.
- ``pile``: the pile values 1 .. pile_max are partitioned three ways by a seeded hash,
  stratified by residue class (`pile_partition`); eval examples ask only about eval piles,
  val examples only about val piles, train examples about neither; prompts are distinct.

With several max_remove values each also gets its own eval set, ``eval_m{M}`` (the seed's
per-max_remove eval files), of ceil(n_eval / number of values) examples. With
``cheat_fraction > 0`` three more eval sets are written: ``eval_cheat`` (every pair tied to
the example's label), ``eval_counter_cheat`` (pairs tied to another label) and
``eval_neutral`` (pairs never seen in training). Every set obeys the same split rule.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from metaexamples.io import stable_hash, write_json, write_jsonl
from metaexamples.nim import names as nm
from metaexamples.nim.prompts import (
    COIN_WORDS,
    DEFAULT_TERMS,
    GAME_WORDS,
    VERB_WORDS,
    Terms,
    answer_text,
    candidate_answers,
    check_losing_answer,
    random_terms,
    render_prompt,
)
from metaexamples.nim.seam import check_seam
from metaexamples.nim.solver import winning_move

__all__ = [
    "CHEAT_EVAL_SETS",
    "PRESETS",
    "ROW_KEYS",
    "SPLIT_MODES",
    "VAL_SET",
    "Game",
    "NimSettings",
    "check_seam",
    "eval_pile_values",
    "pile_partition",
    "pile_strata_modulus",
    "generate_experiment",
    "sample_game",
    "settings_from_preset",
    "summarise_rows",
    "write_experiment",
]

log = logging.getLogger(__name__)

SPLIT_MODES = ("random", "prompt", "pile")
VAL_SET = "val"
CHEAT_EVAL_SETS = {
    "eval_cheat": "cheat",
    "eval_counter_cheat": "counter_cheat",
    "eval_neutral": "heldout",
}
ROW_KEYS = (
    "id", "split", "prompt", "answer", "max_remove", "initial_pile", "moves", "pile",
    "label_move", "names", "bucket", "candidates",
)  # fmt: skip
MANIFEST_NAME = "manifest.json"


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
        """Every eval set: ``eval``, then the per-max_remove and the cheat-bucket sets."""
        cheat = tuple(CHEAT_EVAL_SETS) if self.has_cheat else ()
        return ("eval", *self.max_remove_sets, *cheat)

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
    # Offline default: a few hundred examples, one max_remove, fixed names, pile-disjoint.
    "tiny": {"max_remove": [3], "pile_max": 60, "n_train": 400, "n_eval": 100, "n_val": 100,
             "split": "pile"},
    # Seed folders (counts as in the seed scripts).
    # The seed's max_remove folders. The seed's scripts gave 357 and 34567 their sizes; 234,
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


def settings_from_preset(name: str, **overrides: Any) -> NimSettings:
    """`NimSettings` for a named preset, with `overrides` applied on top."""
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return NimSettings.from_dict({**PRESETS[name], **overrides})


@dataclass(frozen=True)
class Game:
    """One position: the moves made so far from `initial_pile` and the label."""

    max_remove: int
    initial_pile: int
    moves: tuple[int, ...]
    pile: int
    label_move: int | None


def sample_game(rng: random.Random, settings: NimSettings) -> Game:
    """A random legal trace; every move takes 1 .. max_remove and leaves at least one coin."""
    m = rng.choice(settings.max_remove)
    n_moves = rng.randint(settings.trace_min, settings.trace_max)
    pile = initial = rng.randint(max(settings.pile_min, n_moves + 1), settings.pile_max)
    moves = []
    for i in range(n_moves):
        still_to_come = n_moves - i - 1
        amount = rng.randint(1, min(m, pile - still_to_come - 1))
        moves.append(amount)
        pile -= amount
    return Game(m, initial, tuple(moves), pile, winning_move(pile, m))


def pile_strata_modulus(settings: NimSettings) -> int:
    """The modulus whose residue classes the pile partition is stratified over.

    The least common multiple of every ``max_remove + 1`` when each class still holds at
    least three pile values (then every label of every max_remove keeps its share in train,
    val and eval); otherwise ``max(max_remove) + 1``.
    """
    lcm = math.lcm(*(m + 1 for m in settings.max_remove))
    return lcm if 3 * lcm <= settings.pile_max else max(settings.max_remove) + 1


def pile_partition(settings: NimSettings) -> tuple[frozenset[int], frozenset[int]]:
    """The pile values reserved for (eval, val) under ``split = "pile"``.

    Within each residue class of `pile_strata_modulus`, values are ranked by a seeded hash:
    the first ``round(eval_pile_fraction * size)`` go to eval and the next
    ``round(val_pile_fraction * size)`` to val. A class of two or more values gives eval at
    least one, a class of three or more gives val at least one, and training always keeps
    one, so the label mix stays balanced in every part.
    """
    modulus = pile_strata_modulus(settings)
    evals: set[int] = set()
    vals: set[int] = set()
    for residue in range(modulus):
        values = range(residue or modulus, settings.pile_max + 1, modulus)
        ranked = sorted(values, key=lambda p: stable_hash(f"nim-pile/{settings.seed}/{p}"))
        n = len(ranked)
        k_eval = round(settings.eval_pile_fraction * n)
        k_val = round(settings.val_pile_fraction * n)
        if n >= 2:
            k_eval = min(max(k_eval, 1), n - 1)
        k_val = min(max(k_val, 1), n - 1 - k_eval) if n >= 3 else 0
        evals.update(ranked[:k_eval])
        vals.update(ranked[k_eval : k_eval + k_val])
    return frozenset(evals), frozenset(vals)


def eval_pile_values(settings: NimSettings) -> frozenset[int]:
    """The pile values reserved for evaluation under ``split = "pile"`` (`pile_partition`)."""
    return pile_partition(settings)[0]


def _make_row(
    game: Game, rng: random.Random, settings: NimSettings, plan: nm.NamePlan, mode: str
) -> dict[str, Any]:
    terms = random_terms(rng) if settings.randomize_terms else DEFAULT_TERMS
    label = nm.label_key(game.label_move)
    pair, bucket = nm.choose_pair(plan, label, mode, rng, settings.cheat_probability)
    masked = None
    if settings.masked_mentions is not None:
        k = min(settings.masked_mentions, len(game.moves))
        masked = frozenset(rng.sample(range(len(game.moves)), k))
    prompt = render_prompt(game.initial_pile, game.moves, game.max_remove, pair, terms, masked)
    return {
        "prompt": prompt,
        "answer": answer_text(game.label_move, terms, settings.losing_answer),
        "max_remove": game.max_remove,
        "initial_pile": game.initial_pile,
        "moves": list(game.moves),
        "pile": game.pile,
        "label_move": game.label_move,
        "names": list(pair),
        "bucket": bucket,
        "candidates": candidate_answers(game.max_remove, terms, settings.losing_answer),
    }


@dataclass(frozen=True)
class _SetRule:
    """What one set may contain: its pile values (None: any) and its game settings."""

    piles: frozenset[int] | None
    excluded_piles: frozenset[int]
    game: NimSettings


def _set_rule(
    split: str, settings: NimSettings, partition: tuple[frozenset[int], frozenset[int]]
) -> _SetRule:
    evals, vals = partition
    only = settings.max_remove_sets.get(split)
    game = replace(settings, max_remove=(only,)) if only is not None else settings
    if settings.split != "pile":
        return _SetRule(None, frozenset(), game)
    if split == "train":
        return _SetRule(None, evals | vals, game)
    return _SetRule(vals if split == VAL_SET else evals, frozenset(), game)


def _prompt_taken(split: str, prompt: str, settings: NimSettings, seen: dict[str, set]) -> bool:
    """Whether `prompt` may not join `split`: held-out sets never share a prompt with each
    other (val and eval are disjoint in every mode) nor, unless the split is random, with
    train."""
    if split == "train":
        return False
    if settings.split != "random" and prompt in seen["train"]:
        return True
    return prompt in seen[VAL_SET] or prompt in seen["eval"]


def _fill(
    split: str,
    mode: str,
    n: int,
    settings: NimSettings,
    plan: nm.NamePlan,
    rule: _SetRule,
    seen: dict[str, set[str]],
) -> list[dict[str, Any]]:
    """Draw examples until `n` satisfy the split rule; `seen` holds the prompts so far."""
    rng = random.Random(stable_hash(f"nim/{settings.seed}/{split}"))
    group = split if split in ("train", VAL_SET) else "eval"
    rows: list[dict[str, Any]] = []
    limit = 200 * n + 10_000
    attempts = 0
    with tqdm(total=n, desc=f"nim {split}", disable=None, leave=False) as bar:
        while len(rows) < n:
            attempts += 1
            if attempts > limit:
                raise ValueError(
                    f"split: could only make {len(rows)} of {n} {split} examples under "
                    f"split={settings.split!r} in {limit} draws; widen pile_min..pile_max or "
                    "trace_min..trace_max, or ask for fewer examples"
                )
            game = sample_game(rng, rule.game)
            if game.label_move is None and not settings.include_losing:
                continue
            if game.pile in rule.excluded_piles or (
                rule.piles is not None and game.pile not in rule.piles
            ):
                continue
            row = _make_row(game, rng, settings, plan, mode)
            if _prompt_taken(split, row["prompt"], settings, seen):
                continue
            seen[group].add(row["prompt"])
            rows.append({"id": f"{split}-{len(rows):06d}", "split": split, **row})
            bar.update()
    return rows


def _check_rows(tokenizer: Any, split: str, rows: Sequence[Mapping[str, Any]]) -> None:
    for row in tqdm(rows, desc=f"seam {split}", disable=None, leave=False):
        check_seam(tokenizer, row["prompt"], row["answer"], example=f"{split} {row['id']}")


def _set_size(split: str, settings: NimSettings) -> int:
    if split == "train":
        return settings.n_train
    if split == VAL_SET:
        return settings.n_val
    if split in settings.max_remove_sets:
        return math.ceil(settings.n_eval / len(settings.max_remove))
    return settings.n_eval


def _generate(
    settings: NimSettings, tokenizer: Any = None
) -> tuple[dict[str, list[dict[str, Any]]], nm.NamePlan, tuple[frozenset[int], frozenset[int]]]:
    plan = nm.plan_names(
        settings.name_source,
        settings.n_name_pairs,
        settings.n_heldout_pairs,
        settings.cheat_fraction,
        settings.labels,
        random.Random(stable_hash(f"nim/{settings.seed}/names")),
        settings.fixed_names,
        settings.numeric_style,
    )
    partition: tuple[frozenset[int], frozenset[int]] = (frozenset(), frozenset())
    if settings.split == "pile":
        partition = pile_partition(settings)
        if not all(partition):
            raise ValueError(
                "eval_pile_fraction: no pile value in 1..pile_max fell in the eval or the val "
                "partition; raise eval_pile_fraction, val_pile_fraction or pile_max"
            )
    seen: dict[str, set[str]] = {"train": set(), VAL_SET: set(), "eval": set()}
    modes = {"train": "mixed", VAL_SET: "mixed", "eval": "mixed"}
    modes.update(dict.fromkeys(settings.max_remove_sets, "mixed"))
    if settings.has_cheat:
        modes.update(CHEAT_EVAL_SETS)
    splits = {}
    for split, mode in modes.items():
        n = _set_size(split, settings)
        rule = _set_rule(split, settings, partition)
        splits[split] = _fill(split, mode, n, settings, plan, rule, seen)
        if tokenizer is not None:
            _check_rows(tokenizer, split, splits[split])
        log.info("nim %s: %d examples", split, n)
    return splits, plan, partition


def generate_experiment(
    settings: NimSettings, tokenizer: Any = None
) -> dict[str, list[dict[str, Any]]]:
    """The splits of one experiment: ``train``, ``val``, then every eval set
    (`NimSettings.eval_set_names`).

    With a tokenizer (a `tokenizers.Tokenizer` or a Hugging Face fast tokenizer) every
    example's seam is checked (`check_seam`); a bad one raises ValueError naming it.
    """
    return _generate(settings, tokenizer)[0]


def summarise_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of one split: examples, labels, buckets, max_remove values, distinct prompts."""

    def counts(values: Any) -> dict[str, int]:
        return dict(sorted(Counter(values).items()))

    return {
        "n": len(rows),
        "labels": counts(nm.label_key(r["label_move"]) for r in rows),
        "buckets": counts(str(r.get("bucket")) for r in rows),
        "max_remove": counts(str(r["max_remove"]) for r in rows),
        "distinct_prompts": len({r["prompt"] for r in rows}),
    }


def write_experiment(
    settings: NimSettings, out_dir: str | os.PathLike[str], tokenizer: Any = None
) -> dict[str, Any]:
    """Write ``{split}.jsonl`` for every split and ``manifest.json`` last; return the manifest."""
    splits, plan, (eval_piles, val_piles) = _generate(settings, tokenizer)
    out = Path(out_dir)
    for split, rows in splits.items():
        write_jsonl(out / f"{split}.jsonl", rows)
    manifest = {
        "family": "nim",
        "settings": settings.to_dict(),
        "splits": {
            split: {"file": f"{split}.jsonl", **summarise_rows(rows)}
            for split, rows in splits.items()
        },
        "names": plan.manifest(),
        "eval_piles": sorted(eval_piles) if settings.split == "pile" else None,
        "val_piles": sorted(val_piles) if settings.split == "pile" else None,
        "seam_checked": tokenizer is not None,
    }
    write_json(out / MANIFEST_NAME, manifest)
    log.info("wrote Nim experiment to %s", out)
    return manifest
