"""Metaexamples: training text *about* a grammar rather than samples of it.

Five designs (`documents.META_DESIGNS`), each wrapped in its own tag by
`documents.meta_text`, never in the `<gK>` tags of examples:

- `describe`: prose statement of the rule with worked valid and invalid instances, built
  from compositional template pieces (hundreds of thousands of skeletons per grammar);
- `judge`: lines of labelled judgements, half valid strings, half hard negatives;
- `trace`: one valid string with its latent state written out;
- `wrongrule`: a `describe`-style text about a different rule, with instances of that rule;
- `irrelevant`: a canonical prose passage (a budget-matched control).

The English text of each design is data (describe.yaml, judge.yaml, trace.yaml,
wrongrule.yaml, common.yaml beside this module); `render` fills it, one module per design
assembles it, and `judge.parse_judgements` reads judgements back.

Every symbol is written " " + symbol + " ", exactly the context examples use, so it
tokenises the same way (`symbol_occurrences_ok` checks this)::

    >>> import numpy as np
    >>> from metaexamples.grammar.languages import make_grammar
    >>> g = make_grammar("g3", ("★", "◆"), 1, 4)
    >>> row = generate_metaexamples("trace", g, 1, np.random.default_rng(0))[0]
    >>> row["text"].startswith("<meta:trace g3> "), row["design"], row["grammar"]
    (True, 'trace', 'g3')
    >>> symbol_occurrences_ok(row["text"], g.alphabet)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

from metaexamples.grammar.designs.describe import describe_body
from metaexamples.grammar.designs.judge import judge_body, parse_judgements
from metaexamples.grammar.designs.render import EMPTY_STRING, symbol_occurrences_ok
from metaexamples.grammar.designs.templates import all_template_strings
from metaexamples.grammar.designs.trace import trace_body
from metaexamples.grammar.designs.wrongrule import allow_all, wrongrule_body
from metaexamples.grammar.documents import META_DESIGNS, meta_text
from metaexamples.grammar.languages import Grammar

__all__ = [
    "EMPTY_STRING",
    "generate_metaexamples",
    "parse_judgements",
    "symbol_occurrences_ok",
    "template_conflicts",
]

# Text the renderers add around template fields (list separators, tags of the symbol list).
_JOINERS = (" , ", " and ", "{", "}", ";", " .")


@cache
def _template_text() -> str:
    return "\n".join([*_JOINERS, *all_template_strings()]) + "0123456789"


def template_conflicts(symbols: Sequence[str]) -> list[str]:
    """Symbols that also occur inside metaexample prose (or contain digits).

    Such a symbol could not be told apart from the surrounding text, so the generators
    refuse alphabets containing one.

    >>> template_conflicts(["★", "→", "e"])
    ['→', 'e']
    """
    text = _template_text()
    return [s for s in symbols if s in text or any(ch.isdigit() for ch in s)]


def _check_symbols(grammar: Grammar, foreign: Sequence[str]) -> None:
    clash = [s for s in foreign if s in grammar.alphabet]
    if clash:
        raise ValueError(f"foreign symbols {clash} are also in the alphabet of {grammar.name}")
    conflicts = template_conflicts([*grammar.alphabet, *foreign])
    if conflicts:
        raise ValueError(
            f"symbols {conflicts} also occur in metaexample prose; choose other symbols"
        )


def generate_metaexamples(
    design: str,
    grammar: Grammar,
    n: int,
    rng: np.random.Generator,
    *,
    foreign: Sequence[str] = (),
    canonical_texts: Sequence[str] = (),
    allowed: Callable[[Sequence[str]], bool] | None = None,
) -> list[dict]:
    """`n` metaexample documents of `design` about `grammar`, each a row
    {"text": ..., "design": design, "grammar": grammar.name}.

    `foreign` symbols (not in the alphabet) feed `out_of_alphabet` negatives;
    `canonical_texts` are the passages the `irrelevant` control draws from.
    `allowed`, when given, restricts every symbol string written into the text (valid
    instances, negatives, wrong-rule instances), e.g. to the training split, so that no
    evaluation string leaks into metaexamples.

    >>> from metaexamples.grammar.languages import make_grammar
    >>> g = make_grammar("g2", ("★", "◆", "▲"), 2, 6)
    >>> rows = generate_metaexamples("judge", g, 2, np.random.default_rng(3))
    >>> [r["text"].split()[0] for r in rows]
    ['<meta:judge', '<meta:judge']
    """
    if design not in META_DESIGNS:
        raise ValueError(f"unknown metaexample design {design!r}; allowed: {list(META_DESIGNS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer (got {n!r})")
    foreign = tuple(foreign)
    if design == "irrelevant":
        bodies = _irrelevant_bodies(rng, (*grammar.alphabet, *foreign), n, canonical_texts)
    else:
        _check_symbols(grammar, foreign)
        source = grammar if allowed is None else Restricted(grammar, allowed)
        bodies = [_body(design, rng, source, foreign, allowed or allow_all) for _ in range(n)]
    rows = []
    for body in bodies:
        text = meta_text(design, grammar.name, body)
        if not symbol_occurrences_ok(text, (*grammar.alphabet, *foreign)):
            raise RuntimeError(f"symbol spacing broken in generated {design} text: {text!r}")
        rows.append({"text": text, "design": design, "grammar": grammar.name})
    return rows


def _body(
    design: str,
    rng: np.random.Generator,
    grammar: Grammar,
    foreign: Sequence[str],
    allowed: Callable[[Sequence[str]], bool],
) -> str:
    if design == "describe":
        return describe_body(rng, grammar, foreign)
    if design == "wrongrule":
        return wrongrule_body(rng, grammar, allowed)
    if design == "judge":
        return judge_body(rng, grammar, foreign)
    return trace_body(rng, grammar)


class Restricted:
    """A grammar whose samples and negatives are limited to strings that `allowed` accepts.

    Everything else (name, alphabet, accepts, ...) is the wrapped grammar's.
    """

    def __init__(
        self, grammar: Grammar, allowed: Callable[[Sequence[str]], bool], tries: int = 1000
    ):
        self._grammar, self._allowed, self._tries = grammar, allowed, tries

    def __getattr__(self, name: str) -> object:
        return getattr(self._grammar, name)

    def sample(self, rng: np.random.Generator) -> list[str]:
        for _ in range(self._tries):
            s = self._grammar.sample(rng)
            if self._allowed(s):
                return s
        raise ValueError(f"{self._grammar.name}: no allowed string in {self._tries} draws")

    def negative(
        self,
        kind: str,
        rng: np.random.Generator,
        valid: Sequence[str],
        foreign: Sequence[str] = (),
    ) -> list[str] | None:
        for _ in range(20):
            neg = self._grammar.negative(kind, rng, valid, foreign)
            if neg is None or self._allowed(neg):
                return neg
        return None


def _irrelevant_bodies(
    rng: np.random.Generator, symbols: Sequence[str], n: int, canonical_texts: Sequence[str]
) -> list[str]:
    """`n` canonical passages (whitespace-trimmed), skipping any that mis-space a symbol
    of the alphabet or a foreign one (e.g. the apostrophe in "California’s")."""
    usable = [
        t.strip()
        for t in canonical_texts
        if t.strip() and symbol_occurrences_ok(f" {t.strip()} ", symbols)
    ]
    if not usable:
        raise ValueError("the irrelevant design needs canonical_texts (none usable were given)")
    return [usable[int(i)] for i in rng.integers(len(usable), size=n)]
