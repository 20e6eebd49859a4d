"""Per-experiment leakage documents and the cross-experiment Nim summary table.

`leakage_document` runs the leakage measurements and the gate of one experiment and
returns what ``results/nim/{experiment}/leakage.json`` holds. `summary_rows` turns one
experiment's accuracy table and leakage document into rows of ``results/nim/summary.csv``:
one per eval set, at the final checkpoint, with the best step and the leakage headline
numbers beside the accuracies.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from metaexamples.nim.experiments import NimExperiment
from metaexamples.nim.leakage import leakage_gate, leakage_report

Row = Mapping[str, Any]

SUMMARY_COLUMNS = (
    "experiment", "dataset", "step", "checkpoint", "n", "exact_match", "answer_prefix_match",
    "rank_accuracy", "gold_probability", "best_exact_match", "best_step", "base_exact_match",
    "n_train", "exact_overlap_fraction", "normalised_overlap_fraction", "pile_overlap_fraction",
    "names_only_accuracy", "names_only_advantage", "name_label_mi_bits_excess", "leakage_passed",
)  # fmt: skip
LEAKAGE_HEADLINES = (
    "exact_overlap_fraction", "normalised_overlap_fraction", "pile_overlap_fraction",
    "names_only_accuracy", "names_only_advantage",
)  # fmt: skip


def leakage_document(
    experiment: NimExperiment,
    train_rows: Sequence[Row],
    eval_rows_by_name: Mapping[str, Sequence[Row]],
) -> dict[str, Any]:
    """The leakage report of one experiment, its thresholds, violations and verdict."""
    report = leakage_report(train_rows, eval_rows_by_name, seed=experiment.settings.seed)
    violations = leakage_gate(report, experiment.thresholds)
    return {
        "experiment": experiment.name,
        "preset": experiment.preset,
        "passed": not violations,
        "violations": violations,
        "thresholds": dataclasses.asdict(experiment.thresholds),
        **report,
    }


def _number(value: Any) -> float:
    return float(value) if value not in (None, "") else math.nan


def summary_rows(
    experiment: str, table: Sequence[Row], leakage: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One row per eval set: accuracies at the last step, the best step's exact match,
    step 0's (the base model, when evaluated), and the leakage headline numbers."""
    out = []
    datasets = sorted({str(r["dataset"]) for r in table})
    for dataset in datasets:
        rows = sorted((r for r in table if r["dataset"] == dataset), key=lambda r: int(r["step"]))
        final = rows[-1]
        best = max(rows, key=lambda r: (_number(r["exact_match"]), -int(r["step"])))
        base = next((r for r in rows if int(r["step"]) == 0), None)
        headline = leakage.get("eval", {}).get(dataset, {})
        out.append({
            "experiment": experiment,
            "dataset": dataset,
            "step": int(final["step"]),
            "checkpoint": final["checkpoint"],
            "n": int(final["n"]),
            **{k: _number(final[k]) for k in ("exact_match", "answer_prefix_match",
                                              "rank_accuracy", "gold_probability")},
            "best_exact_match": _number(best["exact_match"]),
            "best_step": int(best["step"]),
            "base_exact_match": _number(base["exact_match"]) if base else math.nan,
            "n_train": leakage.get("train", {}).get("n"),
            **{k: headline.get(k) for k in LEAKAGE_HEADLINES},
            "name_label_mi_bits_excess": leakage.get("train", {}).get("name_label_mi_bits_excess"),
            "leakage_passed": leakage.get("passed"),
        })  # fmt: skip
    return out
