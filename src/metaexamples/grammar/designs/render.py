"""Filling the designs' templates: symbol spacing, lists, plurals, capitalisation.

Every symbol is written " " + symbol + " ", exactly the context examples use, so it
tokenises the same way; `symbol_occurrences_ok` checks a finished text for this.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from metaexamples.grammar.designs.templates import load

EMPTY_STRING = load("common").text("empty_string")


def choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def distinct(rng: np.random.Generator, options: Sequence[str], n: int) -> list[str]:
    """`n` options, distinct while they last, so that several instances read differently."""
    order = rng.permutation(len(options))
    return [options[int(order[i % len(options)])] for i in range(n)]


def sym(symbol: str) -> str:
    """A symbol as a template field: always surrounded by spaces."""
    return f" {symbol} "


def seq(symbols: Sequence[str]) -> str:
    """A string of symbols as a template field.

    >>> seq(["★", "◆"]), seq([])
    (' ★ ◆ ', ' the empty string ')
    """
    return " " + (" ".join(symbols) if symbols else EMPTY_STRING) + " "


def join_and(items: Sequence[str], conj: str = "and") -> str:
    """'a , b and c' (items may be symbol fields; spacing is normalised later)."""
    if len(items) <= 1:
        return "".join(items)
    return " , ".join(items[:-1]) + f" {conj} " + items[-1]


def fill(template: str, capitalize: bool = True, **fields: object) -> str:
    """Format, collapse runs of spaces, and (by default) capitalise a leading ASCII letter.

    >>> fill("{seq}is fine.", seq=seq(["★"])), fill("{seq}is fine.", seq=seq([]))
    ('★ is fine.', 'The empty string is fine.')
    """
    text = re.sub(" +", " ", template.format(**fields)).strip()
    if capitalize and text[:1].isascii() and text[:1].islower():
        text = text[0].upper() + text[1:]
    return text


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def symbol_occurrences_ok(text: str, alphabet: Sequence[str]) -> bool:
    """True when every occurrence of an alphabet symbol is a token of its own.

    Stricter than "surrounded by whitespace": the whitespace-delimited token holding the
    occurrence must be exactly an alphabet symbol, preceded by a space character and
    followed by a space character (so " ★ ." is fine, " ★." and "\\n★ " are not).

    >>> symbol_occurrences_ok(" ★ ◆ , ▲ .", ("★", "◆", "▲"))
    True
    >>> symbol_occurrences_ok(" ★ ◆, ▲ .", ("★", "◆", "▲"))
    False
    """
    symbols = [s for s in alphabet if s and s in text]
    if not symbols:
        return True
    allowed = set(alphabet)
    for match in re.finditer(r"\S+", text):
        token = match.group()
        if not any(s in token for s in symbols):
            continue
        start, end = match.span()
        if token not in allowed or start == 0 or text[start - 1] != " ":
            return False
        if end >= len(text) or text[end] != " ":
            return False
    return True
