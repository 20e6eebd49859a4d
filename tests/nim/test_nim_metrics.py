import math

import numpy as np
import pytest

from metaexamples.nim.metrics import (
    accuracy_from_confusion,
    candidate_index,
    candidate_labels,
    candidate_probabilities,
    confusion_matrix,
    exact_match,
    label_index,
    rank_classification,
    truncate_at,
)


def test_exact_match_on_ids():
    assert exact_match([5, 6, 7], [5, 6, 7])
    assert not exact_match([5, 6], [5, 6, 7])
    assert not exact_match([5, 6, 7, 8], [5, 6, 7])
    assert exact_match([5, 6, 7, 0, 9], [5, 6, 7], stop_ids=[0])
    assert exact_match(np.array([1, 2]), (1, 2))
    assert truncate_at([1, 2, 3, 4], [3, 9]) == [1, 2]


def test_candidate_indices():
    assert [candidate_index(k, 4) for k in (1, 2, 3, 4, None)] == [0, 1, 2, 3, 4]
    assert label_index({"label_move": None, "max_remove": 3}) == 3
    assert candidate_labels(3) == ["1", "2", "3", "lose"]
    with pytest.raises(ValueError, match="label_move"):
        candidate_index(5, 4)


def test_rank_classification():
    assert rank_classification([-3.0, -1.0, -2.0]) == 1
    assert rank_classification([-1.0, -1.0]) == 0  # ties: first
    assert rank_classification([-math.inf, -5.0]) == 1
    with pytest.raises(ValueError):
        rank_classification([])
    with pytest.raises(ValueError):
        rank_classification([0.0, float("nan")])


def test_candidate_probabilities():
    probs = candidate_probabilities([math.log(0.2), math.log(0.6), math.log(0.2)])
    assert probs == pytest.approx([0.2, 0.6, 0.2])
    assert candidate_probabilities([-1000.0, -1000.0]) == pytest.approx([0.5, 0.5])


def test_confusion_matrix():
    m = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert accuracy_from_confusion(m) == pytest.approx(4 / 6)
    assert math.isnan(accuracy_from_confusion(np.zeros((2, 2), dtype=int)))
    with pytest.raises(ValueError, match="out of range"):
        confusion_matrix([3], [0], 3)
    with pytest.raises(ValueError, match="length"):
        confusion_matrix([0, 1], [0], 3)
