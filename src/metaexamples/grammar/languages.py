"""The three synthetic grammars: membership, exact sampling distribution, hard negatives.

Each grammar is a frozen dataclass over an alphabet of k symbols with length bounds.
The generator's distribution is the same for all three: the length is uniform over the
lengths at which the language is non-empty, then the string is uniform over the valid
strings of that length, so every string's probability is known exactly::

    >>> import numpy as np
    >>> g = make_grammar("g2", ("★", "◆"), 2, 4)
    >>> g.lengths(), g.count(2), g.count(4)
    ([2, 4], 2, 8)
    >>> g.accepts(["★", "◆", "◆", "★"]), g.accepts(["★", "◆"])
    (True, False)
    >>> round(math.exp(g.logp(["★", "★"])), 4)  # 1/2 (length) * 1/2 (string)
    0.25
    >>> g.accepts(g.sample(np.random.default_rng(0)))
    True

Hard negatives are typed (`negative_types`) and derived from a valid string, so every
metric can be reported per negative type.
"""

from __future__ import annotations

import functools
import itertools
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

NEGATIVE_TYPES = ("minimal_edit", "odd_length", "out_of_alphabet", "too_long", "empty")
DOCUMENT_NEGATIVE_TYPES = ("unclosed_tag",)
TOO_LONG_MAX_EXTRA = 4


def _pick(rng: np.random.Generator, n: int) -> int:
    """A uniform index in range(n)."""
    return int(rng.integers(n))


@functools.cache
def _parity_table(k: int, r: int) -> tuple[int, ...]:
    """W[m]: strings of length r over k symbols whose odd-count set is one given m-set.

    W(m, r) = m * W(m-1, r-1) + (k-m) * W(m+1, r-1): the first symbol either removes
    itself from the set still to be made odd or adds itself to it.

    >>> _parity_table(2, 2)  # {}: ★★ ◆◆ ; {★}: none ; {★,◆}: ★◆ ◆★
    (2, 0, 2)
    """
    row = [1] + [0] * k
    for _ in range(r):
        row = [
            (m * row[m - 1] if m > 0 else 0) + ((k - m) * row[m + 1] if m < k else 0)
            for m in range(k + 1)
        ]
    return tuple(row)


def even_count_strings(length: int, k: int) -> int:
    """Strings of `length` over k symbols in which every symbol occurs an even number of times.

    N(L, k) = 2^-k * sum_j C(k, j) (k - 2j)^L, in exact integers.

    >>> [even_count_strings(n, 2) for n in range(5)]
    [1, 0, 2, 0, 8]
    """
    total = sum(math.comb(k, j) * (k - 2 * j) ** length for j in range(k + 1))
    return total >> k


def sample_even_counts(rng: np.random.Generator, alphabet: Sequence[str], length: int) -> list[str]:
    """A uniform string of `length` in which every symbol occurs an even number of times.

    Exact sequential sampling: each next symbol is drawn with probability proportional to
    the number of valid completions it leaves (`_parity_table`).

    >>> s = sample_even_counts(np.random.default_rng(1), ("a", "b", "c"), 6)
    >>> len(s), all(s.count(x) % 2 == 0 for x in "abc")
    (6, True)
    """
    k = len(alphabet)
    if length % 2 or (k == 0 and length > 0):
        raise ValueError(f"no string of length {length} has all counts even over {k} symbols")
    odd: set[int] = set()
    out: list[str] = []
    for step in range(length):
        rest = length - step - 1
        table, m = _parity_table(k, rest), len(odd)
        total = m * table[m - 1] if m > 0 else 0
        total += (k - m) * table[m + 1] if m < k else 0
        p_close = (m * table[m - 1] / total) if m > 0 else 0.0
        if rng.random() < p_close:
            group = sorted(odd)
        else:
            group = [i for i in range(k) if i not in odd]
        i = group[_pick(rng, len(group))]
        odd ^= {i}
        out.append(alphabet[i])
    return out


@dataclass(frozen=True)
class Grammar(ABC):
    """A language over `alphabet` restricted to min_length <= len <= max_length."""

    alphabet: tuple[str, ...]
    min_length: int
    max_length: int

    name: ClassVar[str]
    description: ClassVar[str]
    negative_types: ClassVar[tuple[str, ...]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "alphabet", tuple(self.alphabet))
        if not self.alphabet:
            raise ValueError(f"{self.name}: alphabet must be non-empty")
        bad = [
            s for s in self.alphabet if not isinstance(s, str) or not s or s != "".join(s.split())
        ]
        if bad:
            raise ValueError(
                f"{self.name}: alphabet symbols must be non-empty strings without whitespace: {bad}"
            )
        repeated = sorted(s for s, c in Counter(self.alphabet).items() if c > 1)
        if repeated:
            raise ValueError(
                f"{self.name}: alphabet symbols must be distinct (repeated: {repeated})"
            )
        for field in ("min_length", "max_length"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{self.name}: {field} must be an integer (got {value!r})")
        if self.min_length < 0:
            raise ValueError(f"{self.name}: min_length must be >= 0 (got {self.min_length})")
        if self.min_length > self.max_length:
            raise ValueError(
                f"{self.name}: min_length ({self.min_length}) must be <= "
                f"max_length ({self.max_length})"
            )
        if not self.lengths():
            raise ValueError(f"{self.name}: {self._empty_language_reason()}")

    # -- the rule ---------------------------------------------------------------------

    @abstractmethod
    def _follows_rule(self, symbols: Sequence[str]) -> bool:
        """The grammar's rule alone (alphabet and length bounds already checked)."""

    @abstractmethod
    def count(self, length: int) -> int:
        """Number of valid strings of exactly `length` symbols (ignoring the bounds)."""

    @abstractmethod
    def _sample_of_length(self, rng: np.random.Generator, length: int) -> list[str]:
        """A uniform valid string of `length` (which has count(length) > 0)."""

    @abstractmethod
    def _completions(self, prefix: Sequence[str], length: int) -> int:
        """Valid strings of exactly `length` symbols (bounds ignored) starting with `prefix`,
        whose symbols are all in the alphabet."""

    def _empty_language_reason(self) -> str:
        return f"no valid string with length in [{self.min_length}, {self.max_length}]"

    # -- shared interface -------------------------------------------------------------

    @property
    def k(self) -> int:
        return len(self.alphabet)

    def accepts(self, symbols: Sequence[str]) -> bool:
        """Membership: length bounds, alphabet, and the rule."""
        if not self.min_length <= len(symbols) <= self.max_length:
            return False
        allowed = set(self.alphabet)
        return all(s in allowed for s in symbols) and self._follows_rule(symbols)

    def lengths(self) -> list[int]:
        """Lengths in [min_length, max_length] at which the language is non-empty."""
        return [n for n in range(self.min_length, self.max_length + 1) if self.count(n) > 0]

    def length_distribution(self) -> dict[int, float]:
        """The sampler's length distribution: uniform over `lengths()`."""
        lengths = self.lengths()
        return {n: 1.0 / len(lengths) for n in lengths}

    def sample(self, rng: np.random.Generator) -> list[str]:
        """Length uniform over `lengths()`, then a uniform valid string of that length."""
        lengths = self.lengths()
        return self._sample_of_length(rng, lengths[_pick(rng, len(lengths))])

    def logp(self, symbols: Sequence[str]) -> float:
        """Exact natural-log probability of `symbols` under `sample`; -inf if not accepted."""
        if not self.accepts(symbols):
            return -math.inf
        return -math.log(len(self.lengths())) - math.log(self.count(len(symbols)))

    def strings_of_length(self, length: int) -> list[list[str]]:
        """Every valid string of exactly `length` symbols, in alphabet order.

        >>> ["".join(s) for s in make_grammar("g3", ("a", "b"), 1, 4).strings_of_length(3)]
        ['aaa', 'aba', 'bab', 'bbb']
        """
        if not self.min_length <= length <= self.max_length:
            return []
        return [list(s) for s in itertools.product(self.alphabet, repeat=length)
                if self._follows_rule(s)]

    # -- the generator's sequential form (what an exact next-token model needs) ---------

    def completions(self, prefix: Sequence[str], length: int) -> int:
        """Valid strings of exactly `length` symbols that start with `prefix` (0 if none)."""
        allowed = set(self.alphabet)
        if length < len(prefix) or any(s not in allowed for s in prefix):
            return 0
        return self._completions(prefix, length)

    def prefix_probability(self, prefix: Sequence[str]) -> float:
        """P(a sampled string starts with `prefix`): sum over L of P(L) N(L, prefix) / N(L)."""
        return sum(p * self.completions(prefix, n) / self.count(n)
                   for n, p in self.length_distribution().items() if n >= len(prefix))

    def next_symbol(self, prefix: Sequence[str]) -> tuple[dict[str, float], float]:
        """The generator's next step after `prefix`: (P(symbol | prefix), P(end | prefix)).

        The product of these conditionals along a string and its end is `exp(logp)`::

            >>> g = make_grammar("g3", ("★", "◆"), 1, 3)  # P(L) = 1/3 for L = 1, 2, 3
            >>> nxt, end = g.next_symbol(["★"])  # P(★...) = 1/6 + 1/6 + 1/6
            >>> {s: round(p, 4) for s, p in nxt.items()}, round(end, 4)  # ★★ ★★★ | ★◆★ | ★
            ({'★': 0.5, '◆': 0.1667}, 0.3333)
        """
        total = self.prefix_probability(prefix)
        if total <= 0.0:
            raise ValueError(f"{self.name}: {list(prefix)} is not a prefix of any valid string")
        nxt = {a: self.prefix_probability([*prefix, a]) / total for a in self.alphabet}
        n = len(prefix)
        p_len = self.length_distribution().get(n, 0.0)
        end = p_len * self.completions(prefix, n) / self.count(n) / total if p_len else 0.0
        return nxt, end

    # -- hard negatives ---------------------------------------------------------------

    def negative(
        self,
        kind: str,
        rng: np.random.Generator,
        valid: Sequence[str],
        foreign: Sequence[str] = (),
    ) -> list[str] | None:
        """An invalid symbol list of type `kind` derived from the valid string `valid`.

        Returns None when this kind cannot be made from this string (for example a
        mirror break of a length-1 palindrome, or `out_of_alphabet` without foreign
        symbols).
        """
        if kind not in self.negative_types:
            raise ValueError(
                f"{self.name}: unknown negative type {kind!r}; allowed: {list(self.negative_types)}"
            )
        if not self.accepts(valid):
            raise ValueError(f"{self.name}: negatives are derived from valid strings, got {valid}")
        clash = [s for s in foreign if s in self.alphabet]
        if clash:
            raise ValueError(f"{self.name}: foreign symbols {clash} are in the alphabet")
        out = getattr(self, f"_negative_{kind}")(rng, list(valid), tuple(foreign))
        if out is not None and self.accepts(out):
            raise RuntimeError(f"{self.name}: {kind} negative {out} is accepted (bug)")
        return out

    def _negative_out_of_alphabet(
        self, rng: np.random.Generator, valid: list[str], foreign: tuple[str, ...]
    ) -> list[str] | None:
        if not foreign or not valid:
            return None
        out = list(valid)
        out[_pick(rng, len(out))] = foreign[_pick(rng, len(foreign))]
        return out

    def _negative_empty(
        self, rng: np.random.Generator, valid: list[str], foreign: tuple[str, ...]
    ) -> list[str] | None:
        return [] if self.min_length > 0 else None

    def _negative_too_long(
        self, rng: np.random.Generator, valid: list[str], foreign: tuple[str, ...]
    ) -> list[str] | None:
        targets = [
            n
            for n in range(self.max_length + 1, self.max_length + TOO_LONG_MAX_EXTRA + 1)
            if self._can_extend(len(valid), n)
        ]
        if not targets:
            return None
        return self._extend(rng, valid, targets[_pick(rng, len(targets))])

    def _can_extend(self, length: int, target: int) -> bool:
        return self.count(target) > 0

    @abstractmethod
    def _extend(self, rng: np.random.Generator, valid: list[str], target: int) -> list[str]:
        """`valid` grown to `target` symbols while still following the rule."""

    def _random_symbols(self, rng: np.random.Generator, n: int) -> list[str]:
        return [self.alphabet[i] for i in rng.integers(self.k, size=n)]

    def _other_symbol(self, rng: np.random.Generator, symbol: str) -> str:
        others = [s for s in self.alphabet if s != symbol]
        return others[_pick(rng, len(others))]


@dataclass(frozen=True)
class AnyString(Grammar):
    """g1: every string over the alphabet within the length bounds.

    >>> g = AnyString(("★", "◆"), 1, 3)
    >>> g.count(3), g.accepts(["◆", "◆"]), g.accepts([])
    (8, True, False)
    """

    name: ClassVar[str] = "g1"
    description: ClassVar[str] = "any string of alphabet symbols is valid"
    negative_types: ClassVar[tuple[str, ...]] = ("out_of_alphabet", "too_long", "empty")

    def _follows_rule(self, symbols: Sequence[str]) -> bool:
        return True

    def count(self, length: int) -> int:
        return self.k**length if length >= 0 else 0

    def _sample_of_length(self, rng: np.random.Generator, length: int) -> list[str]:
        return self._random_symbols(rng, length)

    def _completions(self, prefix: Sequence[str], length: int) -> int:
        return self.k ** (length - len(prefix))

    def _extend(self, rng: np.random.Generator, valid: list[str], target: int) -> list[str]:
        return valid + self._random_symbols(rng, target - len(valid))


@dataclass(frozen=True)
class EvenCounts(Grammar):
    """g2: every symbol occurs an even number of times (so only even lengths occur).

    >>> g = EvenCounts(("★", "◆", "▲"), 2, 4)
    >>> g.lengths(), g.count(2), g.count(4)
    ([2, 4], 3, 21)
    >>> g.accepts(["★", "◆", "★", "◆"]), g.accepts(["★", "◆", "★", "▲"])
    (True, False)
    """

    name: ClassVar[str] = "g2"
    description: ClassVar[str] = "every symbol appears an even number of times"
    negative_types: ClassVar[tuple[str, ...]] = (
        "minimal_edit",
        "odd_length",
        "out_of_alphabet",
        "too_long",
        "empty",
    )

    def _follows_rule(self, symbols: Sequence[str]) -> bool:
        return all(c % 2 == 0 for c in Counter(symbols).values())

    def count(self, length: int) -> int:
        return even_count_strings(length, self.k) if length >= 0 else 0

    def _empty_language_reason(self) -> str:
        return f"no even length in [{self.min_length}, {self.max_length}]"

    def _sample_of_length(self, rng: np.random.Generator, length: int) -> list[str]:
        return sample_even_counts(rng, self.alphabet, length)

    def _completions(self, prefix: Sequence[str], length: int) -> int:
        """The rest must make exactly the prefix's odd-count symbols odd (`_parity_table`)."""
        odd = sum(c % 2 for c in Counter(prefix).values())
        return _parity_table(self.k, length - len(prefix))[odd]

    def _extend(self, rng: np.random.Generator, valid: list[str], target: int) -> list[str]:
        return valid + sample_even_counts(rng, self.alphabet, target - len(valid))

    def _negative_minimal_edit(
        self, rng: np.random.Generator, valid: list[str], foreign: tuple[str, ...]
    ) -> list[str] | None:
        """One substitution: the old and the new symbol both become odd."""
        if not valid or self.k < 2:
            return None
        out = list(valid)
        i = _pick(rng, len(out))
        out[i] = self._other_symbol(rng, out[i])
        return out

    def _negative_odd_length(
        self, rng: np.random.Generator, valid: list[str], foreign: tuple[str, ...]
    ) -> list[str] | None:
        """Insert or delete one symbol, staying within the length bounds."""
        ops = []
        if self.min_length <= len(valid) + 1 <= self.max_length:
            ops.append("insert")
        if valid and self.min_length <= len(valid) - 1 <= self.max_length:
            ops.append("delete")
        if not ops:
            return None
        out = list(valid)
        if ops[_pick(rng, len(ops))] == "insert":
            out.insert(_pick(rng, len(out) + 1), self.alphabet[_pick(rng, self.k)])
        else:
            del out[_pick(rng, len(out))]
        return out


@dataclass(frozen=True)
class Palindrome(Grammar):
    """g3: strings that read the same forwards and backwards.

    >>> g = Palindrome(("★", "◆"), 1, 4)
    >>> g.count(3), g.count(4), g.accepts(["★", "◆", "★"]), g.accepts(["★", "◆"])
    (4, 4, True, False)
    """

    name: ClassVar[str] = "g3"
    description: ClassVar[str] = "the string reads the same forwards and backwards"
    negative_types: ClassVar[tuple[str, ...]] = (
        "minimal_edit",
        "out_of_alphabet",
        "too_long",
        "empty",
    )

    def _follows_rule(self, symbols: Sequence[str]) -> bool:
        return list(symbols) == list(symbols)[::-1]

    def count(self, length: int) -> int:
        return self.k ** ((length + 1) // 2) if length >= 0 else 0

    def _sample_of_length(self, rng: np.random.Generator, length: int) -> list[str]:
        half = self._random_symbols(rng, (length + 1) // 2)
        return half + half[: length // 2][::-1]

    def _completions(self, prefix: Sequence[str], length: int) -> int:
        """Prefix positions that mirror each other must agree; the rest of the first half
        is free."""
        t = len(prefix)
        if any(prefix[i] != prefix[length - 1 - i] for i in range(t) if length - 1 - i < t):
            return 0
        return self.k ** max(0, (length + 1) // 2 - t)

    def _can_extend(self, length: int, target: int) -> bool:
        return (target - length) % 2 == 0

    def _extend(self, rng: np.random.Generator, valid: list[str], target: int) -> list[str]:
        pad = self._random_symbols(rng, (target - len(valid)) // 2)
        return pad + valid + pad[::-1]

    def _negative_minimal_edit(
        self, rng: np.random.Generator, valid: list[str], foreign: tuple[str, ...]
    ) -> list[str] | None:
        """Change one symbol that has a distinct mirror partner (a mirror break)."""
        n = len(valid)
        positions = [i for i in range(n) if i != n - 1 - i]
        if not positions or self.k < 2:
            return None
        out = list(valid)
        i = positions[_pick(rng, len(positions))]
        out[i] = self._other_symbol(rng, out[i])
        return out


GRAMMARS: dict[str, type[Grammar]] = {g.name: g for g in (AnyString, EvenCounts, Palindrome)}


def make_grammar(name: str, alphabet: Sequence[str], min_length: int, max_length: int) -> Grammar:
    """Build a registered grammar by name.

    >>> make_grammar("g3", ["★", "◆"], 1, 5).count(5)
    8
    """
    if name not in GRAMMARS:
        raise ValueError(f"unknown grammar {name!r}; allowed: {sorted(GRAMMARS)}")
    return GRAMMARS[name](tuple(alphabet), min_length, max_length)
