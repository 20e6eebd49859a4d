"""Aggregation: one row per (grammar, condition, seed), then means with intervals.

`run_row` flattens one run's evaluation outputs (`perplexity_metrics.json`,
`generation_metrics.json`) and training facts (`train_metrics.json`, read defensively)
into a flat dict: the test-split metrics, canonical perplexity, generation metrics,
each with its bootstrap interval over strings as ``<metric>_ci_low`` /
``<metric>_ci_high``. The untrained starting model gives the ``baseline`` row (step 0).

`by_condition` turns those rows into a long table, one row per (grammar, condition,
metric): the mean over seeds with a 95 % percentile-bootstrap interval across seeds, or,
with a single seed, the run's own value and its interval across strings.
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

from metaexamples.grammar import metrics
from metaexamples.io import DataFileError, read_json

log = logging.getLogger(__name__)

BASELINE = "baseline"
HEADLINE_SPLIT = "test"
ID_COLUMNS = ("grammar", "condition", "seed")
FACT_COLUMNS = ("model", "steps", "tokens_seen", "synthetic_share", "train_wall_seconds",
                "train_tokens_per_s")
CI_LOW, CI_HIGH = "_ci_low", "_ci_high"
# headline metrics, in plotting order, with the direction that is better
HEADLINE_METRICS: dict[str, str] = {
    "excess_nll": "lower",
    "minimal_pair_accuracy": "higher",
    "auroc": "higher",
    "auroc_minimal_edit": "higher",
    "canonical_perplexity": "lower",
    "format_validity": "higher",
    "rule_validity": "higher",
    "rule_validity_given_format": "higher",
}
# candidate keys of each run fact in train_metrics.json, first match wins
FACT_KEYS: dict[str, tuple[str, ...]] = {
    "model": ("model", "model_name", "base_model"),
    "steps": ("steps", "global_step", "max_steps", "step"),
    "tokens_seen": ("tokens_seen", "tokens", "train_tokens"),
    "synthetic_share": ("achieved_synthetic_share", "synthetic_token_share", "synthetic_share",
                        "synthetic_fraction"),
    "train_wall_seconds": ("wall_time_s", "wall_time_seconds", "wall_seconds", "wall_time",
                           "train_seconds", "elapsed_seconds"),
    "train_tokens_per_s": ("tokens_per_s", "tokens_per_second"),
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


def find_fact(record: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """The first of `keys` found in `record` or in one of its nested mappings."""
    for key in keys:
        if key in record and not isinstance(record[key], Mapping):
            return record[key]
    for value in record.values():
        if isinstance(value, Mapping):
            found = find_fact(value, keys)
            if found is not None:
                return found
    return None


def run_facts(train_metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {name: find_fact(train_metrics, keys) for name, keys in FACT_KEYS.items()}


def flatten_perplexity(record: Mapping[str, Any], split: str = HEADLINE_SPLIT) -> dict[str, Any]:
    """Metrics of one split plus canonical perplexity, with their intervals."""
    splits = record.get("splits", {})
    if split not in splits:
        raise KeyError(f"no {split!r} split in the perplexity metrics (have {sorted(splits)})")
    out: dict[str, Any] = dict(splits[split])
    out |= record.get("canonical", {})
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
    """One summary row from a run directory (`baseline`: no training facts, step 0)."""
    eval_dir = eval_dir or run_dir / "eval"
    ppl = _read(eval_dir / "perplexity_metrics.json")
    gen = _read(eval_dir / "generation_metrics.json")
    for path, rec in ((eval_dir / "perplexity_metrics.json", ppl),
                      (eval_dir / "generation_metrics.json", gen)):
        if rec.get("grammar") not in (None, grammar):
            raise DataFileError(f"{path}: is for grammar {rec.get('grammar')!r}, not {grammar!r}")
    if condition == BASELINE:
        facts: dict[str, Any] = {"model": None, "steps": 0, "tokens_seen": 0,
                                 "synthetic_share": None, "train_wall_seconds": 0.0,
                                 "train_tokens_per_s": None}
    else:
        facts = run_facts(_read(run_dir / "train_metrics.json"))
    if not facts.get("model"):
        facts["model"] = model_name(ppl.get("model_dir"))
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
    if "seed" in out.columns:  # integers, empty for the baseline
        out["seed"] = pd.to_numeric(out["seed"]).astype("Int64")
    return out


def condition_order(conditions: Iterable[str]) -> list[str]:
    """Baseline first, then the conditions in the order given (duplicates dropped)."""
    seen = list(dict.fromkeys(conditions))
    return ([BASELINE] if BASELINE in seen else []) + [c for c in seen if c != BASELINE]


def grammar_summary(
    grammar: str, run_dirs: Sequence[Path], baseline_dir: Path | None
) -> pd.DataFrame:
    rows = []
    if baseline_dir is not None:
        rows.append(run_row(grammar, BASELINE, None, baseline_dir))
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
    skip = {*ID_COLUMNS, "model"}
    return [c for c in frame.columns
            if c not in skip and not c.endswith((CI_LOW, CI_HIGH))
            and pd.api.types.is_numeric_dtype(frame[c])]


def by_condition(
    frame: pd.DataFrame, rng: np.random.Generator, resamples: int = 1000, level: float = 0.95
) -> pd.DataFrame:
    """Long table: mean and interval of every metric per (grammar, condition)."""
    out = []
    for (grammar, condition), group in frame.groupby(["grammar", "condition"], sort=False):
        for metric in metric_columns(frame):
            values = group[metric].to_numpy(float)
            finite = values[~np.isnan(values)]
            rec: dict[str, Any] = {"grammar": grammar, "condition": condition, "metric": metric,
                                   "n_seeds": len(finite)}
            if len(finite) >= 2:
                mean, lo, hi = metrics.mean_interval(finite, rng, resamples, level)
                rec |= {"mean": mean, "ci_low": lo, "ci_high": hi, "interval": "seeds"}
            elif len(finite) == 1:
                i = int(np.flatnonzero(~np.isnan(values))[0])
                lo = _cell(group, metric + CI_LOW, i)
                hi = _cell(group, metric + CI_HIGH, i)
                rec |= {"mean": float(finite[0]), "ci_low": lo, "ci_high": hi,
                        "interval": "strings" if not math.isnan(lo) else "none"}
            else:
                rec |= {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                        "interval": "none"}
            out.append(rec)
    cols = ["grammar", "condition", "metric", "mean", "ci_low", "ci_high", "n_seeds", "interval"]
    return pd.DataFrame(out, columns=cols)


def _cell(group: pd.DataFrame, column: str, i: int) -> float:
    if column not in group.columns:
        return math.nan
    value = group[column].iloc[i]
    return float(value) if value is not None and not pd.isna(value) else math.nan


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    from metaexamples.io import write_text

    write_text(path, frame.to_csv(index=False, float_format="%.10g"))
