"""The text format the model sees.

A grammar example is its opening tag, each symbol preceded by one space, then a space
and the closing tag::

    >>> example_text("g2", ["★", "◆", "◆", "★"])
    '<g2> ★ ◆ ◆ ★ </g2>'
    >>> example_text("g1", [])
    '<g1> </g1>'

so every symbol is tokenised as " symbol" (space + symbol), which is the context the
alphabet check in `alphabet.py` tests. Metaexamples use a different wrapper per design,
`<meta:{design} gK> ... </meta:{design}>`, so `<gK>` is only ever followed by symbols.
"""

from __future__ import annotations

from collections.abc import Sequence

GRAMMAR_NAMES = ("g1", "g2", "g3")
META_DESIGNS = ("describe", "judge", "trace", "wrongrule", "irrelevant")


def open_tag(grammar: str) -> str:
    return f"<{grammar}>"


def close_tag(grammar: str) -> str:
    return f"</{grammar}>"


def symbols_text(symbols: Sequence[str]) -> str:
    """The body of an example: each symbol preceded by a space."""
    return "".join(" " + s for s in symbols)


def example_text(grammar: str, symbols: Sequence[str]) -> str:
    return open_tag(grammar) + symbols_text(symbols) + " " + close_tag(grammar)


def example_continuation(grammar: str, symbols: Sequence[str]) -> str:
    """What is scored after the opening tag: the symbols and the closing tag."""
    return symbols_text(symbols) + " " + close_tag(grammar)


def meta_open_tag(design: str, grammar: str) -> str:
    return f"<meta:{design} {grammar}>"


def meta_close_tag(design: str) -> str:
    return f"</meta:{design}>"


def meta_text(design: str, grammar: str, body: str) -> str:
    return f"{meta_open_tag(design, grammar)} {body} {meta_close_tag(design)}"


def parse_example(grammar: str, text: str) -> tuple[bool, list[str]]:
    """Split a generated string into (well_formed, symbols).

    Well-formed means: starts with the opening tag, ends with " " + closing tag, and
    the body is space-separated tokens. Symbols are returned even when the wrapper is
    broken, so callers can report format and rule validity separately.
    """
    head, tail = open_tag(grammar), " " + close_tag(grammar)
    well_formed = text.startswith(head) and text.endswith(tail)
    body = text[len(head) :] if text.startswith(head) else text
    if body.endswith(tail):
        body = body[: -len(tail)]
    if well_formed and body and not body.startswith(" "):
        well_formed = False
    if well_formed and "  " in body:
        well_formed = False
    return well_formed, body.split()
