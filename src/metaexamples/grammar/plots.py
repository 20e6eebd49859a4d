"""Per-grammar figures (PNG, matplotlib Agg) from the summary tables and training logs.

- `plot_metrics_by_condition`: each headline metric by condition, mean with its 95 %
  interval, each seed as a dot, between the two bounds drawn across every panel: the
  step-0 baseline (grey dashes) and the oracle (black dashes); reference lines (chance,
  0.5, 0).
- `plot_loss_curves`: every loss column of each run's `train_log.csv` against step.
- `plot_by_negative_type`: AUROC and pair accuracy per negative type and condition;
  a type with fewer than `metrics.MIN_CELL` strings is left out and named in the title.

Every function takes tables and a path and returns the path, so the figures can be
tested without a workflow.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from metaexamples.grammar.metrics import MIN_CELL  # noqa: E402
from metaexamples.grammar.summary import (  # noqa: E402
    BASELINE,
    HEADLINE_METRICS,
    ORACLE,
    condition_order,
)
from metaexamples.io import atomic_path  # noqa: E402

log = logging.getLogger(__name__)

LABELS = {
    "excess_nll": "excess NLL over true (nats, ↓)",
    "minimal_pair_accuracy": "minimal-pair accuracy (↑)",
    "auroc": "AUROC valid vs all invalid (↑)",
    "auroc_minimal_edit": "AUROC vs minimal edits (↑)",
    "canonical_perplexity": "held-out canonical perplexity (↓)",
    "format_validity": "sample format validity (↑)",
    "rule_validity": "sample rule validity (↑)",
    "rule_validity_given_format": "rule validity | well-formed (↑)",
    "rule_validity_above_chance": "rule validity | well-formed, minus chance (↑)",
}
REFERENCE = {"minimal_pair_accuracy": 0.5, "auroc": 0.5, "auroc_minimal_edit": 0.5,
             "excess_nll": 0.0, "rule_validity_above_chance": 0.0}
BOUND_COLORS = {BASELINE: (0.55, 0.55, 0.55, 1.0), ORACLE: (0.0, 0.0, 0.0, 1.0)}


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def _colors(conditions: Sequence[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    out, i = {}, 0
    for c in conditions:
        if c in BOUND_COLORS:
            out[c] = BOUND_COLORS[c]
        else:
            out[c] = cmap(i % 10)
            i += 1
    return out


def _stat(table: pd.DataFrame, condition: str, metric: str) -> tuple[float, float, float]:
    row = table[(table["condition"] == condition) & (table["metric"] == metric)]
    if row.empty:
        return (math.nan, math.nan, math.nan)
    r = row.iloc[0]
    return (float(r["mean"]), float(r["ci_low"]), float(r["ci_high"]))


def _errorbar(ax, x, mean, lo, hi, color, **kw) -> None:
    if math.isnan(mean):
        return
    yerr = None
    if not (math.isnan(lo) or math.isnan(hi)):
        yerr = [[max(mean - lo, 0.0)], [max(hi - mean, 0.0)]]
    ax.errorbar([x], [mean], yerr=yerr, fmt="o", color=color, capsize=4, ms=6, **kw)


def plot_metrics_by_condition(
    summary: pd.DataFrame, table: pd.DataFrame, grammar: str, path: Path
) -> Path:
    """One panel per headline metric: conditions on x, mean and interval, seeds as dots."""
    conditions = condition_order(summary["condition"])
    colors = _colors(conditions)
    present = [m for m in HEADLINE_METRICS if m in summary.columns
               and summary[m].notna().any()]
    ncols = 4
    nrows = max(1, math.ceil(len(present) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, present, strict=False):
        for x, cond in enumerate(conditions):
            seeds = summary.loc[summary["condition"] == cond, metric].to_numpy(float)
            jitter = np.linspace(-0.12, 0.12, len(seeds)) if len(seeds) > 1 else [0.0]
            ax.scatter(x + np.asarray(jitter), seeds, s=10, color=colors[cond], alpha=0.45,
                       zorder=2)
            _errorbar(ax, x, *_stat(table, cond, metric), colors[cond], zorder=3)
        for bound in (BASELINE, ORACLE):
            value = _stat(table, bound, metric)[0]
            if bound in conditions and not math.isnan(value):
                ax.axhline(value, color=BOUND_COLORS[bound], lw=0.8, ls="--", alpha=0.6)
        if metric in REFERENCE:
            ax.axhline(REFERENCE[metric], color="k", lw=0.8, ls=":")
        if metric in ("rule_validity", "rule_validity_given_format") and (
                "chance_rate" in summary.columns):
            chance = summary["chance_rate"].dropna()
            if len(chance):
                ax.axhline(float(chance.iloc[0]), color="tab:red", lw=1, ls="--",
                           label="chance")
                ax.legend(loc="best", fontsize=7)
        ax.set_title(LABELS.get(metric, metric), fontsize=9)
        ax.set_xticks(range(len(conditions)))
        ax.set_xticklabels(conditions, rotation=35, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(present):]:
        ax.axis("off")
    fig.suptitle(f"{grammar}: headline metrics by condition (mean, 95 % interval; dots: seeds;"
                 " dashes: step-0 baseline (grey) and oracle (black))")
    fig.tight_layout()
    return _save(fig, path)


def read_train_log(path: Path) -> pd.DataFrame | None:
    """A run's train_log.csv, or None when it is missing or unreadable (logged)."""
    if not path.is_file():
        log.warning("%s: no training log; skipped in the loss plot", path)
        return None
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        log.warning("%s: unreadable training log (%s); skipped", path, err)
        return None
    return frame if len(frame) else None


def loss_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns
            if "loss" in c.lower() and pd.api.types.is_numeric_dtype(frame[c])]


def plot_loss_curves(
    logs: dict[tuple[str, int], pd.DataFrame], grammar: str, path: Path
) -> Path:
    """One panel per loss column (train, each eval split), one line per run."""
    columns = sorted({c for f in logs.values() for c in loss_columns(f)})
    conditions = condition_order(c for c, _ in logs)
    colors = _colors(conditions)
    n = max(1, len(columns))
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.5 * nrows), squeeze=False)
    if not columns:
        axes[0, 0].text(0.5, 0.5, "no training logs with loss columns", ha="center",
                        va="center")
        axes[0, 0].axis("off")
    for ax, column in zip(axes.flat, columns, strict=False):
        labelled: set[str] = set()
        for (cond, _seed), frame in sorted(logs.items()):
            if column not in frame.columns:
                continue
            step = frame["step"] if "step" in frame.columns else frame.index
            data = pd.DataFrame({"step": step, "y": frame[column]}).dropna()
            if data.empty:
                continue
            label = cond if cond not in labelled else None
            labelled.add(cond)
            ax.plot(data["step"], data["y"], color=colors[cond], lw=1.2, alpha=0.85,
                    marker="." if len(data) < 20 else None, label=label)
        ax.set_title(column, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(columns):] if columns else []:
        ax.axis("off")
    fig.suptitle(f"{grammar}: training and evaluation losses (one line per run)")
    fig.tight_layout()
    return _save(fig, path)


def negative_types(summary: pd.DataFrame, prefix: str) -> tuple[list[str], list[str]]:
    """(types with at least MIN_CELL strings in every row, types with fewer) for `prefix`."""
    kinds = sorted(c[len(prefix):] for c in summary.columns
                   if c.startswith(prefix) and not c.endswith(("_ci_low", "_ci_high"))
                   and summary[c].notna().any())
    big = [k for k in kinds if _large_cell(summary, k)]
    return big, [k for k in kinds if k not in big]


def _large_cell(summary: pd.DataFrame, kind: str) -> bool:
    n = summary.get(f"n_{kind}")
    return n is not None and bool((n.fillna(0) >= MIN_CELL).all())


def plot_by_negative_type(
    summary: pd.DataFrame, table: pd.DataFrame, grammar: str, path: Path
) -> Path:
    """Grouped bars: AUROC and pair accuracy per negative type, one bar per condition."""
    conditions = condition_order(summary["condition"])
    colors = _colors(conditions)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4), squeeze=False)
    for ax, (prefix, title) in zip(
        axes.flat,
        [("auroc_", "AUROC: valid vs this negative type"),
         ("pair_accuracy_", "pair accuracy: P(valid) > P(its negative)")],
        strict=True,
    ):
        kinds, small = negative_types(summary, prefix)
        if small:
            title += f"\n(left out, n < {MIN_CELL}: {', '.join(small)})"
        width = 0.8 / max(1, len(conditions))
        for j, cond in enumerate(conditions):
            stats = [_stat(table, cond, prefix + k) for k in kinds]
            xs = np.arange(len(kinds)) + (j - (len(conditions) - 1) / 2) * width
            means = np.array([s[0] for s in stats])
            lo = np.array([s[1] for s in stats])
            hi = np.array([s[2] for s in stats])
            err = np.vstack([np.clip(means - lo, 0, None), np.clip(hi - means, 0, None)])
            err = np.nan_to_num(err)
            ax.bar(xs, np.nan_to_num(means), width, yerr=err, color=colors[cond], capsize=2,
                   label=cond)
        ax.axhline(0.5, color="k", lw=0.8, ls=":")
        ax.set_xticks(range(len(kinds)))
        ax.set_xticklabels(kinds, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{grammar}: discrimination by negative type (mean, 95 % interval)")
    fig.tight_layout()
    return _save(fig, path)
