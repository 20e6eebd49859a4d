"""Per-experiment leakage documents and the cross-experiment Nim summary table.

`leakage_document` runs the leakage measurements and the gate of one experiment and
returns what ``results/nim/{experiment}/leakage.json`` holds.

`seed_rows` turns one training run's accuracy table (every checkpoint x every held-out set)
into rows of ``results/nim/summary.csv``: the checkpoint is the one with the best exact
match on the validation set (``val``, disjoint from every eval set, so no eval example
takes part in the choice), and each eval set's exact match at that checkpoint comes with a
Wilson interval and the eval set's majority-answer rate (what always giving the most
common answer scores). `across_seed_rows` adds one row per (experiment, eval set) with
the mean over seeds and its Student-t interval.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaexamples.io import atomic_path, read_json, read_jsonl, write_json
from metaexamples.nim.experiments import NimExperiment
from metaexamples.nim.leakage import leakage_gate, leakage_report
from metaexamples.nim.settings import VAL_SET
from metaexamples.stats import t_interval, wilson_interval

log = logging.getLogger(__name__)

Row = Mapping[str, Any]

ALL_SEEDS = "all"
SUMMARY_COLUMNS = (
    "experiment", "dataset", "seed", "n_seeds", "n", "selected_step", "selected_checkpoint",
    "val_exact_match", "exact_match", "exact_match_low", "exact_match_high",
    "interval_method", "majority_rate", "above_majority", "answer_prefix_match",
    "rank_accuracy", "gold_probability", "final_step", "final_exact_match",
    "base_exact_match", "n_train", "exact_overlap_fraction", "normalised_overlap_fraction",
    "pile_overlap_fraction", "names_only_accuracy", "names_only_advantage",
    "name_label_mi_bits_excess", "leakage_passed",
)  # fmt: skip
LEAKAGE_HEADLINES = (
    "exact_overlap_fraction", "normalised_overlap_fraction", "pile_overlap_fraction",
    "names_only_accuracy", "names_only_advantage",
)  # fmt: skip
SAME_ACROSS_SEEDS = ("n", "majority_rate", "n_train", *LEAKAGE_HEADLINES,
                     "name_label_mi_bits_excess", "leakage_passed")  # fmt: skip
MEAN_ACROSS_SEEDS = ("val_exact_match", "answer_prefix_match", "rank_accuracy",
                     "gold_probability", "final_exact_match", "base_exact_match")  # fmt: skip


class LeakageGateError(ValueError):
    """The leakage gate's verdict stops the workflow; the message says why."""


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
        "expected_failure": experiment.thresholds.expected_failure,
        "violations": violations,
        "thresholds": dataclasses.asdict(experiment.thresholds),
        **report,
    }


def run_leakage_gate(
    experiment: NimExperiment, data_dir: str | os.PathLike[str], out: str | os.PathLike[str]
) -> dict[str, Any]:
    """Measure leakage between ``train.jsonl`` and every held-out set in `data_dir`, write
    the document to `out`, and return it.

    Raises `LeakageGateError` (after writing) when the gate fails, unless the experiment
    expects it to fail (``leakage.expected_failure``: a shortcut planted on purpose); an
    expected failure that does not happen raises too, since the planted shortcut is gone.
    """
    folder = Path(data_dir)
    train = read_jsonl(folder / "train.jsonl")
    held_out = {n: read_jsonl(folder / f"{n}.jsonl") for n in experiment.settings.heldout_set_names}
    document = leakage_document(experiment, train, held_out)
    write_json(out, document)
    where = f"nim.experiments.{experiment.name}.leakage"
    reason = experiment.thresholds.expected_failure
    if reason is None and not document["passed"]:
        raise LeakageGateError(
            f"leakage gate failed for experiment {experiment.name!r} (report: {out}):\n  "
            + "\n  ".join(document["violations"])
            + f"\nfix the data, or relax {where}.<threshold>"
        )
    if reason is not None and document["passed"]:
        raise LeakageGateError(
            f"leakage gate passed for experiment {experiment.name!r}, but {where}."
            f"expected_failure says it leaks ({reason}); report: {out}"
        )
    if reason is not None:
        log.warning("leakage gate failed for %s, as expected (%s):\n  %s", experiment.name,
                    reason, "\n  ".join(document["violations"]))  # fmt: skip
    else:
        log.info("leakage gate passed for %s (%s)", experiment.name, out)
    return document


def _number(value: Any) -> float:
    return float(value) if value not in (None, "") else math.nan


def select_step(table: Sequence[Row], by: str = VAL_SET) -> Row:
    """The row of dataset `by` with the highest exact match (ties: the earliest step)."""
    rows = [r for r in table if r["dataset"] == by]
    if not rows:
        raise ValueError(
            f"accuracy table: no rows for the validation set {by!r} (evaluate it with the "
            "eval sets: it chooses the checkpoint)"
        )
    return max(rows, key=lambda r: (_number(r["exact_match"]), -int(r["step"])))


def _at_step(rows: Sequence[Row], step: int, dataset: str) -> Row:
    found = [r for r in rows if int(r["step"]) == step]
    if not found:
        raise ValueError(f"accuracy table: {dataset!r} has no row at the selected step {step}")
    return found[0]


def seed_rows(
    experiment: str, seed: int, table: Sequence[Row], leakage: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One row per eval set of one run, at the checkpoint validation exact match chose."""
    chosen = select_step(table)
    step = int(chosen["step"])
    out = []
    for dataset in sorted({str(r["dataset"]) for r in table} - {VAL_SET}):
        rows = sorted((r for r in table if r["dataset"] == dataset), key=lambda r: int(r["step"]))
        at = _at_step(rows, step, dataset)
        base = next((r for r in rows if int(r["step"]) == 0), None)
        n = int(at["n"])
        interval = wilson_interval(int(at["exact_correct"]), n)
        majority = _number(at["majority_rate"])
        headline = leakage.get("eval", {}).get(dataset, {})
        out.append({
            "experiment": experiment, "dataset": dataset, "seed": seed, "n_seeds": 1, "n": n,
            "selected_step": step, "selected_checkpoint": chosen["checkpoint"],
            "val_exact_match": _number(chosen["exact_match"]),
            "exact_match": interval.estimate, "exact_match_low": interval.low,
            "exact_match_high": interval.high, "interval_method": interval.method,
            "majority_rate": majority, "above_majority": bool(interval.low > majority),
            **{k: _number(at[k]) for k in ("answer_prefix_match", "rank_accuracy",
                                           "gold_probability")},
            "final_step": int(rows[-1]["step"]),
            "final_exact_match": _number(rows[-1]["exact_match"]),
            "base_exact_match": _number(base["exact_match"]) if base else math.nan,
            "n_train": leakage.get("train", {}).get("n"),
            **{k: headline.get(k) for k in LEAKAGE_HEADLINES},
            "name_label_mi_bits_excess": leakage.get("train", {}).get("name_label_mi_bits_excess"),
            "leakage_passed": leakage.get("passed"),
        })  # fmt: skip
    return out


def across_seed_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """One row per (experiment, eval set): the mean over seeds of the validation-selected
    exact match with a Student-t interval (n - 1 degrees of freedom; NaN bounds for one
    seed), and the other accuracies' means."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row["experiment"], row["dataset"]), []).append(row)
    out = []
    for (experiment, dataset), group in groups.items():
        interval = t_interval([_number(r["exact_match"]) for r in group])
        first = group[0]
        out.append({
            "experiment": experiment, "dataset": dataset, "seed": ALL_SEEDS,
            "n_seeds": len(group), "selected_step": None, "selected_checkpoint": None,
            "exact_match": interval.estimate, "exact_match_low": interval.low,
            "exact_match_high": interval.high, "interval_method": interval.method,
            # undefined (empty) with one seed: a t interval needs two
            "above_majority": (None if math.isnan(interval.low)
                               else bool(interval.low > _number(first["majority_rate"]))),
            "final_step": None,
            **{k: first[k] for k in SAME_ACROSS_SEEDS},
            **{k: float(np.mean([_number(r[k]) for r in group])) for k in MEAN_ACROSS_SEEDS},
        })  # fmt: skip
    return out


def summary_rows(
    runs: Sequence[tuple[str, int, str | os.PathLike[str], str | os.PathLike[str]]],
) -> list[dict[str, Any]]:
    """Every run's rows (`seed_rows`) and the across-seed rows; each run is named with its
    files: (experiment, seed, its accuracy_table.csv, its experiment's leakage.json)."""
    rows: list[dict[str, Any]] = []
    for name, seed, table_path, leakage_path in runs:
        table = pd.read_csv(table_path)
        rows += seed_rows(name, int(seed), table.to_dict("records"), read_json(leakage_path))
    return rows + across_seed_rows(rows)


def write_summary(rows: Sequence[Row], out: str | os.PathLike[str]) -> Path:
    """`rows` as ``summary.csv`` (columns `SUMMARY_COLUMNS`; a header only when there are
    none, as in a run without Nim experiments), written atomically."""
    frame = pd.DataFrame(list(rows), columns=list(SUMMARY_COLUMNS))
    steps = ["selected_step", "final_step"]  # integers, blank on the across-seed rows
    frame[steps] = frame[steps].astype("Int64")
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    for row in rows:
        if row["seed"] == ALL_SEEDS:
            log.info("%s %s: exact match %.3f [%.3f, %.3f] over %d seed(s); majority rate %.3f",
                     row["experiment"], row["dataset"], row["exact_match"],
                     row["exact_match_low"], row["exact_match_high"], row["n_seeds"],
                     row["majority_rate"])  # fmt: skip
    log.info("wrote %s (%d rows)", out, len(rows))
    return Path(out)
