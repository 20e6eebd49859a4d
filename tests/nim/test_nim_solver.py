from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metaexamples.nim.solver import is_losing, legal_moves, play, winning_move


@cache
def wins(pile: int, max_remove: int) -> bool:
    """Brute-force minimax: can the player to move force taking the last coin?"""
    return any(not wins(pile - k, max_remove) for k in range(1, min(max_remove, pile) + 1))


@pytest.mark.parametrize("max_remove", range(1, 9))
def test_solver_agrees_with_minimax_exhaustively(max_remove):
    for pile in range(0, 41):
        assert is_losing(pile, max_remove) == (not wins(pile, max_remove))
        move = winning_move(pile, max_remove)
        if wins(pile, max_remove):
            assert move is not None and 1 <= move <= min(max_remove, pile)
            assert not wins(pile - move, max_remove)
            # the winning move is the only one
            others = [k for k in legal_moves(pile, max_remove) if not wins(pile - k, max_remove)]
            assert others == [move]
        else:
            assert move is None


@given(st.integers(1, 10_000), st.integers(1, 50))
def test_winning_move_leaves_a_multiple_of_max_remove_plus_one(pile, max_remove):
    move = winning_move(pile, max_remove)
    if move is None:
        assert pile % (max_remove + 1) == 0
    else:
        assert 1 <= move <= max_remove
        assert (pile - move) % (max_remove + 1) == 0


def test_examples():
    assert winning_move(10, 3) == 2
    assert winning_move(8, 3) is None
    assert winning_move(0, 3) is None and is_losing(0, 3)
    assert list(legal_moves(2, 5)) == [1, 2]


def test_play_checks_legality():
    assert play(10, [3, 1, 2], 3) == 4
    with pytest.raises(ValueError, match=r"moves\[1\]"):
        play(10, [3, 4], 3)
    with pytest.raises(ValueError, match=r"moves\[0\]"):
        play(2, [3], 3)
    with pytest.raises(ValueError, match="moves"):
        play(5, [0], 3)


@pytest.mark.parametrize("pile,max_remove", [(-1, 3), (5, 0), (True, 3), (2.0, 3)])
def test_rejects_bad_arguments(pile, max_remove):
    with pytest.raises(ValueError):
        winning_move(pile, max_remove)
