"""Metaexamples: training text *about* a grammar rather than samples of it.

Five designs (`documents.META_DESIGNS`), each wrapped in its own tag by
`documents.meta_text`, never in the `<gK>` tags of examples:

- `describe`: prose statement of the rule with worked valid and invalid instances, built
  from compositional template pieces (hundreds of thousands of skeletons per grammar);
- `judge`: lines of labelled judgements, half valid strings, half hard negatives;
- `trace`: one valid string with its latent state written out;
- `wrongrule`: a `describe`-style text about a different rule, with instances of that rule;
- `irrelevant`: a canonical prose passage (a budget-matched control).

Every symbol is written as " " + symbol + " ", exactly the context examples use, so it
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

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

import numpy as np

from metaexamples.grammar.documents import META_DESIGNS, meta_text
from metaexamples.grammar.languages import Grammar

EMPTY_STRING = "the empty string"

# ---------------------------------------------------------------------------------------
# Small text helpers
# ---------------------------------------------------------------------------------------


def _choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _distinct(rng: np.random.Generator, options: Sequence[str], n: int) -> list[str]:
    """`n` options, distinct while they last, so that several instances read differently."""
    order = rng.permutation(len(options))
    return [options[int(order[i % len(options)])] for i in range(n)]


def _sym(symbol: str) -> str:
    """A symbol as a template field: always surrounded by spaces."""
    return f" {symbol} "


def _seq(symbols: Sequence[str]) -> str:
    """A string of symbols as a template field.

    >>> _seq(["★", "◆"]), _seq([])
    (' ★ ◆ ', ' the empty string ')
    """
    return " " + (" ".join(symbols) if symbols else EMPTY_STRING) + " "


def _join_and(items: Sequence[str], conj: str = "and") -> str:
    """'a , b and c' (items may be symbol fields; spacing is normalised later)."""
    if len(items) <= 1:
        return "".join(items)
    return " , ".join(items[:-1]) + f" {conj} " + items[-1]


def _fill(template: str, capitalize: bool = True, **fields: object) -> str:
    """Format, collapse runs of spaces, and (by default) capitalise a leading ASCII letter.

    >>> _fill("{seq}is fine.", seq=_seq(["★"])), _fill("{seq}is fine.", seq=_seq([]))
    ('★ is fine.', 'The empty string is fine.')
    """
    text = re.sub(" +", " ", template.format(**fields)).strip()
    if capitalize and text[:1].isascii() and text[:1].islower():
        text = text[0].upper() + text[1:]
    return text


def _plural(n: int, word: str) -> str:
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


# ---------------------------------------------------------------------------------------
# describe / wrongrule: compositional templates
# ---------------------------------------------------------------------------------------

OPENERS = (
    "",
    "Here is the rule of grammar {name}.",
    "Grammar {name} is a small formal language.",
    "This note explains which strings belong to {name}.",
    "The language {name} is defined as follows.",
    "A short description of the strings of {name}.",
    "Let me describe the grammar called {name}.",
    "The following text describes a simple grammar.",
    "Below is the definition of a toy language.",
    "How to tell whether a string is in {name}:",
    "Consider the strings generated by {name}.",
    "Rules of the {name} language, in plain words.",
)

ALPHABET_SENTENCES = (
    "Its strings are made of {k_symbols}:{alphabet}.",
    "The alphabet has {k_symbols}, namely{alphabet}.",
    "Only these {k_symbols} may be used:{alphabet}.",
    "Every string is written with the symbols{alphabet}.",
    "The symbols are{alphabet}, and no others are allowed.",
    "There are {k_symbols} in the alphabet:{alphabet}.",
    "A string is a sequence of symbols taken from{alphabet}.",
    "The vocabulary consists of{alphabet}.",
)

LENGTH_SENTENCES = (
    "A string has between {min} and {max} symbols.",
    "Its length is at least {min} and at most {max}.",
    "Strings are {min} to {max} symbols long.",
    "No string is shorter than {min} or longer than {max} symbols.",
    "The length must lie between {min} and {max}, inclusive.",
    "Lengths range from {min} up to {max}.",
    "Every string contains at least {min} and no more than {max} symbols.",
    "Length limits: minimum {min}, maximum {max}.",
)

FIXED_LENGTH_SENTENCES = (
    "Every string has exactly {min} symbols.",
    "The length is always {min}.",
    "Strings are exactly {min} symbols long.",
)

RULE_SENTENCES: dict[str, tuple[str, ...]] = {
    "g1": (
        "Any sequence of these symbols is allowed, in any order.",
        "There is no further constraint: every arrangement of the symbols is valid.",
        "The order and the counts of the symbols do not matter; anything goes.",
        "Every combination of symbols is accepted, repeats included.",
        "A symbol may appear any number of times, anywhere in the string.",
        "Apart from the length, nothing is checked: all strings of these symbols are valid.",
        "The rule is trivial: each position can hold any of the {k_symbols}.",
        "Nothing restricts which symbol comes next; all strings over the alphabet qualify.",
    ),
    "g2": (
        "Each symbol must appear an even number of times.",
        "The rule: every symbol occurs an even number of times, and zero counts as even.",
        "Count each symbol; a string is valid only if every count is even.",
        "No symbol may occur an odd number of times.",
        "Symbols come in pairs: each one is used 0, 2, 4 or another even number of times.",
        "A string is accepted when every symbol occurs an even number of times, "
        "so valid strings always have even length.",
        "The order does not matter, only the counts: all of them must be even.",
        "For every symbol, the number of times it appears must be divisible by two.",
    ),
    "g3": (
        "A valid string is a palindrome: it reads the same forwards and backwards.",
        "The string must equal its own reverse.",
        "The first symbol must match the last, the second must match the second to last, "
        "and so on.",
        "Reversing a valid string gives back the same string.",
        "Valid strings are mirror images of themselves around their middle.",
        "Position i and position n + 1 - i must hold the same symbol, where n is the length.",
        "The rule is symmetry: read from either end, the string is identical.",
        "Only palindromes are allowed, of odd or even length.",
    ),
}

VALID_SENTENCES = (
    "For example, {seq} is valid{why}.",
    "{seq} is a valid string{why}.",
    "One valid string is {seq}{why}.",
    "The string {seq} is accepted{why}.",
    "{seq} belongs to the language{why}.",
    "Take {seq}: it follows the rule{why}.",
    "Here is a correct example: {seq}{why}.",
    "{seq} is fine{why}.",
    "An allowed string is {seq}{why}.",
)

INVALID_SENTENCES = (
    "{seq} is not valid: {reason}.",
    "By contrast, {seq} is rejected, because {reason}.",
    "{seq} does not belong to the language, since {reason}.",
    "A wrong example is {seq}: {reason}.",
    "The string {seq} fails: {reason}.",
    "{seq} is invalid because {reason}.",
    "Note that {seq} is not allowed, as {reason}.",
)

CLOSERS = (
    "",
    "That is the whole rule.",
    "Nothing else is required.",
    "Any string that breaks these conditions is rejected.",
    "These are the only constraints.",
    "In short: {short}.",
    "This completes the definition of {name}.",
)

VALID_WHY: dict[str, tuple[str, ...]] = {
    "g1": (
        ", since it has {length}",
        " (its length is {n})",
        ", like any string of allowed symbols",
    ),
    "g2": (", because {counts}", ", since {counts}", ", as every count is even"),
    "g3": (
        ", since it reads the same backwards",
        " (it is its own reverse)",
        ", because reversed it is still {seq}",
    ),
    "wrong": (", as the rule requires", ", which follows the rule", ""),
}

REASONS: dict[str, tuple[str, ...]] = {
    "g2.minimal_edit": (
        "{odd_clause}",
        "the counts of {odd_list} are odd",
        "{count_clause}",
    ),
    "g2.odd_length": (
        "it has odd length {n}, so some symbol must appear an odd number of times",
        "its length {n} is odd",
        "{odd_clause}",
    ),
    "g3.minimal_edit": (
        "position {i} holds {a} but position {j} holds {b}",
        "it is not a palindrome: {a} at position {i} does not match {b} at position {j}",
        "reading it backwards gives {rev}",
    ),
    "out_of_alphabet": (
        "{f} is not one of the allowed symbols",
        "it contains {f}, which is not in the alphabet",
        "the symbol {f} is foreign to the alphabet",
    ),
    "too_long": (
        "it has {length}, more than the maximum of {max}",
        "it is too long, with {length}",
        "its length {n} exceeds the limit of {max}",
    ),
    "empty": (
        "it is empty, but a string needs at least {min_symbols}",
        "nothing shorter than {min_symbols} is allowed",
        "it is too short",
    ),
}


def _alphabet_field(rng: np.random.Generator, alphabet: Sequence[str]) -> str:
    """One of several renderings of the symbol list (each symbol spaced)."""
    items = [_sym(s) for s in alphabet]
    style = int(rng.integers(4))
    if style == 0:
        return "".join(items)
    if style == 1:
        return " " + _join_and(items) + " "
    if style == 2:
        return " {" + "".join(items) + "} "
    return " " + " , ".join(items) + " "


def _odd_symbols(symbols: Sequence[str], alphabet: Sequence[str]) -> list[str]:
    counts = Counter(symbols)
    return [s for s in alphabet if counts[s] % 2 == 1]


def _odd_clause(odd: Sequence[str]) -> str:
    if len(odd) == 1:
        return f"{_sym(odd[0])} appears an odd number of times"
    return f"{_join_and([_sym(s) for s in odd])} each appear an odd number of times"


def _count_clause(symbols: Sequence[str], alphabet: Sequence[str]) -> str:
    """' ★ appears 2 times and ◆ appears 4 times' over the symbols present."""
    counts = Counter(symbols)
    parts = [f"{_sym(s)} appears {_plural(counts[s], 'time')}" for s in alphabet if counts[s]]
    return _join_and(parts) if parts else "no symbol appears at all"


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
        "length": _plural(len(symbols), "symbol"),
        "max": grammar.max_length,
        "min_symbols": _plural(grammar.min_length, "symbol"),
    }
    if key in ("g2.minimal_edit", "g2.odd_length"):
        odd = _odd_symbols(symbols, grammar.alphabet)
        fields["odd_clause"] = _odd_clause(odd)
        fields["odd_list"] = _join_and([_sym(s) for s in odd])
        fields["count_clause"] = _count_clause([s for s in symbols if s in odd], odd)
    elif key == "g3.minimal_edit":
        i, j = _mirror_break(symbols)
        fields.update(i=i + 1, j=j + 1, a=_sym(symbols[i]), b=_sym(symbols[j]))
        fields["rev"] = _seq(list(symbols)[::-1])
    elif key == "out_of_alphabet":
        fields["f"] = _sym(next(s for s in symbols if s not in grammar.alphabet))
    return _fill(_choice(rng, REASONS[key]), capitalize=False, **fields)


def _valid_why(rng: np.random.Generator, key: str, symbols: Sequence[str], alphabet) -> str:
    """An optional (half the time) explanation of why a valid instance is valid."""
    if rng.random() < 0.5:
        return ""
    template = _choice(rng, VALID_WHY[key])
    return template.format(
        n=len(symbols),
        length=_plural(len(symbols), "symbol"),
        counts=_count_clause(symbols, alphabet),
        seq=_seq(symbols),
    )


@dataclass(frozen=True)
class _Instances:
    valid: list[tuple[list[str], str]]  # (symbols, why)
    invalid: list[tuple[list[str], str]]  # (symbols, reason)


def _describe_text(
    rng: np.random.Generator,
    grammar: Grammar,
    rule_sentences: Sequence[str],
    short: str,
    instances: _Instances,
) -> str:
    """Assemble opener, alphabet, rule/length (either order), instances, closer."""
    fields = {
        "name": grammar.name,
        "k_symbols": _plural(grammar.k, "symbol"),
        "min": grammar.min_length,
        "max": grammar.max_length,
        "short": short,
    }
    lengths = (
        FIXED_LENGTH_SENTENCES if grammar.min_length == grammar.max_length else LENGTH_SENTENCES
    )
    rule = _fill(_choice(rng, rule_sentences), **fields)
    length = _fill(_choice(rng, lengths), **fields)
    alphabet = _fill(
        _choice(rng, ALPHABET_SENTENCES), alphabet=_alphabet_field(rng, grammar.alphabet), **fields
    )
    middle = [rule, length] if rng.random() < 0.5 else [length, rule]
    examples = [
        _fill(template, seq=_seq(s), why=why)
        for template, (s, why) in zip(
            _distinct(rng, VALID_SENTENCES, len(instances.valid)), instances.valid, strict=True
        )
    ]
    examples += [
        _fill(template, seq=_seq(s), reason=f" {reason} ")
        for template, (s, reason) in zip(
            _distinct(rng, INVALID_SENTENCES, len(instances.invalid)),
            instances.invalid,
            strict=True,
        )
    ]
    order = rng.permutation(len(examples))
    parts = [
        _fill(_choice(rng, OPENERS), **fields),
        alphabet,
        *middle,
        *(examples[int(i)] for i in order),
        _fill(_choice(rng, CLOSERS), **fields),
    ]
    return " ".join(p for p in parts if p)


def _describe_instances(
    rng: np.random.Generator, grammar: Grammar, foreign: Sequence[str]
) -> _Instances:
    """1-3 sampled valid strings and 0-2 typed hard negatives, each with its explanation."""
    valid = []
    for _ in range(int(rng.integers(1, 4))):
        s = grammar.sample(rng)
        valid.append((s, _valid_why(rng, grammar.name, s, grammar.alphabet)))
    invalid = []
    for _ in range(int(rng.integers(0, 3))):
        found = _typed_negative(rng, grammar, grammar.negative_types, foreign)
        if found is not None:
            kind, neg = found
            invalid.append((neg, _reason(rng, grammar, kind, neg)))
    return _Instances(valid, invalid)


def _typed_negative(
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


# ---------------------------------------------------------------------------------------
# wrongrule: other rules, stated fluently, with instances consistent with them
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrongRule:
    """A rule that is not the grammar's, with a sampler and an explanation of violations."""

    name: str
    short: str
    sentences: tuple[str, ...]
    follows: Callable[[Sequence[str], Sequence[str]], bool]
    sample: Callable[[np.random.Generator, Sequence[str], int], list[str] | None]
    explain: Callable[[Sequence[str], Sequence[str]], str]


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
        out.append(_choice(rng, options))
    return out


def _no_repeat_explain(symbols: Sequence[str], alphabet: Sequence[str]) -> str:
    i = next(i for i in range(len(symbols) - 1) if symbols[i] == symbols[i + 1])
    return f"{_sym(symbols[i])} appears twice in a row, at positions {i + 1} and {i + 2}"


def _sorted_follows(symbols: Sequence[str], alphabet: Sequence[str]) -> bool:
    rank = {s: r for r, s in enumerate(alphabet)}
    return all(rank[a] <= rank[b] for a, b in pairwise(symbols))


def _sorted_sample(rng: np.random.Generator, alphabet: Sequence[str], n: int) -> list[str]:
    idx = sorted(int(i) for i in rng.integers(len(alphabet), size=n))
    return [alphabet[i] for i in idx]


def _sorted_explain(symbols: Sequence[str], alphabet: Sequence[str]) -> str:
    rank = {s: r for r, s in enumerate(alphabet)}
    i = next(i for i in range(len(symbols) - 1) if rank[symbols[i]] > rank[symbols[i + 1]])
    a, b = _sym(symbols[i]), _sym(symbols[i + 1])
    return f"{b} comes right after {a}, although {b} is earlier in the alphabet"


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
        counts[_choice(rng, chosen)] += 2
    out = [s for s in chosen for _ in range(counts[s])]
    return [out[int(i)] for i in rng.permutation(len(out))]


def _odd_used_explain(symbols: Sequence[str], alphabet: Sequence[str]) -> str:
    counts = Counter(symbols)
    s = next(s for s in alphabet if counts[s] and counts[s] % 2 == 0)
    return f"{_sym(s)} appears {counts[s]} times, an even number"


def _same_ends_follows(symbols: Sequence[str], alphabet: Sequence[str]) -> bool:
    return not symbols or symbols[0] == symbols[-1]


def _same_ends_sample(rng: np.random.Generator, alphabet: Sequence[str], n: int) -> list[str]:
    out = [alphabet[int(i)] for i in rng.integers(len(alphabet), size=n)]
    if out:
        out[-1] = out[0]
    return out


def _same_ends_explain(symbols: Sequence[str], alphabet: Sequence[str]) -> str:
    return f"it starts with {_sym(symbols[0])} but ends with {_sym(symbols[-1])}"


WRONG_RULES: dict[str, WrongRule] = {
    r.name: r
    for r in (
        WrongRule(
            "no_repeat",
            "no symbol appears twice in a row",
            (
                "No symbol may appear twice in a row.",
                "Two neighbouring symbols must always be different.",
                "A symbol is never directly followed by itself.",
                "Adjacent positions must hold different symbols.",
                "Repeating a symbol immediately is forbidden.",
                "Each symbol must differ from the one before it.",
            ),
            _no_repeat_follows,
            _no_repeat_sample,
            _no_repeat_explain,
        ),
        WrongRule(
            "sorted",
            "the symbols appear in alphabet order",
            (
                "The symbols must appear in the order in which the alphabet lists them.",
                "The string must be sorted: it reads the same after sorting its symbols.",
                "A later symbol of the alphabet may never come before an earlier one.",
                "Symbols are arranged in alphabet order, with repeats grouped together.",
                "Sorting the symbols of a valid string leaves it unchanged.",
                "Once a symbol has appeared, no earlier symbol of the alphabet may follow it.",
            ),
            _sorted_follows,
            _sorted_sample,
            _sorted_explain,
        ),
        WrongRule(
            "odd_used",
            "every symbol that occurs does so an odd number of times",
            (
                "Each symbol that is used must appear an odd number of times.",
                "Every symbol in the string occurs an odd number of times.",
                "Count the symbols that occur; each count must be odd.",
                "No symbol may appear an even number of times, unless it does not appear at all.",
                "A symbol is used once, three times, five times and so on, never an even "
                "number of times.",
                "Symbols that occur must occur an odd number of times.",
            ),
            _odd_used_follows,
            _odd_used_sample,
            _odd_used_explain,
        ),
        WrongRule(
            "same_ends",
            "the first and the last symbol are the same",
            (
                "The first symbol and the last symbol must be the same.",
                "A valid string ends with the symbol it starts with.",
                "Whatever symbol opens the string must also close it.",
                "The string has to begin and end with the same symbol.",
                "Only the two ends matter: they must hold identical symbols.",
                "The last symbol must repeat the first one.",
            ),
            _same_ends_follows,
            _same_ends_sample,
            _same_ends_explain,
        ),
    )
}

WRONG_RULES_FOR: dict[str, tuple[str, ...]] = {
    "g1": ("no_repeat", "sorted", "odd_used", "same_ends"),
    "g2": ("odd_used", "no_repeat", "sorted"),
    "g3": ("sorted", "no_repeat", "odd_used"),
}


def _allow_all(symbols: Sequence[str]) -> bool:
    return True


def _wrongrule_instances(
    rng: np.random.Generator,
    grammar: Grammar,
    rule: WrongRule,
    allowed: Callable[[Sequence[str]], bool] = _allow_all,
    tries: int = 50,
) -> _Instances:
    """1-3 strings that follow `rule` and 0-2 uniform strings that break it, with reasons."""
    lengths = list(range(grammar.min_length, grammar.max_length + 1))
    valid = []
    for _ in range(int(rng.integers(1, 4))):
        for _ in range(tries):
            s = rule.sample(rng, grammar.alphabet, _choice(rng, lengths))
            if s is not None and allowed(s):
                valid.append((s, _valid_why(rng, "wrong", s, grammar.alphabet)))
                break
    invalid = []
    for _ in range(int(rng.integers(0, 3))):
        for _ in range(tries):
            n = _choice(rng, lengths)
            s = [grammar.alphabet[int(i)] for i in rng.integers(grammar.k, size=n)]
            if not rule.follows(s, grammar.alphabet) and allowed(s):
                invalid.append((s, rule.explain(s, grammar.alphabet)))
                break
    return _Instances(valid, invalid)


# ---------------------------------------------------------------------------------------
# judge
# ---------------------------------------------------------------------------------------

JUDGE_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("{seq} → {label}", "valid", "invalid"),
    ("{seq} : {label}", "grammatical", "ungrammatical"),
    ("Is {seq} in {name}? {label}", "yes", "no"),
    ("string {seq} verdict {label}", "accept", "reject"),
    ("{seq} is {label}", "valid", "invalid"),
)

JUDGE_HEADERS = (
    "",
    "Judgements for {name}:",
    "Decide whether each string follows the rule of {name}.",
    "Valid or invalid?",
    "Labelled strings:",
)

JUDGE_G1_NEGATIVES = ("out_of_alphabet", "too_long", "empty")


def _judge_negative_kinds(grammar: Grammar) -> tuple[str, ...]:
    if "minimal_edit" in grammar.negative_types:
        return ("minimal_edit",)
    return tuple(k for k in JUDGE_G1_NEGATIVES if k in grammar.negative_types)


def _judge_body(rng: np.random.Generator, grammar: Grammar, foreign: Sequence[str]) -> str:
    """A header and 3-6 judgement lines in one format, each valid with probability 1/2."""
    template, yes, no = JUDGE_FORMATS[int(rng.integers(len(JUDGE_FORMATS)))]
    lines = [_fill(_choice(rng, JUDGE_HEADERS), name=grammar.name)]
    kinds = _judge_negative_kinds(grammar)
    for _ in range(int(rng.integers(3, 7))):
        found = None
        if rng.random() >= 0.5:
            found = _typed_negative(rng, grammar, kinds, foreign) or _typed_negative(
                rng, grammar, JUDGE_G1_NEGATIVES, foreign
            )
        symbols, label = (grammar.sample(rng), yes) if found is None else (found[1], no)
        lines.append(_fill(template, seq=_seq(symbols), label=label, name=grammar.name))
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
                seq = m.group("seq").strip()
                symbols = [] if seq.lower() == EMPTY_STRING else seq.split()
                out.append((symbols, m.group("label").lower() == yes))
                break
    return out


# ---------------------------------------------------------------------------------------
# trace
# ---------------------------------------------------------------------------------------

TRACE_HEADERS: dict[str, tuple[str, ...]] = {
    "g1": (
        "Counting the length of {seq} one symbol at a time:",
        "Length trace for {seq}:",
        "Read {seq} and keep a running count of symbols:",
    ),
    "g2": (
        "Reading {seq} one symbol at a time and tracking the parity of each count:",
        "Parity trace for {seq}:",
        "Check {seq} step by step, keeping track of which counts are odd:",
    ),
    "g3": (
        "Mirror check for {seq}, which has {length}:",
        "Compare {seq} with its reverse, pair by pair:",
        "Palindrome trace for {seq}:",
    ),
}

TRACE_CONCLUSIONS: dict[str, tuple[str, ...]] = {
    "g1": (
        "The final length {n} lies between {min} and {max}, so the string is valid.",
        "Length {n} is within the limits, so it is accepted.",
    ),
    "g2": (
        "At the end every count is even, so the string is valid.",
        "No symbol is left odd, so it is accepted.",
    ),
    "g3": (
        "Every pair matches, so the string is a palindrome and valid.",
        "All mirrored positions agree, so it is accepted.",
    ),
}


def _trace_steps(grammar: Grammar, symbols: Sequence[str]) -> list[str]:
    """The latent state after each step (g1, g2) or for each mirrored pair (g3), 1-based."""
    if grammar.name == "g3":
        n = len(symbols)
        steps = [
            f"positions {i + 1} and {n - i} :{_sym(symbols[i])}={_sym(symbols[n - 1 - i])}"
            for i in range(n // 2)
        ]
        if n % 2:
            steps.append(f"middle position {n // 2 + 1} :{_sym(symbols[n // 2])}")
        return steps
    steps = []
    odd: set[str] = set()
    for t, s in enumerate(symbols, start=1):
        if grammar.name == "g2":
            odd ^= {s}
            state = "".join(f"{_sym(a)}{'odd' if a in odd else 'even'}" for a in grammar.alphabet)
        else:
            state = f" length {t}"
        steps.append(f"step {t} :{_sym(s)}→{state}")
    return steps


def _trace_body(rng: np.random.Generator, grammar: Grammar) -> str:
    symbols = grammar.sample(rng)
    fields = {
        "seq": _seq(symbols),
        "n": len(symbols),
        "length": _plural(len(symbols), "symbol"),
        "min": grammar.min_length,
        "max": grammar.max_length,
    }
    header = _fill(_choice(rng, TRACE_HEADERS[grammar.name]), **fields)
    steps = _fill(" ; ".join(_trace_steps(grammar, symbols)), capitalize=False)
    end = _fill(_choice(rng, TRACE_CONCLUSIONS[grammar.name]), **fields)
    return " ".join(p for p in (header, steps + " ." if steps else "", end) if p)


# ---------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------


@cache
def _template_text() -> str:
    pieces: list[str] = [EMPTY_STRING, " , ", " and ", "{", "}", "→", ";", ":", "="]
    for group in (
        OPENERS,
        ALPHABET_SENTENCES,
        LENGTH_SENTENCES,
        FIXED_LENGTH_SENTENCES,
        VALID_SENTENCES,
        INVALID_SENTENCES,
        CLOSERS,
        JUDGE_HEADERS,
    ):
        pieces.extend(group)
    for table in (RULE_SENTENCES, VALID_WHY, REASONS, TRACE_HEADERS, TRACE_CONCLUSIONS):
        for group in table.values():
            pieces.extend(group)
    for template, yes, no in JUDGE_FORMATS:
        pieces.extend((template, yes, no))
    for rule in WRONG_RULES.values():
        pieces.extend((rule.short, *rule.sentences))
    pieces += ["appears twice in a row, at positions", "comes right after", "although", "is"]
    pieces += ["earlier in the alphabet", "times, an even number", "it starts with", "but ends"]
    pieces += ["positions", "middle position", "step", "length", "odd", "even", "each appear"]
    pieces += ["appears an odd number of times", "appears", "time", "no symbol appears at all"]
    return "\n".join(pieces) + "0123456789"


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
        source = grammar if allowed is None else _Restricted(grammar, allowed)
        bodies = [_body(design, rng, source, foreign, allowed or _allow_all) for _ in range(n)]
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
        instances = _describe_instances(rng, grammar, foreign)
        return _describe_text(
            rng, grammar, RULE_SENTENCES[grammar.name], grammar.description, instances
        )
    if design == "wrongrule":
        rule = WRONG_RULES[_choice(rng, WRONG_RULES_FOR[grammar.name])]
        instances = _wrongrule_instances(rng, grammar, rule, allowed)
        return _describe_text(rng, grammar, rule.sentences, rule.short, instances)
    if design == "judge":
        return _judge_body(rng, grammar, foreign)
    return _trace_body(rng, grammar)


class _Restricted:
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
