"""The summary table: one row per (grammar, condition, seed), read from declared files.

`run_row` flattens one run's evaluation outputs (`perplexity_metrics.json`,
`generation_metrics.json`), training facts (`train_metrics.json`, each read by the one key
the trainer writes) and learning-speed summaries (`learning_curve.json`, `excess`) into
a flat dict: the test-split metrics, canonical perplexity, generation metrics, each with
its within-run interval as ``<metric>_ci_low`` / ``<metric>_ci_high``. Two reference rows
bound every condition: ``baseline``, the untrained starting model (step 0), and
``oracle``, the grammar's exact distribution (`oracle.GrammarOracle`), evaluated by the
same code. Which file belongs to which run comes from the caller (`RunFiles`), never from
parsing a path. Aggregation over seeds is in `aggregate`, contrasts in `contrasts`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from metaexamples.grammar import excess
from metaexamples.grammar.metrics import HEADLINE_SPLIT
from metaexamples.io import DataFileError, read_json, write_text

log = logging.getLogger(__name__)

BASELINE = "baseline"
ORACLE = "oracle"
REFERENCES = (BASELINE, ORACLE)  # evaluated once per grammar, no training
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
# summary column <- the key train_metrics.json holds it under (training/lifecycle.py, lm.py)
TRAIN_FACTS: dict[str, str] = {
    "steps": "steps",
    "tokens_seen": "tokens_seen",
    "synthetic_share": "achieved_synthetic_share",
    "train_wall_seconds": "wall_time_s",
    "train_tokens_per_s": "tokens_per_s",
}
LEARNING_SPEED: dict[str, str] = {  # from the val curve (`excess.curve_summaries`)
    "curve_mean_excess_nll": "lower",
    "tokens_to_threshold": "lower",
}


@dataclass(frozen=True)
class RunFiles:
    """The files one summary row is read from (a reference row has no training files)."""

    condition: str
    seed: int | None
    perplexity: Path
    generation: Path
    train: Path | None = None
    curve: Path | None = None


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


def run_row(grammar: str, files: RunFiles, speed_threshold: float) -> dict[str, Any]:
    """One summary row (a reference row has no training facts or learning curve)."""
    ppl = _read(files.perplexity)
    gen = _read(files.generation)
    for path, rec in ((files.perplexity, ppl), (files.generation, gen)):
        if rec.get("grammar") not in (None, grammar):
            raise DataFileError(f"{path}: is for grammar {rec.get('grammar')!r}, not {grammar!r}")
    condition = files.condition
    if condition in REFERENCES:
        facts: dict[str, Any] = {"steps": 0 if condition == BASELINE else None,
                                 "tokens_seen": 0 if condition == BASELINE else None,
                                 "synthetic_share": None, "train_wall_seconds": 0.0,
                                 "train_tokens_per_s": None}
    else:
        if files.train is None:
            raise ValueError(f"{grammar} {condition} seed {files.seed}: no train_metrics.json")
        facts = run_facts(_read(files.train), files.train)
    facts["model"] = ORACLE if ppl.get("oracle") else ppl.get("model")
    row: dict[str, Any] = {"grammar": grammar, "condition": condition, "seed": files.seed,
                           **facts}
    row |= flatten_perplexity(ppl)
    row |= flatten_generation(gen)
    if files.curve is not None:
        row |= excess.curve_summaries(_read(files.curve), speed_threshold)
    return row


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


def no_room(summary: pd.DataFrame, metric: str) -> bool:
    """Rule validity above chance where every string of a valid length is valid (g1): the
    oracle's 0 leaves nothing to learn, so the metric is neither plotted nor contrasted."""
    if metric != "rule_validity_above_chance" or metric not in summary.columns:
        return False
    oracle = summary.loc[summary["condition"] == ORACLE, metric]
    return len(oracle) > 0 and oracle.iloc[0] == 0


def grammar_summary(grammar: str, runs: Sequence[RunFiles],
                    speed_threshold: float) -> pd.DataFrame:
    """One grammar's rows: the baseline, every run, the oracle."""
    if not runs:
        raise ValueError(f"{grammar}: no runs to summarise")
    return ordered(pd.DataFrame([run_row(grammar, f, speed_threshold) for f in runs]))


def read_csv_file(path: Path) -> pd.DataFrame:
    """A CSV table this package wrote; a missing or corrupt file is named."""
    if not Path(path).is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise DataFileError(f"{path}: not a CSV table: {err}") from err


def read_summaries(paths: Sequence[Path]) -> pd.DataFrame:
    return ordered(pd.concat([read_csv_file(p) for p in paths], ignore_index=True))


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric metric columns (counts, which become each row's n, excluded)."""
    skip = {*ID_COLUMNS, "model", "canonical_tokens", MISSING_LENGTHS}
    return [c for c in frame.columns
            if c not in skip and not c.startswith("n_") and c != "canonical_documents"
            and not c.endswith((CI_LOW, CI_HIGH)) and pd.api.types.is_numeric_dtype(frame[c])]


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False, float_format="%.10g"))
