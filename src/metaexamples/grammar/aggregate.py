"""Per-condition aggregation of the summary table: `results/summary_by_condition.csv`.

One row per (grammar, condition, metric). Each row has exactly one kind of interval, in
its own columns, and `scope` says which:

- ``seeds``: two or more seeds. The mean over seeds with a Student-t interval (n - 1
  degrees of freedom, `stats.t_interval`) in ``seeds_ci_low`` / ``seeds_ci_high``: a
  statement about the condition (what a seed varies: docs/results.md).
- ``run``: one seed, and the baseline and oracle rows. The run's value with its
  within-run interval (`metrics.within_run_interval`: test strings, pairs or samples of
  this one model) in ``run_ci_low`` / ``run_ci_high``: a statement about one model.

``seed_values`` lists every seed's value (``nan`` where a seed has none, which `note`
names); ``seeds_learned`` says in how many seeds the run's own interval lies wholly on the
better side of the step-0 baseline (for `rule_validity_above_chance`, of 0), so that a
condition whose seeds disagree in kind (some learn, some do not) shows it. ``bounds``
places each trained condition between its two bounds, judged on its interval, for the
metrics whose oracle value really is a bound.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from metaexamples import stats
from metaexamples.grammar import metrics
from metaexamples.grammar.summary import (
    BASELINE,
    CI_HIGH,
    CI_LOW,
    HEADLINE_METRICS,
    ORACLE,
    REFERENCES,
    metric_columns,
)

COLUMNS = ["grammar", "condition", "metric", "mean", "scope", "seeds_ci_low", "seeds_ci_high",
           "run_ci_low", "run_ci_high", "interval", "n", "n_seeds", "seeds", "seed_values",
           "seeds_learned", "bounds", "note"]
WITHIN, BELOW_BASELINE, BEYOND_ORACLE = "within", "worse than baseline", "beyond oracle"
# The oracle's value bounds these: no model exceeds the exact distribution. Not
# rule_validity_above_chance: a model writing only long palindromes beats the oracle's.
BOUNDED_METRICS = {m: d for m, d in HEADLINE_METRICS.items()
                   if m != "rule_validity_above_chance"} | {"pair_accuracy": "higher"}
ZERO_IS_CHANCE = ("rule_validity_above_chance",)  # learned: the run's interval above 0
# counts that keep their interval below MIN_CELL: a whole split, or the denominator of a
# sample rate whose Agresti-Coull interval is reported at any n
UNCAPPED_COUNTS = ("n_valid", "n_samples", "n_format_valid", "n_rule_valid")


def by_condition(frame: pd.DataFrame) -> pd.DataFrame:
    """Long table: value and interval of every metric per (grammar, condition)."""
    out = []
    for (grammar, condition), group in frame.groupby(["grammar", "condition"], sort=False):
        baseline = frame[(frame["grammar"] == grammar) & (frame["condition"] == BASELINE)]
        for metric in metric_columns(frame):
            out.append(_cell_row(grammar, condition, metric, group, baseline))
    table = pd.DataFrame(out, columns=COLUMNS)
    table["bounds"] = bounds_check(table)
    return table


def _cell_row(grammar: str, condition: str, metric: str, group: pd.DataFrame,
              baseline: pd.DataFrame) -> dict[str, Any]:
    values = group[metric].to_numpy(float)
    seeds = group["seed"].tolist() if "seed" in group.columns else [None] * len(group)
    finite = ~np.isnan(values)
    rec: dict[str, Any] = {
        "grammar": grammar, "condition": condition, "metric": metric, "n_seeds": int(finite.sum()),
        "seeds": ";".join("" if _missing(s) else str(int(s)) for s in seeds),
        "seed_values": ";".join(f"{v:.6g}" for v in values), "scope": "", "interval": "none",
        "mean": math.nan, "n": math.nan, "note": "", "seeds_learned": "",
        **{c: math.nan for c in ("seeds_ci_low", "seeds_ci_high", "run_ci_low", "run_ci_high")},
    }
    method, count_column = metrics.within_run_interval(metric)
    if finite.sum() >= 2:
        iv = stats.t_interval(values[finite])
        rec |= {"mean": iv.estimate, "seeds_ci_low": iv.low, "seeds_ci_high": iv.high,
                "n": iv.n, "interval": "t", "scope": "seeds"}
    elif finite.sum() == 1:
        i = int(np.flatnonzero(finite)[0])
        lo, hi = _value(group, metric + CI_LOW, i), _value(group, metric + CI_HIGH, i)
        rec |= {"mean": float(values[i]), "run_ci_low": lo, "run_ci_high": hi,
                "n": _value(group, count_column, i), "scope": "run",
                "interval": method if not math.isnan(lo) else "none"}
        count = rec["n"]
        if (count_column.startswith("n_") and count_column not in UNCAPPED_COUNTS
                and not math.isnan(count) and count < metrics.MIN_CELL):
            rec |= {"run_ci_low": math.nan, "run_ci_high": math.nan, "interval": "none",
                    "note": f"{count_column} = {count:g} < {metrics.MIN_CELL}: no interval"}
    else:
        rec["note"] = _why_no_value(condition, metric)
    if 0 < finite.sum() < len(values):
        lost = [str(s) for s, ok in zip(seeds, finite, strict=True) if not ok]
        rec["note"] = f"no value for seed(s) {', '.join(lost)}; " + rec["note"]
    if condition not in REFERENCES and finite.any():
        rec["seeds_learned"] = _seeds_learned(group, metric, baseline)
    return rec


def _seeds_learned(group: pd.DataFrame, metric: str, baseline: pd.DataFrame) -> str:
    """'k of n': seeds whose run interval lies wholly on the better side of the baseline's
    (of 0 for `ZERO_IS_CHANCE`); empty where that cannot be judged."""
    direction = HEADLINE_METRICS.get(metric)
    if direction is None or metric + CI_LOW not in group.columns:
        return ""
    if metric in ZERO_IS_CHANCE:
        base_lo = base_hi = 0.0
    elif len(baseline) and not math.isnan(_value(baseline, metric, 0)):
        base_lo = _value(baseline, metric + CI_LOW, 0)
        base_hi = _value(baseline, metric + CI_HIGH, 0)
        if math.isnan(base_lo):
            base_lo = base_hi = _value(baseline, metric, 0)
    else:
        return ""
    judged = learned = 0
    for i in range(len(group)):
        lo, hi = _value(group, metric + CI_LOW, i), _value(group, metric + CI_HIGH, i)
        if math.isnan(lo) or math.isnan(hi):
            continue
        judged += 1
        learned += (lo > base_hi) if direction == "higher" else (hi < base_lo)
    return f"{learned} of {judged}" if judged else ""


def bounds_check(table: pd.DataFrame) -> list[str]:
    """Where each trained condition's bounded metric lies against its grammar's bounds.

    ``within`` unless its interval lies wholly on the worse side of the step-0 baseline's
    (``worse than baseline``) or wholly beyond the oracle's (``beyond oracle``: a model
    better than the exact distribution means a wrong metric); a missing interval counts as
    its point. Empty for the reference rows, unbounded metrics and cells without a value.
    """
    index = {(r.grammar, r.condition, r.metric): r for r in table.itertuples()}
    out = []
    for r in table.itertuples():
        direction = BOUNDED_METRICS.get(r.metric)
        if direction is None or r.condition in REFERENCES or math.isnan(r.mean):
            out.append("")
            continue
        sign = 1.0 if direction == "higher" else -1.0
        lo, hi = _span(r, sign)
        base = index.get((r.grammar, BASELINE, r.metric))
        best = index.get((r.grammar, ORACLE, r.metric))
        verdict = WITHIN
        if base is not None and not math.isnan(base.mean) and hi < _span(base, sign)[0]:
            verdict = BELOW_BASELINE
        if best is not None and not math.isnan(best.mean) and lo > _span(best, sign)[1]:
            verdict = BEYOND_ORACLE
        out.append(verdict)
    return out


def interval_of(row: Any) -> tuple[float, float]:
    """The row's interval, whichever scope it has."""
    if row.scope == "seeds":
        return row.seeds_ci_low, row.seeds_ci_high
    return row.run_ci_low, row.run_ci_high


def _span(row: Any, sign: float) -> tuple[float, float]:
    """The row's interval (its point where it has none), larger = better."""
    lo, hi = interval_of(row)
    ends = (row.mean, row.mean) if math.isnan(lo) or math.isnan(hi) else (lo, hi)
    return min(sign * v for v in ends), max(sign * v for v in ends)


def _why_no_value(condition: str, metric: str) -> str:
    if condition == ORACLE and metric.startswith("canonical_"):
        return "not computed for the oracle: it models grammar strings only"
    return "no value (not defined for this grammar or run)"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)


def _value(group: pd.DataFrame, column: str, i: int) -> float:
    if column not in group.columns:
        return math.nan
    value = group[column].iloc[i]
    return float(value) if value is not None and not pd.isna(value) else math.nan
