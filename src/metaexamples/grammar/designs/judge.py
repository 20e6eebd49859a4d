"""The `judge` design: lines of labelled judgements, half valid strings, half hard
negatives (judge.yaml holds the formats), and the parser that reads them back."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from metaexamples.grammar.designs.describe import typed_negative
from metaexamples.grammar.designs.render import EMPTY_STRING, choice, fill, seq
from metaexamples.grammar.designs.templates import load
from metaexamples.grammar.languages import Grammar

_T = load("judge")
JUDGE_HEADERS = _T.strings("headers")
# (template, valid label, invalid label)
JUDGE_FORMATS = tuple(_T.records("formats", ("template", "valid", "invalid")))
JUDGE_FALLBACK_NEGATIVES = _T.strings("fallback_negatives")


def _judge_negative_kinds(grammar: Grammar) -> tuple[str, ...]:
    if "minimal_edit" in grammar.negative_types:
        return ("minimal_edit",)
    return tuple(k for k in JUDGE_FALLBACK_NEGATIVES if k in grammar.negative_types)


def judge_body(rng: np.random.Generator, grammar: Grammar, foreign: Sequence[str]) -> str:
    """A header and 3-6 judgement lines in one format, each valid with probability 1/2."""
    template, yes, no = JUDGE_FORMATS[int(rng.integers(len(JUDGE_FORMATS)))]
    lines = [fill(choice(rng, JUDGE_HEADERS), name=grammar.name)]
    kinds = _judge_negative_kinds(grammar)
    for _ in range(int(rng.integers(3, 7))):
        found = None
        if rng.random() >= 0.5:
            found = typed_negative(rng, grammar, kinds, foreign) or typed_negative(
                rng, grammar, JUDGE_FALLBACK_NEGATIVES, foreign
            )
        symbols, label = (grammar.sample(rng), yes) if found is None else (found[1], no)
        lines.append(fill(template, seq=seq(symbols), label=label, name=grammar.name))
    # "\n " keeps the space before a line-initial symbol (it tokenises as " ★").
    return "\n ".join(line for line in lines if line)


def _judge_pattern(template: str, yes: str, no: str) -> re.Pattern[str]:
    """A regex matching one filled judgement line of `template` (case-insensitive)."""
    fields = {
        "{seq}": r"(?P<seq>.+?)",
        "{name}": r"\S+?",
        "{label}": f"(?P<label>{re.escape(yes)}|{re.escape(no)})",
    }
    parts = re.split(r"(\{seq\}|\{name\}|\{label\})", template)
    regex = r"\s*".join(fields.get(p) or re.escape(p.strip()) for p in parts if p.strip())
    return re.compile(regex, re.IGNORECASE)


def parse_judgements(text: str) -> list[tuple[list[str], bool]]:
    """Read (symbols, is_valid) pairs back from a judge document or body.

    >>> parse_judgements("<meta:judge g2> Labelled:\\n ★ ★ → valid\\n ★ → invalid </meta:judge>")
    [(['★', '★'], True), (['★'], False)]
    """
    body = re.sub(r"^\s*<meta:judge \S+>|</meta:judge>\s*$", "", text)
    out = []
    patterns = [(_judge_pattern(*fmt), fmt[1]) for fmt in JUDGE_FORMATS]
    for line in body.split("\n"):
        for pattern, yes in patterns:
            m = pattern.fullmatch(line.strip())
            if m:
                found = m.group("seq").strip()
                symbols = [] if found.lower() == EMPTY_STRING else found.split()
                out.append((symbols, m.group("label").lower() == yes))
                break
    return out
