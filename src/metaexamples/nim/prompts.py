"""How a game state is written down: the prompt, the answer and the candidate answers.

The prompt ends with the turn line and no trailing whitespace; every answer starts with a
space, so it begins a new token::

    >>> p = render_prompt(20, [3, 2], 3, ("Leo", "Sultan"), DEFAULT_TERMS)
    >>> print(p)
    You are playing nim. There are 20 coins.
    Leo and Sultan take turns.
    Each player can take between 1 and 3 coins on their turn.
    <BLANKLINE>
    So far:
    Leo takes 3 coins.
    Sultan takes 2 coins.
    <BLANKLINE>
    Now it's Leo's turn.
    >>> answer_text(3, DEFAULT_TERMS, "no winning move")
    ' take 3 coins'
    >>> answer_text(None, DEFAULT_TERMS, "{verb} -1 {coins}")
    ' take -1 coins'

With `masked` set (the original project's masked variants) the introduction maps "Player ONE" and
"Player TWO" to the names, and only the trace lines whose indices are in `masked` name
the player; the others say "Player ONE" / "Player TWO".
"""

from __future__ import annotations

import random
import string
from collections.abc import Collection, Sequence
from dataclasses import dataclass

LOSING_FIELDS = ("verb", "coin", "coins")
ROLE_LABELS = ("Player ONE", "Player TWO")


@dataclass(frozen=True)
class Terms:
    """The words of one example: game, coin (singular, plural), verb (imperative, 3rd person)."""

    game: str = "nim"
    coin: str = "coin"
    coins: str = "coins"
    verb: str = "take"
    verbs: str = "takes"


DEFAULT_TERMS = Terms()
GAME_WORDS = ("nim", "a game of nim", "the coin game", "a take-away game", "a subtraction game")
COIN_WORDS = (
    ("coin", "coins"), ("stone", "stones"), ("chip", "chips"), ("token", "tokens"),
    ("pebble", "pebbles"), ("marble", "marbles"), ("bean", "beans"), ("match", "matches"),
)  # fmt: skip
VERB_WORDS = (
    ("take", "takes"), ("remove", "removes"), ("pick up", "picks up"), ("grab", "grabs"),
    ("draw", "draws"),
)  # fmt: skip


def random_terms(rng: random.Random) -> Terms:
    """Terminology drawn independently from the game, coin and verb pools."""
    game = rng.choice(GAME_WORDS)
    coin, coins = rng.choice(COIN_WORDS)
    verb, verbs = rng.choice(VERB_WORDS)
    return Terms(game=game, coin=coin, coins=coins, verb=verb, verbs=verbs)


def count_text(n: int, terms: Terms) -> str:
    return f"{n} {terms.coin if n == 1 else terms.coins}"


def check_losing_answer(template: str) -> None:
    """Raise ValueError unless `template` is a non-empty, trimmed format string over the
    fields in `LOSING_FIELDS`."""
    if not template or template != template.strip():
        raise ValueError(
            f"losing_answer: expected non-empty text without surrounding spaces, got {template!r}"
        )
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:
        raise ValueError(f"losing_answer: not a valid format string: {err}") from err
    unknown = fields - set(LOSING_FIELDS)
    if unknown:
        raise ValueError(
            f"losing_answer: unknown field(s) {sorted(unknown)}; allowed {list(LOSING_FIELDS)}"
        )


def answer_text(label_move: int | None, terms: Terms, losing_answer: str) -> str:
    """The target completion, with its leading space."""
    if label_move is None:
        return " " + losing_answer.format(verb=terms.verb, coin=terms.coin, coins=terms.coins)
    return f" {terms.verb} {count_text(label_move, terms)}"


def candidate_answers(max_remove: int, terms: Terms, losing_answer: str) -> list[str]:
    """All max_remove + 1 answers, in order: take 1 .. take max_remove, then the losing one."""
    answers = [answer_text(k, terms, losing_answer) for k in range(1, max_remove + 1)]
    answers.append(answer_text(None, terms, losing_answer))
    if len(set(answers)) != len(answers):
        raise ValueError(
            f"losing_answer: {answers[-1].strip()!r} coincides with a winning-move answer"
        )
    return answers


def render_prompt(
    initial_pile: int,
    moves: Sequence[int],
    max_remove: int,
    names: Sequence[str],
    terms: Terms,
    masked: Collection[int] | None = None,
) -> str:
    """The prompt for the position after `moves`; the first player moves first."""
    lines = [f"You are playing {terms.game}. There are {count_text(initial_pile, terms)}."]
    if masked is None:
        lines.append(f"{names[0]} and {names[1]} take turns.")
    else:
        lines.append(
            f"{ROLE_LABELS[0]} is {names[0]} and {ROLE_LABELS[1]} is {names[1]}. They take turns."
        )
    lines.append(
        f"Each player can {terms.verb} between 1 and {max_remove} {terms.coins} on their turn."
    )
    if moves:
        lines += ["", "So far:"]
        for i, amount in enumerate(moves):
            actor = names[i % 2] if masked is None or i in masked else ROLE_LABELS[i % 2]
            lines.append(f"{actor} {terms.verbs} {count_text(amount, terms)}.")
    lines += ["", f"Now it's {names[len(moves) % 2]}'s turn."]
    return "\n".join(lines)
