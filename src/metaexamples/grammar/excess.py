"""Excess NLL over every length: KL(generator || model), in nats per string.

The generator draws a length L with probability P(L), then a uniform valid string of that
length, so

    KL = sum_L P(L) * mean over the valid strings x of length L of (log p(x) - log q(x)).

Short lengths have few strings (g3: 5 of length 1, 25 of length 3), too few for the
held-out splits to hold more than one or two, and none at some lengths. There the mean is
computed **exactly**, over every valid string (`exact_rows`: lengths with at most
`exact_max_strings` strings). At the other lengths it is estimated from the held-out
strings, a uniform sample of that length's strings; the interval (`stats.stratified_mean`)
has a stratum per estimated length and none for the exact ones.

The same estimator gives the learning curve (`curve_summaries`): the excess NLL of the
val split at every evaluation of a training run, and two summaries of it, the mean over
synthetic tokens (the area under the curve divided by its span) and the synthetic tokens
needed to reach a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metaexamples import stats
from metaexamples.grammar.documents import example_text

EXACT_SET = "exact"  # the split name of the enumerated strings in scores.jsonl


def exact_lengths(grammar, max_strings: int) -> list[int]:
    """The lengths whose every valid string is scored: at most `max_strings` of them.

    >>> from metaexamples.grammar.languages import make_grammar
    >>> exact_lengths(make_grammar("g3", ("a", "b", "c", "d", "e"), 1, 12), 256)
    [1, 2, 3, 4, 5, 6]
    """
    return [n for n in grammar.lengths() if grammar.count(n) <= max_strings]


def exact_rows(grammar, max_strings: int) -> list[dict[str, Any]]:
    """Every valid string at the `exact_lengths`, as evaluation rows (valid, no negatives)."""
    rows = []
    for n in exact_lengths(grammar, max_strings):
        for symbols in grammar.strings_of_length(n):
            text = example_text(grammar.name, symbols)
            rows.append({"text": text, "symbols": symbols, "valid": True, "negative_type": None,
                         "logp_true": grammar.logp(symbols), "pair_text": None})
    return rows


def exact_means(lengths: Sequence[int], excess: Sequence[float]) -> dict[int, float]:
    """Per length, the mean excess over the enumerated strings (every string of it)."""
    lengths = np.asarray(lengths, dtype=int)
    excess = np.asarray(excess, dtype=float)
    return {int(n): float(excess[lengths == n].mean()) for n in np.unique(lengths)}


def excess_nll(
    lengths: Sequence[int], excess: Sequence[float], distribution: Mapping[int, float],
    exact: Mapping[int, float] | None = None,
) -> stats.Test:
    """KL estimate over every length of `distribution`: `exact` per-length means where
    given, the mean of held-out `excess` values elsewhere; NaN if a length has neither.

    >>> t = excess_nll([3, 3], [1.0, 3.0], {1: 0.5, 3: 0.5}, exact={1: 0.5})
    >>> round(t.interval.estimate, 3)
    1.25
    """
    exact = dict(exact or {})
    held_out = [(n, e) for n, e in zip(lengths, excess, strict=True) if int(n) not in exact]
    return stats.stratified_mean([e for _, e in held_out], [int(n) for n, _ in held_out],
                                 {int(n): float(p) for n, p in distribution.items()}, exact)


def per_length(
    lengths: Sequence[int], excess: Sequence[float], distribution: Mapping[int, float],
    exact: Mapping[int, float] | None = None, exact_counts: Mapping[int, int] | None = None,
) -> dict[int, tuple[float, int]]:
    """{L: (mean excess, number of strings behind it)} for every length of `distribution`."""
    exact = exact or {}
    exact_counts = exact_counts or {}
    lengths = np.asarray(lengths, dtype=int)
    excess = np.asarray(excess, dtype=float)
    out = {}
    for n in sorted(distribution):
        if n in exact:
            out[int(n)] = (float(exact[n]), int(exact_counts.get(n, 0)))
        else:
            at = excess[lengths == n]
            out[int(n)] = (float(at.mean()) if len(at) else math.nan, len(at))
    return out


# -- learning curves ----------------------------------------------------------------------


def trapezoid_mean(x: Sequence[float], y: np.ndarray) -> np.ndarray:
    """The mean of y over [x[0], x[-1]] by the trapezoid rule (y: points x ... along axis 0).

    >>> round(trapezoid_mean([0.0, 1.0, 3.0], np.array([4.0, 2.0, 2.0])).item(), 4)  # (3 + 4) / 3
    2.3333
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    span = x[-1] - x[0]
    if len(x) < 2 or span <= 0:
        return y[-1]
    widths = np.diff(x).reshape(-1, *([1] * (y.ndim - 1)))
    return ((y[1:] + y[:-1]) / 2 * widths).sum(axis=0) / span


def tokens_to_threshold(tokens: Sequence[float], values: Sequence[float],
                        threshold: float) -> float:
    """Tokens at which the curve first falls to `threshold` (linear between evaluations);
    NaN when it never does.

    >>> tokens_to_threshold([0, 100, 200], [50.0, 10.0, 2.0], 6.0)
    150.0
    """
    for i, (t, v) in enumerate(zip(tokens, values, strict=True)):
        if v <= threshold:
            if i == 0:
                return float(t)
            t0, v0 = tokens[i - 1], values[i - 1]
            return float(t0 + (t - t0) * (v0 - threshold) / (v0 - v))
    return math.nan


def curve_estimate(curve: Mapping[str, Any], values: Sequence[float]) -> stats.Test:
    """The excess NLL estimate from one value per curve string (its excess at one step, or
    any linear summary of its curve): exact lengths averaged, the others stratified."""
    lengths = np.asarray([int(n) for n in curve["lengths"]])
    is_exact = np.asarray(curve["exact"], dtype=bool)
    values = np.asarray(values, dtype=float)
    distribution = {int(k): float(v) for k, v in curve["length_distribution"].items()}
    exact = exact_means(lengths[is_exact], values[is_exact]) if is_exact.any() else {}
    return excess_nll(lengths[~is_exact], values[~is_exact], distribution, exact)


def curve_points(curve: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, list[stats.Test]]:
    """(synthetic tokens, per-string excess [steps x strings], the estimate per step) of a
    learning curve record written by training (`training/lm.py`)."""
    tokens = np.asarray(curve["synthetic_tokens"], dtype=float)
    excess = np.asarray(curve["excess"], dtype=float)
    return tokens, excess, [curve_estimate(curve, row) for row in excess]


def per_string_area(curve: Mapping[str, Any]) -> np.ndarray:
    """Each curve string's mean excess over synthetic tokens, from the first evaluation
    after step 0 to the end (empty when there is none)."""
    tokens = np.asarray(curve["synthetic_tokens"], dtype=float)
    keep = tokens > 0
    if not keep.any():
        return np.array([])
    return trapezoid_mean(tokens[keep], np.asarray(curve["excess"], dtype=float)[keep])


def curve_area_test(curve: Mapping[str, Any]) -> stats.Test:
    """Mean val excess NLL over synthetic tokens from the first evaluation after step 0
    to the end, with its interval over the held-out val strings (a linear functional of
    every string's curve, so the stratified interval applies to each string's mean)."""
    area = per_string_area(curve)
    if not len(area):
        return stats.stratified_mean([], [], {})
    return curve_estimate(curve, area)


def curve_summaries(curve: Mapping[str, Any], threshold: float) -> dict[str, float]:
    """The summary's learning-speed metrics of one run."""
    tokens, _, points = curve_points(curve)
    values = [p.interval.estimate for p in points]
    return {
        "curve_mean_excess_nll": curve_area_test(curve).interval.estimate,
        "tokens_to_threshold": tokens_to_threshold(tokens, values, threshold),
        "curve_final_excess_nll": values[-1] if values else math.nan,
    }


PER_STRING = "val_excess_per_string"  # a training history key: one value per curve string


@dataclass(frozen=True)
class CurveStrings:
    """The strings a learning curve scores at every evaluation: every string of the exact
    lengths, then the valid val strings of the other lengths."""

    grammar: str
    rows: list[dict[str, Any]]
    exact: list[bool]
    distribution: dict[int, float]

    @classmethod
    def from_files(cls, manifest_path: Path, val_path: Path, max_strings: int) -> CurveStrings:
        from metaexamples.grammar.languages import make_grammar
        from metaexamples.io import DataFileError, read_json, read_jsonl

        manifest = read_json(manifest_path)
        try:
            grammar = make_grammar(manifest["grammar"], tuple(manifest["alphabet"]),
                                   int(manifest["min_length"]), int(manifest["max_length"]))
        except KeyError as err:
            raise DataFileError(f"{manifest_path}: missing key {err}") from err
        enumerated = exact_rows(grammar, max_strings)
        covered = {len(r["symbols"]) for r in enumerated}
        val = [{"text": r["text"], "symbols": r["symbols"], "valid": True,
                "negative_type": None, "logp_true": r["logp_true"]}
               for r in read_jsonl(val_path, required=("text", "symbols", "valid", "logp_true"))
               if r["valid"] and len(r["symbols"]) not in covered]
        return cls(grammar.name, enumerated + val, [True] * len(enumerated) + [False] * len(val),
                   {int(k): float(v) for k, v in grammar.length_distribution().items()})

    def score(self, model, tokenizer, batch_size: int) -> dict[str, Any]:
        """One curve point: the excess NLL estimate and every string's excess."""
        from metaexamples.grammar import scoring

        encoded = scoring.encode_eval_rows(tokenizer, self.grammar, self.rows)
        scores = scoring.score_encoded(model, encoded, tokenizer.pad_token_id, batch_size,
                                       desc="scoring the val curve")
        per_string = [r["logp_true"] - sc.logprob for r, sc in zip(self.rows, scores,
                                                                    strict=True)]
        return {"val_excess_nll": self.estimate(per_string), PER_STRING: per_string}

    def estimate(self, per_string: Sequence[float]) -> float:
        record = {"lengths": [len(r["symbols"]) for r in self.rows], "exact": self.exact,
                  "length_distribution": self.distribution}
        return curve_estimate(record, per_string).interval.estimate

    def record(self, history: Sequence[Mapping[str, Any]], synthetic_share: float
               ) -> dict[str, Any]:
        """The learning curve file of a run (`curve_summaries` reads it)."""
        points = [h for h in history if PER_STRING in h]
        return {
            "grammar": self.grammar,
            "texts": [r["text"] for r in self.rows],
            "lengths": [len(r["symbols"]) for r in self.rows],
            "exact": self.exact,
            "length_distribution": {str(k): v for k, v in sorted(self.distribution.items())},
            "steps": [h["step"] for h in points],
            "synthetic_tokens": [h["tokens"] * synthetic_share for h in points],
            "excess_nll": [h["val_excess_nll"] for h in points],
            "excess": [h[PER_STRING] for h in points],
        }
