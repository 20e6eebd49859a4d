"""Pure scoring functions for Nim evaluation.

Every example has max_remove + 1 candidate answers, in a fixed order: take 1 .. take
max_remove, then the losing answer (the row's ``candidates``). A label maps to its index::

    >>> candidate_index(2, 3), candidate_index(None, 3)
    (1, 3)
    >>> rank_classification([-4.0, -0.5, -2.0, -9.0])
    1
    >>> confusion_matrix([0, 1, 1], [0, 1, 0], 2).tolist()
    [[1, 0], [1, 1]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from metaexamples.nim.names import LOSE_KEY


def _ids(values: Iterable[Any]) -> list[int]:
    return [int(v) for v in values]


def truncate_at(ids: Iterable[Any], stop_ids: Iterable[int] = ()) -> list[int]:
    """`ids` up to (not including) the first id in `stop_ids`."""
    stops = set(_ids(stop_ids))
    out = []
    for i in _ids(ids):
        if i in stops:
            break
        out.append(i)
    return out


def exact_match(
    pred_ids: Iterable[Any], gold_ids: Iterable[Any], stop_ids: Iterable[int] = ()
) -> bool:
    """True when the generated ids, cut at the first stop id, equal the gold answer's ids.

    Compared on token ids, not decoded text; works for lists, tuples, numpy arrays and
    1-d torch tensors.
    """
    return truncate_at(pred_ids, stop_ids) == truncate_at(gold_ids, stop_ids)


def candidate_index(label_move: int | None, max_remove: int) -> int:
    """Position of a label among the candidates (the losing answer is last)."""
    if label_move is None:
        return max_remove
    if not 1 <= label_move <= max_remove:
        raise ValueError(f"label_move: expected 1..{max_remove} or None, got {label_move!r}")
    return label_move - 1


def label_index(row: Mapping[str, Any]) -> int:
    """`candidate_index` of a generated row."""
    return candidate_index(row["label_move"], row["max_remove"])


def candidate_labels(max_remove: int) -> list[str]:
    """Short names of the candidates: "1" .. str(max_remove), "lose"."""
    return [str(k) for k in range(1, max_remove + 1)] + [LOSE_KEY]


def _check_logprobs(candidate_logprobs: Sequence[float]) -> list[float]:
    values = [float(v) for v in candidate_logprobs]
    if not values:
        raise ValueError("candidate_logprobs: expected at least one candidate")
    if any(math.isnan(v) or v == math.inf for v in values):
        raise ValueError(f"candidate_logprobs: NaN or +inf in {values}")
    return values


def rank_classification(candidate_logprobs: Sequence[float]) -> int:
    """Index of the candidate with the highest total log-probability (ties: the first)."""
    values = _check_logprobs(candidate_logprobs)
    return max(range(len(values)), key=lambda i: (values[i], -i))


def candidate_probabilities(candidate_logprobs: Sequence[float]) -> list[float]:
    """The candidates' probabilities renormalised over the candidate set (a softmax)."""
    values = _check_logprobs(candidate_logprobs)
    top = max(values)
    if top == -math.inf:
        raise ValueError("candidate_logprobs: every candidate has probability zero")
    weights = [math.exp(v - top) for v in values]
    total = sum(weights)
    return [w / total for w in weights]


def confusion_matrix(
    gold_indices: Sequence[int], pred_indices: Sequence[int], n_candidates: int
) -> np.ndarray:
    """Counts ``[gold, predicted]`` over `n_candidates` classes."""
    if len(gold_indices) != len(pred_indices):
        raise ValueError(
            f"gold and predicted indices differ in length ({len(gold_indices)} vs "
            f"{len(pred_indices)})"
        )
    matrix = np.zeros((n_candidates, n_candidates), dtype=np.int64)
    for gold, pred in zip(gold_indices, pred_indices, strict=True):
        if not (0 <= gold < n_candidates and 0 <= pred < n_candidates):
            raise ValueError(f"index out of range 0..{n_candidates - 1}: gold={gold} pred={pred}")
        matrix[gold, pred] += 1
    return matrix


def accuracy_from_confusion(matrix: np.ndarray) -> float:
    """Share of the diagonal; NaN for an empty matrix."""
    total = int(matrix.sum())
    return float(np.trace(matrix)) / total if total else float("nan")
