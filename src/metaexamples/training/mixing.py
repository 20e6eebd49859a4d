"""The training stream: canonical text and synthetic documents mixed by TOKEN share, packed.

The original project mixed with a per-document probability, so 10 % synthetic documents
of ~20 tokens next to 512-token web documents were far below 1 % of the tokens.
Here every pool gets a token budget out of the run's total ``T`` tokens (``r`` is
``synthetic_mix_ratio``, ``p`` the metaexamples' share of the synthetic budget)::

    canonical (1 - r) T        grammar examples r (1 - p) T        metaexamples r p T

Each pool is read in a seeded random order (reshuffled and read again when it runs out)
until its budget is met; every document is followed by the tokenizer's end-of-text token;
the documents are shuffled together and the concatenation is cut into ``T / seq_len``
rows of ``seq_len`` tokens: no padding anywhere.

Documents are whole, except the metaexamples, which are drawn first and may be cut:
when the next metaexample would overshoot what is left of their budget, it is cut after
the sentence that brings the total nearest the budget and closed with its wrapper's tag
(`sentence_cuts`), so a small share (1 % of a short run) is met to within a sentence
instead of rounding to one whole document -- which made 1 % and 5 % conditions train on
identical streams. A run whose metaexamples still miss their budget by more than
`META_TOLERANCE` (relative) fails before training (`MetaShareError`), naming the knobs
that set the budget. The grammar examples then make up the synthetic total ``r T`` (so
the metaexamples' rounding comes out of the examples, not out of the ratio), and
canonical text fills the rest. The last canonical document drawn is placed at the end of
the stream, so the final cut only ever shortens that one document: the achieved
synthetic share is ``r`` to within half an example document. The manifest records what
was achieved, per pool.

    >>> budgets = token_budgets(1000, ratio=0.1, meta_fraction=0.1)
    >>> budgets
    {'canonical': 900, 'examples': 90, 'meta': 10}

Running out of canonical text is not silent: it is logged as a warning and recorded in the
manifest (``canonical_repeated``, ``canonical_epochs``).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from metaexamples.config import META_TOLERANCE  # largest relative miss of the meta budget

log = logging.getLogger(__name__)

POOLS = ("canonical", "examples", "meta")
TOKENIZE_BATCH = 512
CUT_SEARCH = 32  # documents searched for the sentence cut nearest the budget
BUDGET_KNOBS = ("training.max_steps, training.batch_size, training.max_seq_length or "
                "training.synthetic_mix_ratio (or the condition's percent)")
_WRAPPED = re.compile(r"^(<[^<>]+>) (.*) (</[^<>]+>)$", re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


class MetaShareError(ValueError):
    """The metaexamples cannot meet their share of the run's tokens."""


def sentence_cuts(text: str) -> list[str]:
    """The document cut after each of its sentences (shortest first), rewrapped.

    Only a document wrapped as ``<tag> body </tag>`` is cut; the last cut is the whole
    document::

        >>> for cut in sentence_cuts("<meta:describe g1> One. Two! Three </meta:describe>"):
        ...     print(cut)
        <meta:describe g1> One. </meta:describe>
        <meta:describe g1> One. Two! </meta:describe>
        <meta:describe g1> One. Two! Three </meta:describe>
    """
    m = _WRAPPED.match(text)
    if not m:
        return [text]
    head, body, tail = m.groups()
    ends = [e.end() for e in _SENTENCE_END.finditer(body)]
    cuts = [f"{head} {body[:end].rstrip()} {tail}" for end in ends if body[:end].strip()]
    return [*dict.fromkeys([*cuts, text])]


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

    def peek_text(self) -> str:
        self.peek()  # reshuffles when the pool is spent
        return self.texts[int(self.order[self.pos])]

    def _tokenize(self, indices: np.ndarray) -> None:
        todo = [int(i) for i in indices if int(i) not in self.cache]
        encoded = self.tokenizer([self.texts[i] for i in todo], add_special_tokens=False)
        self.cache.update(zip(todo, encoded["input_ids"], strict=True))

    def draw(self, budget: int, eos: int, *, nearest: bool) -> list[list[int]]:
        """Documents, each ending in `eos`, for a budget of `budget` tokens.

        ``nearest=False`` draws until the budget is reached (the pool that fills the stream).
        ``nearest=True`` stops where one more document would overshoot by more than it is
        short.
        """
        docs: list[list[int]] = []
        n = 0
        while n < budget:
            doc = [*self.peek(), eos]
            if nearest and n + len(doc) / 2 > budget:
                break
            n += len(self._take(docs, doc))
        return docs

    def _take(self, docs: list[list[int]], doc: list[int]) -> list[int]:
        """Consume the next document as `doc` (itself or a cut of it)."""
        docs.append(doc)
        self.pos += 1
        self.drawn += 1
        return doc

    def draw_cut(self, budget: int, eos: int) -> tuple[list[list[int]], int]:
        """Documents for `budget` tokens, the last one cut at a sentence so that the total
        comes nearest the budget; (documents, number of cut documents).

        The cut is chosen among the next `CUT_SEARCH` documents in the pool's order (the
        chosen one is moved forward), since first sentences differ in length.
        """
        docs: list[list[int]] = []
        n = 0
        while n < budget:
            doc = [*self.peek(), eos]
            if n + len(doc) <= budget:
                n += len(self._take(docs, doc))
                continue
            offset, best = self._nearest_cut(budget - n, eos)
            if abs(len(best) - (budget - n)) >= budget - n:  # no nearer than stopping here
                break
            ahead = self.order[self.pos : self.pos + offset + 1]
            self.order[self.pos : self.pos + offset + 1] = np.roll(ahead, 1)
            whole = [*self.peek(), eos]
            self._take(docs, best)
            return docs, int(len(best) < len(whole))
        return docs, 0

    def _nearest_cut(self, left: int, eos: int) -> tuple[int, list[int]]:
        """(offset in the order, tokens) of the sentence cut nearest `left` tokens."""
        end = min(self.pos + CUT_SEARCH, len(self.order))
        texts = [(k - self.pos, cut) for k in range(self.pos, end)
                 for cut in sentence_cuts(self.texts[int(self.order[k])])]
        ids = self.tokenizer([t for _, t in texts], add_special_tokens=False)["input_ids"]
        options = [(offset, [*tokens, eos]) for (offset, _), tokens in zip(texts, ids,
                                                                           strict=True)]
        return min(options, key=lambda o: (abs(len(o[1]) - left), o[0]))

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

    # Metaexamples first (cut at a sentence to meet their budget); the examples then make up
    # the synthetic budget as a whole, and canonical text fills the rest exactly (its last
    # document is the one cut).
    synthetic_budget = budgets["examples"] + budgets["meta"]
    drawn: dict[str, list[list[int]]] = {"meta": []}
    cut = 0
    if "meta" in readers:
        drawn["meta"], cut = readers["meta"].draw_cut(budgets["meta"], eos)
    meta_tokens = sum(len(d) for d in drawn["meta"])
    check_meta_share(meta_tokens, budgets["meta"], synthetic_budget, meta_percent,
                     meta.source if meta else "meta")
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
    if "meta" in manifest["pools"]:
        manifest["pools"]["meta"]["cut_documents"] = cut
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


def check_meta_share(tokens: int, budget: int, synthetic: int, meta_percent: float,
                     source: str) -> None:
    """Fail when the metaexamples miss their budget by more than `META_TOLERANCE`."""
    if budget == 0 and meta_percent == 0:
        return
    if budget > 0 and abs(tokens / budget - 1.0) <= META_TOLERANCE:
        return
    raise MetaShareError(
        f"{source}: the metaexamples get {tokens} tokens against a budget of {budget} "
        f"({meta_percent:g} % of {synthetic} synthetic tokens), more than "
        f"{META_TOLERANCE:.0%} off: even cut at a sentence, metaexamples cannot meet so "
        f"small a budget, and this condition would train on the stream of another. "
        f"Raise the run's token budget: {BUDGET_KNOBS}"
    )


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
