"""How many seeds a paired comparison of two conditions needs, from a pilot's spread.

For a contrast, the pilot's per-seed differences (condition minus reference, paired by
seed) give their standard deviation; `stats.seeds_needed` then finds the smallest number
of seeds whose two-sided paired t-test reaches the power asked for, by the noncentral t.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaexamples import stats
from metaexamples.grammar.contrasts import CONTRAST_METRICS, contrast_pairs
from metaexamples.grammar.summary import REFERENCES


@dataclass(frozen=True)
class Effect:
    metric: str
    size: float
    relative: bool  # a share of the reference condition's mean

    def absolute(self, reference_mean: float) -> float:
        return abs(self.size * reference_mean) if self.relative else self.size


def parse_effect(text: str) -> Effect:
    """``metric=0.05`` or ``metric=10%``.

    >>> parse_effect("excess_nll=10%")
    Effect(metric='excess_nll', size=0.1, relative=True)
    """
    metric, sep, size = text.partition("=")
    if not sep or metric not in CONTRAST_METRICS:
        raise ValueError(f"--effect {text!r}: expected METRIC=SIZE with METRIC one of "
                         f"{sorted(CONTRAST_METRICS)}")
    relative = size.endswith("%")
    try:
        value = float(size.rstrip("%")) / (100.0 if relative else 1.0)
    except ValueError:
        raise ValueError(f"--effect {text!r}: {size!r} is not a number (or a percentage)") from None
    if value <= 0:
        raise ValueError(f"--effect {text!r}: the size must be positive")
    return Effect(metric, value, relative)


def seeds_table(frame: pd.DataFrame, effects: Sequence[Effect],
                pairs: Sequence[Sequence[str]] | None = None, comparisons: int = 1,
                power: float = stats.POWER) -> pd.DataFrame:
    """Per (grammar, pair, effect): the pilot's seeds, the differences' sd, the effect in
    the metric's units, and the seeds needed (NaN without two paired seeds)."""
    alpha = (1 - stats.LEVEL) / comparisons
    rows = []
    for grammar, group in frame.groupby("grammar", sort=True):
        conditions = [c for c in dict.fromkeys(group["condition"]) if c not in REFERENCES]
        for condition, reference in (pairs or contrast_pairs(conditions)):
            a = group[group["condition"] == condition].set_index("seed")
            b = group[group["condition"] == reference].set_index("seed")
            seeds = sorted(set(a.index) & set(b.index))
            for effect in effects:
                m = effect.metric
                diffs = np.array([float(a.at[s, m]) - float(b.at[s, m]) for s in seeds
                                  if m in a.columns], dtype=float)
                diffs = diffs[~np.isnan(diffs)]
                sd = float(diffs.std(ddof=1)) if len(diffs) >= 2 else math.nan
                ref_mean = float(b[m].mean()) if m in b.columns else math.nan
                size = effect.absolute(ref_mean)
                needed = (stats.seeds_needed(size, sd, alpha, power)
                          if math.isfinite(sd) and sd > 0 and math.isfinite(size) else math.nan)
                rows.append({"grammar": grammar, "condition": condition, "reference": reference,
                             "metric": m, "pilot_seeds": len(diffs), "sd_difference": sd,
                             "reference_mean": ref_mean, "effect": size,
                             "relative_effect": effect.size if effect.relative else math.nan,
                             "alpha": alpha, "power": power, "seeds_needed": needed})
    return pd.DataFrame(rows)
