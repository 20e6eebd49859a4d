"""The training stream: canonical text and synthetic documents mixed by TOKEN share, packed.

The seed mixed with a per-document probability, so 10 % synthetic documents of ~20 tokens
next to 512-token web documents were far below 1 % of the tokens (DESIGN.md §3, item 5).
Here every pool gets a token budget out of the run's total ``T`` tokens (``r`` is
``synthetic_mix_ratio``, ``p`` the metaexamples' share of the synthetic budget)::

    canonical (1 - r) T        grammar examples r (1 - p) T        metaexamples r p T

Each pool is read in a seeded random order (reshuffled and read again when it runs out)
until its budget is met; every document is followed by the tokenizer's end-of-text token;
the documents are shuffled together and the concatenation is cut into ``T / seq_len``
rows of ``seq_len`` tokens: no padding anywhere.

Documents are whole, so budgets are met to the nearest document: metaexamples are drawn
first (at least one when their budget is positive and one fits in the whole synthetic
budget; a warning otherwise), the grammar examples then make up the
synthetic total ``r T`` (so an overshoot of the long metaexamples comes out of the
examples, not out of the ratio), and canonical text fills the rest. The last canonical
document drawn is placed at the end of the stream, so the final cut only ever shortens
that one document: the achieved synthetic share is ``r`` to within half an example
document. The manifest records what was achieved, per pool.

    >>> budgets = token_budgets(1000, ratio=0.1, meta_fraction=0.1)
    >>> budgets
    {'canonical': 900, 'examples': 90, 'meta': 10}

Running out of canonical text is not silent: it is logged as a warning and recorded in the
manifest (``canonical_repeated``, ``canonical_epochs``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

POOLS = ("canonical", "examples", "meta")
TOKENIZE_BATCH = 512


@dataclass(frozen=True)
class Pool:
    """The documents of one pool and the file they came from (for messages)."""

    texts: Sequence[str]
    source: str = ""


@dataclass(frozen=True)
class PackedStream:
    tokens: torch.Tensor  # [n_sequences, seq_len], int64, no padding
    manifest: dict[str, Any]


def token_budgets(total_tokens: int, ratio: float, meta_fraction: float) -> dict[str, int]:
    """Tokens per pool for a run of `total_tokens` (see the module docstring)."""
    synthetic = round(ratio * total_tokens)
    meta = round(synthetic * meta_fraction)
    return {"canonical": total_tokens - synthetic, "examples": synthetic - meta, "meta": meta}


class _PoolReader:
    """One pool's documents in seeded random order, tokenised in batches, reread when spent."""

    def __init__(
        self, name: str, pool: Pool, tokenizer: PreTrainedTokenizerBase, rng: np.random.Generator
    ) -> None:
        self.texts = [t for t in pool.texts if t.strip()]
        if not self.texts:
            raise ValueError(f"{pool.source or name}: the {name} pool has no non-empty documents")
        self.name, self.source, self.tokenizer, self.rng = name, pool.source, tokenizer, rng
        self.order = rng.permutation(len(self.texts))
        self.pos = 0
        self.drawn = 0
        self.cache: dict[int, list[int]] = {}

    def peek(self) -> list[int]:
        """The next document's tokens, without consuming it."""
        if self.pos == len(self.order):
            self.order = self.rng.permutation(len(self.texts))
            self.pos = 0
        idx = int(self.order[self.pos])
        if idx not in self.cache:
            self._tokenize(self.order[self.pos : self.pos + TOKENIZE_BATCH])
        return self.cache[idx]

    def _tokenize(self, indices: np.ndarray) -> None:
        todo = [int(i) for i in indices if int(i) not in self.cache]
        encoded = self.tokenizer([self.texts[i] for i in todo], add_special_tokens=False)
        self.cache.update(zip(todo, encoded["input_ids"], strict=True))

    def draw(self, budget: int, eos: int, *, nearest: bool, first_within: int = 0
             ) -> list[list[int]]:
        """Documents, each ending in `eos`, for a budget of `budget` tokens.

        ``nearest=False`` draws until the budget is reached (the pool that fills the stream).
        ``nearest=True`` stops where one more document would overshoot by more than it is
        short; but a first document that overshoots is still taken when it fits in
        `first_within` tokens (so a small budget is not rounded down to nothing).
        """
        docs: list[list[int]] = []
        n = 0
        while n < budget:
            doc = [*self.peek(), eos]
            closer = n + len(doc) / 2 <= budget
            if nearest and not closer and (docs or len(doc) > first_within):
                break
            docs.append(doc)
            self.pos += 1
            self.drawn += 1
            n += len(doc)
        return docs

    def summary(self, budget: int, tokens: int) -> dict[str, Any]:
        return {
            "source": self.source,
            "pool_documents": len(self.texts),
            "budget_tokens": budget,
            "tokens": tokens,
            "documents": self.drawn,
            "epochs": round(self.drawn / len(self.texts), 4),
            "repeated": self.drawn > len(self.texts),
        }


def build_stream(
    tokenizer: PreTrainedTokenizerBase,
    canonical: Pool,
    examples: Pool,
    meta: Pool | None = None,
    *,
    synthetic_mix_ratio: float,
    meta_percent: float = 0.0,
    n_sequences: int,
    seq_len: int,
    seed: int,
) -> PackedStream:
    """Mix the pools by token budget and pack them into `n_sequences` rows of `seq_len`."""
    if not 0.0 < synthetic_mix_ratio < 1.0:
        raise ValueError(f"synthetic_mix_ratio: {synthetic_mix_ratio} must be in (0, 1)")
    if not 0.0 <= meta_percent <= 100.0:
        raise ValueError(f"meta_percent: {meta_percent} must be between 0 and 100")
    if meta_percent > 0 and meta is None:
        raise ValueError(f"meta_percent is {meta_percent} but no metaexample file was given")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-text token to separate documents")
    total = n_sequences * seq_len
    budgets = token_budgets(total, synthetic_mix_ratio, meta_percent / 100.0)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(POOLS) + 1)]
    pools = {"canonical": canonical, "examples": examples, "meta": meta}
    readers = {
        name: _PoolReader(name, pool, tokenizer, rng)
        for (name, pool), rng in zip(pools.items(), rngs, strict=False)
        if pool is not None and (budgets[name] > 0 or name != "meta")
    }

    # Metaexamples first; the examples then make up the synthetic budget as a whole, and
    # canonical text fills the rest exactly (its last document is the one cut).
    synthetic_budget = budgets["examples"] + budgets["meta"]
    drawn = {"meta": readers["meta"].draw(budgets["meta"], eos, nearest=True,
                                          first_within=synthetic_budget)
             if "meta" in readers else []}
    meta_tokens = sum(len(d) for d in drawn["meta"])
    meta_source = meta.source if meta else "meta"
    if budgets["meta"] > 0 and not drawn["meta"]:
        log.warning("%s: no metaexample fits this run's metaexample budget of %d tokens "
                    "(synthetic budget %d): the run has none; train on more tokens",
                    meta_source, budgets["meta"], synthetic_budget)
    elif drawn["meta"] and not 0.5 <= meta_tokens / budgets["meta"] <= 1.5:
        # A short run cannot hit a small share with whole documents: say how far off it is,
        # since e.g. 1 % and 5 % conditions then train on the same stream.
        log.warning("%s: %d metaexample document(s), %d tokens = %.1f %% of the synthetic "
                    "tokens against a target of %.1f %%: metaexamples are whole documents; "
                    "train on more tokens to hit the target", meta_source,
                    len(drawn["meta"]), meta_tokens, 100.0 * meta_tokens / synthetic_budget,
                    meta_percent)
    drawn["examples"] = readers["examples"].draw(synthetic_budget - meta_tokens, eos,
                                                 nearest=True)
    synthetic = meta_tokens + sum(len(d) for d in drawn["examples"])
    drawn["canonical"] = readers["canonical"].draw(total - synthetic, eos, nearest=False)

    docs, labels = _shuffled_with_canonical_last(drawn, rngs[-1])
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    flat = np.fromiter(itertools.chain.from_iterable(docs), dtype=np.int64,
                       count=int(lengths.sum()))
    if flat.size < total:  # cannot happen: budgets are met before we get here
        raise RuntimeError(f"stream has {flat.size} tokens, needs {total}")
    source = np.repeat(labels, lengths)[:total]
    counts = np.bincount(source, minlength=len(POOLS))
    tokens = torch.from_numpy(flat[:total].reshape(n_sequences, seq_len).copy())

    manifest = _manifest(readers, budgets, counts, total, synthetic_mix_ratio, meta_percent)
    manifest |= {"seed": seed, "seq_len": seq_len, "n_sequences": n_sequences, "eos_token_id": eos}
    if manifest["canonical_repeated"]:
        log.warning(
            "canonical source %s ran out: read %.2f times over (%d documents drawn from %d); "
            "the stream repeats canonical text",
            canonical.source or "(canonical)", manifest["canonical_epochs"],
            readers["canonical"].drawn, len(readers["canonical"].texts),
        )
    log.info(
        "stream: %d x %d tokens, synthetic share %.4f (target %.4f), pools %s",
        n_sequences, seq_len, manifest["achieved_synthetic_share"], synthetic_mix_ratio,
        {k: int(c) for k, c in zip(POOLS, counts, strict=True)},
    )
    return PackedStream(tokens, manifest)


def _shuffled_with_canonical_last(
    drawn: dict[str, list[list[int]]], rng: np.random.Generator
) -> tuple[list[list[int]], np.ndarray]:
    """All documents in random order, except the last canonical one, which goes at the end."""
    tagged = [(POOLS.index(name), doc) for name in POOLS for doc in drawn.get(name, [])]
    tail = [tagged.pop(len(drawn["canonical"]) - 1)] if drawn["canonical"] else []
    order = rng.permutation(len(tagged))
    ordered = [tagged[i] for i in order] + tail
    return [d for _, d in ordered], np.array([k for k, _ in ordered], dtype=np.int64)


def _manifest(
    readers: dict[str, _PoolReader],
    budgets: dict[str, int],
    counts: np.ndarray,
    total: int,
    ratio: float,
    meta_percent: float,
) -> dict[str, Any]:
    per_pool = {name: int(c) for name, c in zip(POOLS, counts, strict=True)}
    synthetic = per_pool["examples"] + per_pool["meta"]
    canonical = readers["canonical"].summary(budgets["canonical"], per_pool["canonical"])
    return {
        "total_tokens": total,
        "synthetic_mix_ratio": ratio,
        "meta_percent": meta_percent,
        "achieved_synthetic_share": synthetic / total,
        "achieved_meta_share_of_synthetic": per_pool["meta"] / synthetic if synthetic else 0.0,
        "pools": {name: r.summary(budgets[name], per_pool[name]) for name, r in readers.items()},
        "canonical_repeated": canonical["repeated"],
        "canonical_epochs": canonical["epochs"],
    }
