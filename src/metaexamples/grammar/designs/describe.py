"""The `describe` design: the grammar's rule in prose, with explained valid and invalid
instances, assembled from compositional pieces (describe.yaml): hundreds of thousands of
skeletons per grammar. `wrongrule` texts share the assembly (`describe_text`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metaexamples.grammar.designs.render import choice, distinct, fill, join_and, plural, seq, sym
from metaexamples.grammar.designs.templates import load
from metaexamples.grammar.languages import Grammar

_T = load("describe")
OPENERS = _T.strings("openers")
ALPHABET_SENTENCES = _T.strings("alphabet_sentences")
LENGTH_SENTENCES = _T.strings("length_sentences")
FIXED_LENGTH_SENTENCES = _T.strings("fixed_length_sentences")
RULE_SENTENCES = _T.table("rule_sentences")
VALID_SENTENCES = _T.strings("valid_sentences")
INVALID_SENTENCES = _T.strings("invalid_sentences")
CLOSERS = _T.strings("closers")
VALID_WHY = _T.table("valid_why")
REASONS = _T.table("reasons")


@dataclass(frozen=True)
class Instances:
    valid: list[tuple[list[str], str]]  # (symbols, why)
    invalid: list[tuple[list[str], str]]  # (symbols, reason)


def _alphabet_field(rng: np.random.Generator, alphabet: Sequence[str]) -> str:
    """One of several renderings of the symbol list (each symbol spaced)."""
    items = [sym(s) for s in alphabet]
    style = int(rng.integers(4))
    if style == 0:
        return "".join(items)
    if style == 1:
        return " " + join_and(items) + " "
    if style == 2:
        return " {" + "".join(items) + "} "
    return " " + " , ".join(items) + " "


def _odd_symbols(symbols: Sequence[str], alphabet: Sequence[str]) -> list[str]:
    counts = Counter(symbols)
    return [s for s in alphabet if counts[s] % 2 == 1]


def _odd_clause(odd: Sequence[str]) -> str:
    if len(odd) == 1:
        return _T.text("clauses", "odd_one").format(symbol=sym(odd[0]))
    return _T.text("clauses", "odd_many").format(symbols=join_and([sym(s) for s in odd]))


def count_clause(symbols: Sequence[str], alphabet: Sequence[str]) -> str:
    """' ★ appears 2 times and ◆ appears 4 times' over the symbols present."""
    counts = Counter(symbols)
    template = _T.text("clauses", "count")
    parts = [
        template.format(symbol=sym(s), times=plural(counts[s], "time"))
        for s in alphabet
        if counts[s]
    ]
    return join_and(parts) if parts else _T.text("clauses", "no_count")


def _mirror_break(symbols: Sequence[str]) -> tuple[int, int]:
    """First 0-based mirrored pair (i, n-1-i) whose symbols differ."""
    n = len(symbols)
    for i in range(n // 2):
        if symbols[i] != symbols[n - 1 - i]:
            return i, n - 1 - i
    raise ValueError(f"{list(symbols)} is a palindrome")


def _reason(rng: np.random.Generator, grammar: Grammar, kind: str, symbols: Sequence[str]) -> str:
    """Why the negative `symbols` of type `kind` is not in `grammar`."""
    key = f"{grammar.name}.{kind}" if f"{grammar.name}.{kind}" in REASONS else kind
    fields: dict[str, object] = {
        "n": len(symbols),
        "length": plural(len(symbols), "symbol"),
        "max": grammar.max_length,
        "min_symbols": plural(grammar.min_length, "symbol"),
    }
    if key in ("g2.minimal_edit", "g2.odd_length"):
        odd = _odd_symbols(symbols, grammar.alphabet)
        fields["odd_clause"] = _odd_clause(odd)
        fields["odd_list"] = join_and([sym(s) for s in odd])
        fields["count_clause"] = count_clause([s for s in symbols if s in odd], odd)
    elif key == "g3.minimal_edit":
        i, j = _mirror_break(symbols)
        fields.update(i=i + 1, j=j + 1, a=sym(symbols[i]), b=sym(symbols[j]))
        fields["rev"] = seq(list(symbols)[::-1])
    elif key == "out_of_alphabet":
        fields["f"] = sym(next(s for s in symbols if s not in grammar.alphabet))
    return fill(choice(rng, REASONS[key]), capitalize=False, **fields)


def valid_why(rng: np.random.Generator, key: str, symbols: Sequence[str], alphabet) -> str:
    """An optional (half the time) explanation of why a valid instance is valid."""
    if rng.random() < 0.5:
        return ""
    template = choice(rng, VALID_WHY[key])
    return template.format(
        n=len(symbols),
        length=plural(len(symbols), "symbol"),
        counts=count_clause(symbols, alphabet),
        seq=seq(symbols),
    )


def describe_text(
    rng: np.random.Generator,
    grammar: Grammar,
    rule_sentences: Sequence[str],
    short: str,
    instances: Instances,
) -> str:
    """Assemble opener, alphabet, rule/length (either order), instances, closer."""
    fields = {
        "name": grammar.name,
        "k_symbols": plural(grammar.k, "symbol"),
        "min": grammar.min_length,
        "max": grammar.max_length,
        "short": short,
    }
    lengths = (
        FIXED_LENGTH_SENTENCES if grammar.min_length == grammar.max_length else LENGTH_SENTENCES
    )
    rule = fill(choice(rng, rule_sentences), **fields)
    length = fill(choice(rng, lengths), **fields)
    alphabet = fill(
        choice(rng, ALPHABET_SENTENCES), alphabet=_alphabet_field(rng, grammar.alphabet), **fields
    )
    middle = [rule, length] if rng.random() < 0.5 else [length, rule]
    examples = [
        fill(template, seq=seq(s), why=why)
        for template, (s, why) in zip(
            distinct(rng, VALID_SENTENCES, len(instances.valid)), instances.valid, strict=True
        )
    ]
    examples += [
        fill(template, seq=seq(s), reason=f" {reason} ")
        for template, (s, reason) in zip(
            distinct(rng, INVALID_SENTENCES, len(instances.invalid)),
            instances.invalid,
            strict=True,
        )
    ]
    order = rng.permutation(len(examples))
    parts = [
        fill(choice(rng, OPENERS), **fields),
        alphabet,
        *middle,
        *(examples[int(i)] for i in order),
        fill(choice(rng, CLOSERS), **fields),
    ]
    return " ".join(p for p in parts if p)


def describe_instances(
    rng: np.random.Generator, grammar: Grammar, foreign: Sequence[str]
) -> Instances:
    """1-3 sampled valid strings and 0-2 typed hard negatives, each with its explanation."""
    valid = []
    for _ in range(int(rng.integers(1, 4))):
        s = grammar.sample(rng)
        valid.append((s, valid_why(rng, grammar.name, s, grammar.alphabet)))
    invalid = []
    for _ in range(int(rng.integers(0, 3))):
        found = typed_negative(rng, grammar, grammar.negative_types, foreign)
        if found is not None:
            kind, neg = found
            invalid.append((neg, _reason(rng, grammar, kind, neg)))
    return Instances(valid, invalid)


def describe_body(rng: np.random.Generator, grammar: Grammar, foreign: Sequence[str]) -> str:
    instances = describe_instances(rng, grammar, foreign)
    return describe_text(rng, grammar, RULE_SENTENCES[grammar.name], grammar.description, instances)


def typed_negative(
    rng: np.random.Generator,
    grammar: Grammar,
    kinds: Sequence[str],
    foreign: Sequence[str],
    tries: int = 20,
) -> tuple[str, list[str]] | None:
    """A (kind, negative) with kind uniform over `kinds` that are possible; None if none is."""
    for _ in range(tries):
        order = rng.permutation(len(kinds))
        valid = grammar.sample(rng)
        for i in order:
            neg = grammar.negative(kinds[int(i)], rng, valid, foreign)
            if neg is not None:
                return kinds[int(i)], neg
    return None
