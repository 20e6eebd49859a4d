"""Single-pile subtraction game: who wins, and with which move.

Two players alternately take between 1 and `max_remove` coins from one pile; the player
who takes the last coin wins. A position is losing for the player to move exactly when the
pile is a multiple of ``max_remove + 1``; otherwise the winning move takes
``pile % (max_remove + 1)`` coins and leaves the opponent a multiple of ``max_remove + 1``::

    >>> winning_move(10, 3)
    2
    >>> winning_move(8, 3) is None
    True
    >>> is_losing(0, 3)
    True
"""

from __future__ import annotations

from collections.abc import Sequence


def _check(pile: int, max_remove: int) -> None:
    if isinstance(pile, bool) or not isinstance(pile, int) or pile < 0:
        raise ValueError(f"pile: expected an integer >= 0, got {pile!r}")
    if isinstance(max_remove, bool) or not isinstance(max_remove, int) or max_remove < 1:
        raise ValueError(f"max_remove: expected an integer >= 1, got {max_remove!r}")


def winning_move(pile: int, max_remove: int) -> int | None:
    """The number of coins that wins from `pile`, or None when every move loses."""
    _check(pile, max_remove)
    move = pile % (max_remove + 1)
    return move or None


def is_losing(pile: int, max_remove: int) -> bool:
    """True when the player to move loses against best play (pile 0: already lost)."""
    _check(pile, max_remove)
    return pile % (max_remove + 1) == 0


def legal_moves(pile: int, max_remove: int) -> range:
    """The amounts a player may take from `pile`: 1 .. min(max_remove, pile)."""
    _check(pile, max_remove)
    return range(1, min(max_remove, pile) + 1)


def play(initial_pile: int, moves: Sequence[int], max_remove: int) -> int:
    """The pile left after `moves`; raises ValueError on the first illegal move."""
    _check(initial_pile, max_remove)
    pile = initial_pile
    for i, amount in enumerate(moves):
        if amount not in legal_moves(pile, max_remove):
            raise ValueError(
                f"moves[{i}]: cannot take {amount!r} from a pile of {pile} "
                f"with max_remove={max_remove}"
            )
        pile -= amount
    return pile
