"""The `trace` design: one valid string with its latent state written out (trace.yaml)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metaexamples.grammar.designs.render import choice, fill, plural, seq, sym
from metaexamples.grammar.designs.templates import load
from metaexamples.grammar.languages import Grammar

_T = load("trace")
TRACE_HEADERS = _T.table("headers")
TRACE_CONCLUSIONS = _T.table("conclusions")


def _step(name: str, **fields: object) -> str:
    return _T.text("steps", name).format(**fields)


def _parity_state(symbol: str, is_odd: bool) -> str:
    parity = _T.text("steps", "odd" if is_odd else "even")
    return _step("parity_state", symbol=sym(symbol), parity=parity)


def _trace_steps(grammar: Grammar, symbols: Sequence[str]) -> list[str]:
    """The latent state after each step (g1, g2) or for each mirrored pair (g3), 1-based."""
    if grammar.name == "g3":
        n = len(symbols)
        steps = [
            _step("pair", i=i + 1, j=n - i, a=sym(symbols[i]), b=sym(symbols[n - 1 - i]))
            for i in range(n // 2)
        ]
        if n % 2:
            steps.append(_step("middle", m=n // 2 + 1, a=sym(symbols[n // 2])))
        return steps
    steps = []
    odd: set[str] = set()
    for t, s in enumerate(symbols, start=1):
        if grammar.name == "g2":
            odd ^= {s}
            state = "".join(_parity_state(a, a in odd) for a in grammar.alphabet)
        else:
            state = _step("length_state", t=t)
        steps.append(_step("step", t=t, symbol=sym(s), state=state))
    return steps


def trace_body(rng: np.random.Generator, grammar: Grammar) -> str:
    symbols = grammar.sample(rng)
    fields = {
        "seq": seq(symbols),
        "n": len(symbols),
        "length": plural(len(symbols), "symbol"),
        "min": grammar.min_length,
        "max": grammar.max_length,
    }
    header = fill(choice(rng, TRACE_HEADERS[grammar.name]), **fields)
    steps = fill(" ; ".join(_trace_steps(grammar, symbols)), capitalize=False)
    end = fill(choice(rng, TRACE_CONCLUSIONS[grammar.name]), **fields)
    return " ".join(p for p in (header, steps + " ." if steps else "", end) if p)
