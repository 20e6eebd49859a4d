"""The `generate-data` stage: one grammar's examples, evaluation splits and metaexamples.

Writes `train.jsonl` (valid strings drawn from the generator, duplicates kept),
`val.jsonl` and `test.jsonl` (distinct valid strings plus typed negatives, each negative
paired with the valid string it was derived from) and one `meta_{design}.jsonl` per
metaexample design, then a manifest. Deterministic for a given config and seed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaexamples.config import DataConfig, GrammarConfig
from metaexamples.grammar.designs import generate_metaexamples
from metaexamples.grammar.documents import META_DESIGNS, example_text, open_tag, symbols_text
from metaexamples.grammar.languages import DOCUMENT_NEGATIVE_TYPES, Grammar, make_grammar
from metaexamples.grammar.splits import SplitGrammar, SplitRule
from metaexamples.io import stable_hash, write_json, write_jsonl

log = logging.getLogger(__name__)


class LeakError(RuntimeError):
    """An evaluation string occurs in training data."""


@dataclass(frozen=True)
class Row:
    symbols: tuple[str, ...]
    text: str
    valid: bool
    negative_type: str | None = None
    logp_true: float | None = None
    pair_text: str | None = None

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "symbols": list(self.symbols),
            "length": len(self.symbols),
            "valid": self.valid,
            "negative_type": self.negative_type,
            "logp_true": self.logp_true,
            "pair_text": self.pair_text,
        }


def valid_row(grammar: Grammar, symbols: Sequence[str]) -> Row:
    return Row(tuple(symbols), example_text(grammar.name, symbols), True,
               logp_true=grammar.logp(symbols))


def distinct_valid(split: SplitGrammar, n: int, rng: np.random.Generator) -> list[Row]:
    seen: dict[str, Row] = {}
    for _ in range(50 * n):
        row = valid_row(split, split.sample(rng))
        seen.setdefault(row.text, row)
        if len(seen) == n:
            break
    if len(seen) < n:
        log.warning("%s %s: only %d distinct strings (asked for %d)", split.name, split.split,
                    len(seen), n)
    return list(seen.values())


def negatives(
    split: SplitGrammar, valid: Sequence[Row], per_type: int, rng: np.random.Generator,
    foreign: Sequence[str],
) -> list[Row]:
    """`per_type` negatives of each type, each derived from (and paired with) a valid row."""
    rows: list[Row] = []
    g = split.name
    for kind in split.negative_types:
        seen: set[str] = set()
        for i in range(20 * per_type):
            if len(seen) == per_type:
                break
            base = valid[i % len(valid)]
            neg = split.negative(kind, rng, base.symbols, foreign)
            if neg is None or example_text(g, neg) in seen:
                continue
            seen.add(example_text(g, neg))
            rows.append(Row(tuple(neg), example_text(g, neg), False, kind, None, base.text))
    for kind in DOCUMENT_NEGATIVE_TYPES:  # unclosed_tag: a valid body with no closing tag
        for base in valid[:per_type]:
            rows.append(Row(base.symbols, open_tag(g) + symbols_text(base.symbols), False, kind,
                            None, base.text))
    return rows


def grammar_seed(seed: int, grammar: str) -> np.random.Generator:
    return np.random.default_rng([seed, stable_hash(grammar) % (1 << 32)])


def generate(
    grammar_name: str,
    grammar_cfg: GrammarConfig,
    data: DataConfig,
    alphabet: Sequence[str],
    foreign: Sequence[str],
    canonical_texts: Sequence[str],
    out_dir: Path,
) -> dict:
    grammar = make_grammar(grammar_name, tuple(alphabet), grammar_cfg.min_length,
                           grammar_cfg.max_length)
    rule = SplitRule(data.val_percent, data.test_percent)
    rng = grammar_seed(data.seed, grammar_name)
    train_g = SplitGrammar(grammar, rule, "train")
    train = [valid_row(grammar, train_g.sample(rng)) for _ in range(data.n_train)]
    evals: dict[str, list[Row]] = {}
    for split, n in (("val", data.n_val), ("test", data.n_test)):
        sg = SplitGrammar(grammar, rule, split)
        valid = distinct_valid(sg, n, rng)
        evals[split] = valid + negatives(sg, valid, data.negatives_per_type, rng, foreign)
    check_disjoint(train, evals, out_dir)
    check_labels(grammar, [*train, *evals["val"], *evals["test"]])

    counts = {"train": write_jsonl(out_dir / "train.jsonl", (r.as_dict() for r in train))}
    for split, rows in evals.items():
        counts[split] = write_jsonl(out_dir / f"{split}.jsonl", (r.as_dict() for r in rows))
    meta_counts = {}
    for design in META_DESIGNS:
        docs = generate_metaexamples(
            design, train_g, data.meta_documents, rng, foreign=foreign,
            canonical_texts=canonical_texts, allowed=train_g.in_split,
        )
        meta_counts[design] = write_jsonl(out_dir / f"meta_{design}.jsonl", docs)
    manifest = {
        "grammar": grammar_name,
        "rule": grammar.description,
        "alphabet": list(alphabet),
        "min_length": grammar_cfg.min_length,
        "max_length": grammar_cfg.max_length,
        "lengths": grammar.lengths(),
        "length_distribution": {str(k): v for k, v in grammar.length_distribution().items()},
        "rows": counts,
        "negative_types": _type_counts(evals),
        "meta_documents": meta_counts,
        "split_rule": {"hash": "blake2b-64 of text", "val_percent": data.val_percent,
                       "test_percent": data.test_percent},
        "seed": data.seed,
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def check_disjoint(train: Sequence[Row], evals: dict[str, list[Row]], out_dir: Path) -> None:
    train_texts = {r.text for r in train}
    for split, rows in evals.items():
        leaked = sorted({r.text for r in rows} & train_texts)
        if leaked:
            raise LeakError(
                f"{out_dir}: {len(leaked)} {split} strings also occur in train, "
                f"e.g. {leaked[0]!r}; refusing to continue"
            )


def check_labels(grammar: Grammar, rows: Sequence[Row]) -> None:
    for r in rows:
        doc_ok = r.negative_type not in DOCUMENT_NEGATIVE_TYPES
        if r.valid != (doc_ok and grammar.accepts(r.symbols)):
            raise AssertionError(f"{grammar.name}: mislabelled row {r}")


def _type_counts(evals: dict[str, list[Row]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for split, rows in evals.items():
        counts: dict[str, int] = {}
        for r in rows:
            key = r.negative_type or "valid"
            counts[key] = counts.get(key, 0) + 1
        out[split] = counts
    return out
