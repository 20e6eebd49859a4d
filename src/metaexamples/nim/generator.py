"""One parametric generator for every Nim experiment (it replaces the original project's
six scripts).

`settings.NimSettings` holds every option and `settings.PRESETS` names the original project's
experiments; `generate_experiment` returns the splits and `write_experiment` writes them::

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

With ``unseen_pile_fraction > 0`` (prompt or random split) a stratified share of the pile
values is reserved for one more eval set, ``eval_unseen_piles``: no other set asks about
them, so it measures the rule on piles training never asked about, beside ``val`` and the
other eval sets, which then ask only about pile values training examples ask about (in
new prompts).

With several max_remove values each also gets its own eval set, ``eval_m{M}`` (the
original project's per-max_remove eval files), of ceil(n_eval / number of values) examples. With
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from metaexamples.io import stable_hash, write_json, write_jsonl
from metaexamples.nim import names as nm
from metaexamples.nim.prompts import (
    DEFAULT_TERMS,
    answer_text,
    candidate_answers,
    random_terms,
    render_prompt,
)
from metaexamples.nim.settings import (
    CHEAT_EVAL_SETS,
    UNSEEN_PILES_SET,
    VAL_SET,
    NimSettings,
)
from metaexamples.nim.solver import winning_move
from metaexamples.seam import check_seam

__all__ = [
    "ROW_KEYS",
    "Game",
    "eval_pile_values",
    "pile_partition",
    "pile_strata_modulus",
    "generate_experiment",
    "sample_game",
    "summarise_rows",
    "unseen_pile_values",
    "write_experiment",
]

log = logging.getLogger(__name__)

ROW_KEYS = (
    "id", "split", "prompt", "answer", "max_remove", "initial_pile", "moves", "pile",
    "label_move", "names", "bucket", "candidates",
)  # fmt: skip
MANIFEST_NAME = "manifest.json"


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
    return _stratified_piles(settings, settings.eval_pile_fraction, settings.val_pile_fraction)


def unseen_pile_values(settings: NimSettings) -> frozenset[int]:
    """The pile values only ``eval_unseen_piles`` asks about (``unseen_pile_fraction``),
    drawn like `pile_partition`'s eval part: stratified by residue class, ranked by a
    seeded hash, at least one per class of two or more values."""
    if settings.unseen_pile_fraction == 0:
        return frozenset()
    return _stratified_piles(settings, settings.unseen_pile_fraction, None)[0]


def _stratified_piles(
    settings: NimSettings, first: float, second: float | None
) -> tuple[frozenset[int], frozenset[int]]:
    modulus = pile_strata_modulus(settings)
    evals: set[int] = set()
    vals: set[int] = set()
    for residue in range(modulus):
        values = range(residue or modulus, settings.pile_max + 1, modulus)
        ranked = sorted(values, key=lambda p: stable_hash(f"nim-pile/{settings.seed}/{p}"))
        n = len(ranked)
        k_eval = round(first * n)
        if n >= 2:
            k_eval = min(max(k_eval, 1), n - 1)
        k_val = 0
        if second is not None:
            k_val = min(max(round(second * n), 1), n - 1 - k_eval) if n >= 3 else 0
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
    split: str,
    settings: NimSettings,
    partition: tuple[frozenset[int], frozenset[int]],
    unseen: frozenset[int],
    train_piles: frozenset[int],
) -> _SetRule:
    evals, vals = partition
    only = settings.max_remove_sets.get(split)
    game = replace(settings, max_remove=(only,)) if only is not None else settings
    if split == UNSEEN_PILES_SET:
        return _SetRule(unseen, frozenset(), game)
    if unseen and split != "train":  # beside the unseen piles, the piles training asks about
        return _SetRule(train_piles, frozenset(), game)
    if settings.split != "pile":
        return _SetRule(None, unseen, game)
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
    unseen = unseen_pile_values(settings)
    if settings.unseen_pile_fraction > 0 and not unseen:
        raise ValueError(
            "unseen_pile_fraction: no pile value in 1..pile_max was reserved; raise "
            "unseen_pile_fraction or pile_max"
        )
    seen: dict[str, set[str]] = {"train": set(), VAL_SET: set(), "eval": set()}
    modes = {"train": "mixed", VAL_SET: "mixed", "eval": "mixed"}
    modes.update(dict.fromkeys(settings.max_remove_sets, "mixed"))
    if unseen:
        modes[UNSEEN_PILES_SET] = "mixed"
    if settings.has_cheat:
        modes.update(CHEAT_EVAL_SETS)
    splits = {}
    for split, mode in modes.items():
        n = _set_size(split, settings)
        train_piles = frozenset(r["pile"] for r in splits.get("train", ()))
        rule = _set_rule(split, settings, partition, unseen, train_piles)
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
    unseen = unseen_pile_values(settings)
    if unseen:
        manifest["unseen_piles"] = sorted(unseen)
    write_json(out / MANIFEST_NAME, manifest)
    log.info("wrote Nim experiment to %s", out)
    return manifest
