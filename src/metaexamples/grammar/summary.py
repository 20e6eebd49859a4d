"""Aggregation: one row per (grammar, condition, seed), then means with intervals.

`run_row` flattens one run's evaluation outputs (`perplexity_metrics.json`,
`generation_metrics.json`) and training facts (`train_metrics.json`, each read by the
one key the trainer writes) into a flat dict: the test-split metrics, canonical
perplexity, generation metrics, each with its within-run interval as
``<metric>_ci_low`` / ``<metric>_ci_high``. Two reference rows bound every condition:
``baseline``, the untrained starting model (step 0), and ``oracle``, the grammar's
exact distribution (`oracle.GrammarOracle`), evaluated by the same code.

`by_condition` turns those rows into a long table, one row per (grammar, condition,
metric): with two or more seeds, the mean over seeds and a Student-t interval with
n - 1 degrees of freedom (`stats.t_interval`); with one seed (and for the reference
rows), the run's own value and its within-run interval (`metrics.within_run_interval`).
Each row names its interval method and its n; a per-type cell with fewer than
`metrics.MIN_CELL` strings gets no interval.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaexamples import stats
from metaexamples.grammar import metrics
from metaexamples.io import DataFileError, read_json

log = logging.getLogger(__name__)

BASELINE = "baseline"
ORACLE = "oracle"
REFERENCES = (BASELINE, ORACLE)  # evaluated once per grammar, no training
HEADLINE_SPLIT = "test"
ID_COLUMNS = ("grammar", "condition", "seed")
FACT_COLUMNS = ("model", "steps", "tokens_seen", "synthetic_share", "train_wall_seconds",
                "train_tokens_per_s")
CI_LOW, CI_HIGH = "_ci_low", "_ci_high"
MISSING_LENGTHS = "excess_nll_missing_lengths"
# headline metrics, in plotting order, with the direction that is better
HEADLINE_METRICS: dict[str, str] = {
    "excess_nll": "lower",
    "minimal_pair_accuracy": "higher",
    "auroc": "higher",
    "auroc_minimal_edit": "higher",
    "canonical_perplexity": "lower",
    "format_validity": "higher",
    "rule_validity": "higher",
    "rule_validity_above_chance": "higher",
}
# summary column <- the key train_metrics.json holds it under (training/run_files.py, lm.py)
TRAIN_FACTS: dict[str, str] = {
    "steps": "steps",
    "tokens_seen": "tokens_seen",
    "synthetic_share": "achieved_synthetic_share",
    "train_wall_seconds": "wall_time_s",
    "train_tokens_per_s": "tokens_per_s",
}
RUN_DIR = re.compile(r"^seed(\d+)$")


def parse_run_dir(run_dir: Path) -> tuple[str, int]:
    """(condition, seed) from a run directory named ``.../{condition}/seed{seed}``.

    >>> parse_run_dir(Path("results/runs/g2/meta_5pct/seed3"))
    ('meta_5pct', 3)
    """
    m = RUN_DIR.match(run_dir.name)
    if not m:
        raise ValueError(f"{run_dir}: a run directory must be named .../<condition>/seed<N>")
    return run_dir.parent.name, int(m.group(1))


def run_facts(train_metrics: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The summary's training facts from one run's train_metrics.json."""
    missing = [key for key in TRAIN_FACTS.values() if key not in train_metrics]
    if missing:
        raise DataFileError(f"{path}: missing key(s) {missing}; was it written by `train`?")
    return {column: train_metrics[key] for column, key in TRAIN_FACTS.items()}


def flatten_perplexity(record: Mapping[str, Any], split: str = HEADLINE_SPLIT) -> dict[str, Any]:
    """Metrics of one split plus canonical perplexity, with their intervals."""
    splits = record.get("splits", {})
    if split not in splits:
        raise KeyError(f"no {split!r} split in the perplexity metrics (have {sorted(splits)})")
    out: dict[str, Any] = dict(splits[split])
    out |= record.get("canonical", {})
    missing = record.get(MISSING_LENGTHS, {}).get(split, [])
    out[MISSING_LENGTHS] = " ".join(str(n) for n in missing)
    for key, (lo, hi) in record.get("intervals", {}).items():
        name = key.split(".", 1)[1] if key.startswith(f"{split}.") else key
        if "." in name:
            continue  # another split's interval
        out[name + CI_LOW], out[name + CI_HIGH] = lo, hi
    return out


def flatten_generation(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(record.get("metrics", {}))
    for key, (lo, hi) in record.get("intervals", {}).items():
        out[key + CI_LOW], out[key + CI_HIGH] = lo, hi
    return out


def _read(path: Path) -> dict[str, Any]:
    record = read_json(path)
    if not isinstance(record, dict):
        raise DataFileError(f"{path}: expected a JSON object")
    return record


def run_row(
    grammar: str, condition: str, seed: int | None, run_dir: Path, eval_dir: Path | None = None
) -> dict[str, Any]:
    """One summary row from a run directory (a reference row has no training facts)."""
    eval_dir = eval_dir or run_dir / "eval"
    ppl = _read(eval_dir / "perplexity_metrics.json")
    gen = _read(eval_dir / "generation_metrics.json")
    for path, rec in ((eval_dir / "perplexity_metrics.json", ppl),
                      (eval_dir / "generation_metrics.json", gen)):
        if rec.get("grammar") not in (None, grammar):
            raise DataFileError(f"{path}: is for grammar {rec.get('grammar')!r}, not {grammar!r}")
    if condition in REFERENCES:
        facts: dict[str, Any] = {"steps": 0 if condition == BASELINE else None,
                                 "tokens_seen": 0 if condition == BASELINE else None,
                                 "synthetic_share": None, "train_wall_seconds": 0.0,
                                 "train_tokens_per_s": None}
    else:
        facts = run_facts(_read(run_dir / "train_metrics.json"), run_dir / "train_metrics.json")
    facts["model"] = ORACLE if ppl.get("oracle") else model_name(ppl.get("model_dir"))
    row: dict[str, Any] = {"grammar": grammar, "condition": condition, "seed": seed, **facts}
    row |= flatten_perplexity(ppl)
    row |= flatten_generation(gen)
    return row


def model_name(model_dir: str | None) -> str | None:
    """The model's name from its provenance file, else its directory name."""
    if not model_dir:
        return None
    from metaexamples.models import model_info

    return model_info(model_dir).get("name") or Path(model_dir).name


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Identity and fact columns first, then metrics (each followed by its interval)."""
    first = [c for c in (*ID_COLUMNS, *FACT_COLUMNS) if c in frame.columns]
    metric_cols = [c for c in frame.columns
                   if c not in first and not c.endswith((CI_LOW, CI_HIGH))]
    head = [m for m in HEADLINE_METRICS if m in metric_cols]
    rest = head + sorted(c for c in metric_cols if c not in head)
    cols = list(first)
    for c in rest:
        cols.append(c)
        cols += [c + s for s in (CI_LOW, CI_HIGH) if c + s in frame.columns]
    out = frame[cols].copy()
    order = {c: i for i, c in enumerate(condition_order(out["condition"]))}
    out = out.iloc[sorted(range(len(out)), key=lambda i: (
        str(out["grammar"].iloc[i]), order[out["condition"].iloc[i]]))]
    if "seed" in out.columns:  # integers, empty for the baseline
        out["seed"] = pd.to_numeric(out["seed"]).astype("Int64")
    return out


def condition_order(conditions: Iterable[str]) -> list[str]:
    """Baseline first, the conditions in the order given, the oracle last (no duplicates)."""
    seen = list(dict.fromkeys(conditions))
    middle = [c for c in seen if c not in REFERENCES]
    return ([BASELINE] if BASELINE in seen else []) + middle + (
        [ORACLE] if ORACLE in seen else [])


def grammar_summary(
    grammar: str, run_dirs: Sequence[Path], baseline_dir: Path | None,
    oracle_dir: Path | None = None,
) -> pd.DataFrame:
    """One grammar's rows: the baseline, every run, the oracle."""
    rows = []
    if baseline_dir is not None:
        rows.append(run_row(grammar, BASELINE, None, baseline_dir))
    if oracle_dir is not None:
        rows.append(run_row(grammar, ORACLE, None, oracle_dir))
    for run_dir in run_dirs:
        condition, seed = parse_run_dir(run_dir)
        rows.append(run_row(grammar, condition, seed, run_dir))
    if not rows:
        raise ValueError(f"{grammar}: no runs to summarise")
    return ordered(pd.DataFrame(rows))


def read_summaries(paths: Sequence[Path]) -> pd.DataFrame:
    frames = []
    for p in paths:
        if not Path(p).is_file():
            raise DataFileError(f"{p}: file not found")
        try:
            frames.append(pd.read_csv(p))
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
            raise DataFileError(f"{p}: not a summary CSV: {err}") from err
    return ordered(pd.concat(frames, ignore_index=True))


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric metric columns (counts, which become each row's n, excluded)."""
    skip = {*ID_COLUMNS, "model", "canonical_tokens", MISSING_LENGTHS}
    return [c for c in frame.columns
            if c not in skip and not c.startswith("n_") and c != "canonical_documents"
            and not c.endswith((CI_LOW, CI_HIGH)) and pd.api.types.is_numeric_dtype(frame[c])]


BY_CONDITION_COLUMNS = ["grammar", "condition", "metric", "mean", "ci_low", "ci_high", "n",
                        "interval", "n_seeds", "bounds", "note"]
WITHIN, BELOW_BASELINE, BEYOND_ORACLE = "within", "worse than baseline", "beyond oracle"
BOUNDED_METRICS = HEADLINE_METRICS | {"pair_accuracy": "higher"}  # what `bounds_check` checks


def by_condition(frame: pd.DataFrame) -> pd.DataFrame:
    """Long table: mean and interval of every metric per (grammar, condition).

    `interval` names the method: ``t`` (across seeds; `n` is the number of seeds), or the
    run's own within-run method (`n` is its number of strings, clusters or samples), or
    ``none``; `note` says why a cell has no interval.
    """
    out = []
    for (grammar, condition), group in frame.groupby(["grammar", "condition"], sort=False):
        for metric in metric_columns(frame):
            values = group[metric].to_numpy(float)
            finite = ~np.isnan(values)
            rec: dict[str, Any] = {"grammar": grammar, "condition": condition, "metric": metric,
                                   "n_seeds": int(finite.sum()), "note": ""}
            method, count_column = metrics.within_run_interval(metric)
            cell = _cell(group, count_column, int(np.argmax(finite)) if finite.any() else 0)
            if finite.sum() >= 2:
                iv = stats.t_interval(values[finite])
                rec |= {"mean": iv.estimate, "ci_low": iv.low, "ci_high": iv.high, "n": iv.n,
                        "interval": iv.method}
            elif finite.sum() == 1:
                i = int(np.flatnonzero(finite)[0])
                lo, hi = _cell(group, metric + CI_LOW, i), _cell(group, metric + CI_HIGH, i)
                rec |= {"mean": float(values[i]), "ci_low": lo, "ci_high": hi, "n": cell,
                        "interval": method if not math.isnan(lo) else "none"}
            else:
                rec |= {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": cell,
                        "interval": "none", "note": _why_no_value(condition, metric)}
            if cell < metrics.MIN_CELL and count_column.startswith("n_") and count_column not in (
                    "n_valid", "n_samples"):
                rec |= {"ci_low": math.nan, "ci_high": math.nan, "interval": "none",
                        "note": f"{count_column} = {cell:g} < {metrics.MIN_CELL}: no interval"}
            out.append(rec)
    table = pd.DataFrame(out, columns=BY_CONDITION_COLUMNS)
    table["bounds"] = bounds_check(table)
    return table


def bounds_check(table: pd.DataFrame) -> list[str]:
    """Where each trained condition's bounded metric lies against its grammar's bounds.

    ``within`` unless its interval lies wholly on the worse side of the step-0 baseline's
    (``worse than baseline``) or wholly beyond the oracle's (``beyond oracle``: a model
    better than the exact distribution means a wrong metric); a missing interval counts as
    its point. Empty for the reference rows, other metrics and cells without a value.
    """
    index = {(r.grammar, r.condition, r.metric): r for r in table.itertuples()}

    def span(row, sign: float) -> tuple[float, float]:
        """The row's interval (its point where it has none), larger = better."""
        lo, hi = row.ci_low, row.ci_high
        ends = (row.mean, row.mean) if math.isnan(lo) or math.isnan(hi) else (lo, hi)
        return min(sign * v for v in ends), max(sign * v for v in ends)

    out = []
    for r in table.itertuples():
        direction = BOUNDED_METRICS.get(r.metric)
        if direction is None or r.condition in REFERENCES or math.isnan(r.mean):
            out.append("")
            continue
        sign = 1.0 if direction == "higher" else -1.0
        lo, hi = span(r, sign)
        base = index.get((r.grammar, BASELINE, r.metric))
        best = index.get((r.grammar, ORACLE, r.metric))
        verdict = WITHIN
        if base is not None and not math.isnan(base.mean) and hi < span(base, sign)[0]:
            verdict = BELOW_BASELINE
        if best is not None and not math.isnan(best.mean) and lo > span(best, sign)[1]:
            verdict = BEYOND_ORACLE
        out.append(verdict)
    return out


def _why_no_value(condition: str, metric: str) -> str:
    if condition == ORACLE and metric.startswith("canonical_"):
        return "not computed for the oracle: it models grammar strings only"
    return "no value (not defined for this grammar or run)"


def _cell(group: pd.DataFrame, column: str, i: int) -> float:
    if column not in group.columns:
        return math.nan
    value = group[column].iloc[i]
    return float(value) if value is not None and not pd.isna(value) else math.nan


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    from metaexamples.io import write_text

    write_text(path, frame.to_csv(index=False, float_format="%.10g"))
