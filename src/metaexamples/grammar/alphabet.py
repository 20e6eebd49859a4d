"""Choose the synthetic alphabet from the model's own tokenizer.

A candidate symbol qualifies only if, with this tokenizer,
- it is one token alone and decodes back to itself;
- it is one token in every context the data puts it in: after the opening tag, between
  other symbols, and before the closing tag (" " + symbol, tested on real documents);
- it is a single visible grapheme: one code point that is not a letter, digit, mark
  (combining characters), separator, control/format character, or part of the tag syntax.
Candidates are ranked by rarity (a higher BPE id was merged later, so is rarer), and, when
the model has trained embeddings, under-trained tokens (unusually small embedding norm)
are screened out. Every candidate considered lands in an audit table with its verdict.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from metaexamples.grammar.designs import template_conflicts
from metaexamples.grammar.documents import GRAMMAR_NAMES, close_tag, example_text, open_tag

log = logging.getLogger(__name__)

TAG_CHARACTERS = set("<>/:")
REJECTED_CATEGORIES = {"L", "N", "M", "Z", "C"}  # letters, digits, marks, spaces, controls


@dataclass
class Candidate:
    symbol: str
    id_alone: int | None = None
    id_in_context: int | None = None
    ascii: bool = False
    embedding_norm: float | None = None
    reason: str = ""  # empty when qualified

    @property
    def qualified(self) -> bool:
        return not self.reason

    @property
    def rarity(self) -> int:
        return self.id_in_context or 0


@dataclass
class Selection:
    symbols: list[Candidate]
    audit: list[Candidate] = field(default_factory=list)


class AlphabetError(RuntimeError):
    """Too few symbols qualify."""


def grapheme_problem(symbol: str) -> str:
    """Why `symbol` is not a single visible grapheme (empty string if it is)."""
    if len(symbol) != 1:
        return f"{len(symbol)} code points"
    if symbol in TAG_CHARACTERS:
        return "tag syntax character"
    category = unicodedata.category(symbol)
    if category[0] in REJECTED_CATEGORIES:
        return f"unicode category {category} ({unicodedata.name(symbol, '?')})"
    return ""


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def context_documents(symbol: str, other: str) -> list[list[str]]:
    """Symbol sequences that put `symbol` first, between others, and last."""
    return [[symbol], [symbol, other], [other, symbol, other], [other, symbol], [symbol, symbol]]


def check_in_context(tokenizer, symbol: str, token_id: int, other: str, other_id: int) -> str:
    """Tokenise real documents around `symbol`; return a problem or ''."""
    ids = {symbol: token_id, other: other_id}
    for grammar in GRAMMAR_NAMES:
        head = _encode(tokenizer, open_tag(grammar))
        tail = _encode(tokenizer, " " + close_tag(grammar))
        for seq in context_documents(symbol, other):
            got = _encode(tokenizer, example_text(grammar, seq))
            want = head + [ids[s] for s in seq] + tail
            if got != want:
                return f"splits or merges in context {example_text(grammar, seq)!r}"
    return ""


def scan_vocabulary(tokenizer) -> list[Candidate]:
    """Every vocabulary entry that could be a symbol, with its verdict."""
    candidates: dict[str, Candidate] = {}
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id])
        if not text.startswith(" ") or len(text) != 2:
            continue
        symbol = text[1]
        if symbol in candidates:
            continue
        c = Candidate(symbol=symbol, ascii=symbol.isascii())
        candidates[symbol] = c
        c.reason = grapheme_problem(symbol)
        if not c.reason and template_conflicts([symbol]):
            c.reason = "occurs in metaexample prose"  # could not be told apart from the text
        if c.reason:
            continue
        spaced = _encode(tokenizer, " " + symbol)
        alone = _encode(tokenizer, symbol)
        if len(spaced) != 1:
            c.reason = f"' {symbol}' is {len(spaced)} tokens"
        elif len(alone) != 1:
            c.reason = f"alone it is {len(alone)} tokens"
        elif tokenizer.decode(alone) != symbol or tokenizer.decode(spaced) != " " + symbol:
            c.reason = "does not decode back to itself"
        else:
            c.id_alone, c.id_in_context = alone[0], spaced[0]
    return sorted(candidates.values(), key=lambda c: (c.id_in_context or -1), reverse=True)


def undertrained_threshold(norms: np.ndarray, quantile: float = 0.02) -> float:
    """Tokens whose embedding norm is below this look never (or barely) trained."""
    return float(np.quantile(norms, quantile))


def select_alphabet(
    tokenizer,
    size: int,
    ranking: str = "rarity",
    embedding_norms: np.ndarray | None = None,
) -> Selection:
    """Choose `size` symbols. `ranking`: 'rarity' (all candidates by rarity),
    'prefer-non-ascii' (non-ASCII candidates first, ASCII only to fill up), or
    'ascii-fallback' (ASCII punctuation only, for models whose rare tokens are suspect)."""
    audit = scan_vocabulary(tokenizer)
    if embedding_norms is not None:
        floor = undertrained_threshold(embedding_norms)
        for c in audit:
            if c.qualified:
                c.embedding_norm = float(embedding_norms[c.id_in_context])
                if c.embedding_norm < floor:
                    c.reason = f"under-trained: embedding norm {c.embedding_norm:.3f} < {floor:.3f}"
    pool = [c for c in audit if c.qualified]
    if ranking == "prefer-non-ascii":
        pool.sort(key=lambda c: c.ascii)  # stable: rarity order kept within each group
    elif ranking == "ascii-fallback":
        for c in pool:
            if not c.ascii:
                c.reason = "not ASCII (ascii-fallback ranking)"
        pool = [c for c in pool if c.ascii]
    chosen: list[Candidate] = []
    for c in pool:
        if len(chosen) == size:
            break
        partner = chosen[0] if chosen else next((o for o in pool if o is not c), None)
        if partner is None:
            break
        problem = check_in_context(
            tokenizer, c.symbol, c.id_in_context, partner.symbol, partner.id_in_context
        ) or _pairwise_problem(tokenizer, c, chosen)
        if problem:
            c.reason = problem
            continue
        chosen.append(c)
    if len(chosen) < size:
        raise AlphabetError(
            f"only {len(chosen)} of {len(audit)} candidate symbols qualify with ranking "
            f"{ranking!r}; need {size}. Try another alphabet.ranking or a smaller alphabet.size."
        )
    return Selection(symbols=chosen, audit=audit)


def _pairwise_problem(tokenizer, c: Candidate, chosen: Sequence[Candidate]) -> str:
    for other in chosen:
        problem = check_in_context(
            tokenizer, c.symbol, c.id_in_context, other.symbol, other.id_in_context
        )
        if problem:
            return f"with {other.symbol!r}: {problem}"
    return ""


def audit_rows(selection: Selection) -> list[dict]:
    chosen = {c.symbol for c in selection.symbols}
    return [
        {
            "symbol": c.symbol,
            "codepoint": f"U+{ord(c.symbol):04X}",
            "id_in_context": c.id_in_context,
            "selected": c.symbol in chosen,
            "reason": c.reason,
        }
        for c in selection.audit
    ]
