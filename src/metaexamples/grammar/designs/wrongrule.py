"""The `wrongrule` design: a `describe`-style text about a different rule, stated fluently,
with instances consistent with that rule (wrongrule.yaml holds the rules' text)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from metaexamples.grammar.designs.describe import Instances, describe_text, valid_why
from metaexamples.grammar.designs.render import choice, sym
from metaexamples.grammar.designs.templates import load
from metaexamples.grammar.languages import Grammar

_T = load("wrongrule")


@dataclass(frozen=True)
class WrongRule:
    """A rule that is not the grammar's, with a sampler and an explanation of violations."""

    name: str
    short: str
    sentences: tuple[str, ...]
    follows: Callable[[Sequence[str], Sequence[str]], bool]
    sample: Callable[[np.random.Generator, Sequence[str], int], list[str] | None]
    explain: Callable[[Sequence[str], Sequence[str]], str]


def _violation(rule: str, **fields: object) -> str:
    return _T.text("rules", rule, "violation").format(**fields)


def _no_repeat_follows(symbols: Sequence[str], alphabet: Sequence[str]) -> bool:
    return all(a != b for a, b in pairwise(symbols))


def _no_repeat_sample(
    rng: np.random.Generator, alphabet: Sequence[str], n: int
) -> list[str] | None:
    if n >= 2 and len(alphabet) < 2:
        return None
    out: list[str] = []
    for _ in range(n):
        options = [s for s in alphabet if not out or s != out[-1]]
        out.append(choice(rng, options))
    return out


def _no_repeat_explain(symbols: Sequence[str], alphabet: Sequence[str]) -> str:
    i = next(i for i in range(len(symbols) - 1) if symbols[i] == symbols[i + 1])
    return _violation("no_repeat", a=sym(symbols[i]), i=i + 1, j=i + 2)


def _sorted_follows(symbols: Sequence[str], alphabet: Sequence[str]) -> bool:
    rank = {s: r for r, s in enumerate(alphabet)}
    return all(rank[a] <= rank[b] for a, b in pairwise(symbols))


def _sorted_sample(rng: np.random.Generator, alphabet: Sequence[str], n: int) -> list[str]:
    idx = sorted(int(i) for i in rng.integers(len(alphabet), size=n))
    return [alphabet[i] for i in idx]


def _sorted_explain(symbols: Sequence[str], alphabet: Sequence[str]) -> str:
    rank = {s: r for r, s in enumerate(alphabet)}
    i = next(i for i in range(len(symbols) - 1) if rank[symbols[i]] > rank[symbols[i + 1]])
    return _violation("sorted", a=sym(symbols[i]), b=sym(symbols[i + 1]))


def _odd_used_follows(symbols: Sequence[str], alphabet: Sequence[str]) -> bool:
    return all(c % 2 == 1 for c in Counter(symbols).values())


def _odd_used_sample(rng: np.random.Generator, alphabet: Sequence[str], n: int) -> list[str] | None:
    """m distinct symbols (m with the parity of n), each once plus random extra pairs."""
    options = [m for m in range(0 if n == 0 else 1, min(len(alphabet), n) + 1) if m % 2 == n % 2]
    if not options:
        return None
    m = options[int(rng.integers(len(options)))]
    chosen = [alphabet[int(i)] for i in rng.choice(len(alphabet), size=m, replace=False)]
    counts = Counter(chosen)
    for _ in range((n - m) // 2):
        counts[choice(rng, chosen)] += 2
    out = [s for s in chosen for _ in range(counts[s])]
    return [out[int(i)] for i in rng.permutation(len(out))]


def _odd_used_explain(symbols: Sequence[str], alphabet: Sequence[str]) -> str:
    counts = Counter(symbols)
    s = next(s for s in alphabet if counts[s] and counts[s] % 2 == 0)
    return _violation("odd_used", symbol=sym(s), count=counts[s])


def _same_ends_follows(symbols: Sequence[str], alphabet: Sequence[str]) -> bool:
    return not symbols or symbols[0] == symbols[-1]


def _same_ends_sample(rng: np.random.Generator, alphabet: Sequence[str], n: int) -> list[str]:
    out = [alphabet[int(i)] for i in rng.integers(len(alphabet), size=n)]
    if out:
        out[-1] = out[0]
    return out


def _same_ends_explain(symbols: Sequence[str], alphabet: Sequence[str]) -> str:
    return _violation("same_ends", first=sym(symbols[0]), last=sym(symbols[-1]))


_CHECKERS = {
    "no_repeat": (_no_repeat_follows, _no_repeat_sample, _no_repeat_explain),
    "sorted": (_sorted_follows, _sorted_sample, _sorted_explain),
    "odd_used": (_odd_used_follows, _odd_used_sample, _odd_used_explain),
    "same_ends": (_same_ends_follows, _same_ends_sample, _same_ends_explain),
}

WRONG_RULES: dict[str, WrongRule] = {
    name: WrongRule(
        name, _T.text("rules", name, "short"), _T.strings("rules", name, "sentences"), *checkers
    )
    for name, checkers in _CHECKERS.items()
}

WRONG_RULES_FOR: dict[str, tuple[str, ...]] = _T.table("rules_for")
_unknown = {r for names in WRONG_RULES_FOR.values() for r in names} - set(WRONG_RULES)
if _unknown:
    raise ValueError(f"{_T.path}: rules_for names unknown rules {sorted(_unknown)}")


def allow_all(symbols: Sequence[str]) -> bool:
    return True


def wrongrule_instances(
    rng: np.random.Generator,
    grammar: Grammar,
    rule: WrongRule,
    allowed: Callable[[Sequence[str]], bool] = allow_all,
    tries: int = 50,
) -> Instances:
    """1-3 strings that follow `rule` and 0-2 uniform strings that break it, with reasons."""
    lengths = list(range(grammar.min_length, grammar.max_length + 1))
    valid = []
    for _ in range(int(rng.integers(1, 4))):
        for _ in range(tries):
            s = rule.sample(rng, grammar.alphabet, choice(rng, lengths))
            if s is not None and allowed(s):
                valid.append((s, valid_why(rng, "wrong", s, grammar.alphabet)))
                break
    invalid = []
    for _ in range(int(rng.integers(0, 3))):
        for _ in range(tries):
            n = choice(rng, lengths)
            s = [grammar.alphabet[int(i)] for i in rng.integers(grammar.k, size=n)]
            if not rule.follows(s, grammar.alphabet) and allowed(s):
                invalid.append((s, rule.explain(s, grammar.alphabet)))
                break
    return Instances(valid, invalid)


def wrongrule_body(
    rng: np.random.Generator, grammar: Grammar, allowed: Callable[[Sequence[str]], bool]
) -> str:
    rule = WRONG_RULES[choice(rng, WRONG_RULES_FOR[grammar.name])]
    instances = wrongrule_instances(rng, grammar, rule, allowed)
    return describe_text(rng, grammar, rule.sentences, rule.short, instances)
