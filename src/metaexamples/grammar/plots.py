"""Per-grammar figures (PNG, matplotlib Agg) from the summary tables and training logs.

- `plot_metrics_by_condition`: each headline metric by condition with its 95 % interval,
  each seed as a dot, between the two bounds drawn across every panel: the step-0
  baseline (grey dashes) and the oracle (black dashes); reference lines (chance, 0.5, 0).
  A filled circle is a mean over seeds with its t interval, a hollow square one model
  with its within-run interval; log axes for metrics that span decades.
- `plot_learning_curves`: the val excess NLL of every run at every evaluation, over
  synthetic tokens, one line per seed, with the oracle's floor (0) and the threshold.
- `plot_loss_curves`: every loss column of each run's `train_log.csv` against step.
- `plot_by_negative_type`: AUROC and pair accuracy per negative type and condition;
  a type with fewer than `metrics.MIN_CELL` strings is left out and named in the title.
- `plot_contrasts`: the forest plot of a contrasts table.

Every function takes tables and a path and returns the path, so the figures can be
tested without a workflow.
"""

from __future__ import annotations

import logging
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import LogFormatter

from metaexamples.figures import save_figure
from metaexamples.grammar.aggregate import interval_of
from metaexamples.grammar.metrics import MIN_CELL
from metaexamples.grammar.summary import (
    BASELINE,
    HEADLINE_METRICS,
    LEARNING_SPEED,
    ORACLE,
    condition_order,
    no_room,
)

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
    "pair_accuracy": "pair accuracy, all negatives (↑)",
    "curve_mean_excess_nll": "val excess NLL, mean over training (nats, ↓)",
    "tokens_to_threshold": "synthetic tokens to the threshold (↓)",
}
# values that span decades: log axes; symlog (linear below 1) where the oracle's 0 must show
LOG_SCALE = {"excess_nll": "symlog", "canonical_perplexity": "log"}
SCOPE_STYLE = {"seeds": {"fmt": "o", "mfc": None},  # mean over seeds, t interval
               "run": {"fmt": "s", "mfc": "white"}}  # one model, within-run interval
REFERENCE = {"minimal_pair_accuracy": 0.5, "auroc": 0.5, "auroc_minimal_edit": 0.5,
             "excess_nll": 0.0, "rule_validity_above_chance": 0.0}
BOUND_COLORS = {BASELINE: (0.55, 0.55, 0.55, 1.0), ORACLE: (0.0, 0.0, 0.0, 1.0)}


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


def _stat(table: pd.DataFrame, condition: str, metric: str
          ) -> tuple[float, float, float, str]:
    """(value, interval low, interval high, scope) of one cell of summary_by_condition."""
    row = table[(table["condition"] == condition) & (table["metric"] == metric)]
    if row.empty:
        return (math.nan, math.nan, math.nan, "")
    r = next(row.itertuples())
    lo, hi = interval_of(r)
    return (float(r.mean), float(lo), float(hi), str(r.scope))


def _errorbar(ax, x, mean, lo, hi, scope, color, **kw) -> None:
    if math.isnan(mean):
        return
    yerr = None
    if not (math.isnan(lo) or math.isnan(hi)):
        yerr = [[max(mean - lo, 0.0)], [max(hi - mean, 0.0)]]
    style = SCOPE_STYLE.get(scope, SCOPE_STYLE["run"])
    ax.errorbar([x], [mean], yerr=yerr, fmt=style["fmt"], color=color, capsize=4, ms=6,
                mfc=style["mfc"] or color, **kw)


def _scope_legend(fig) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", color="k", ls="", label="mean over seeds, "
                      "95 % t interval (the condition)"),
               Line2D([], [], marker="s", color="k", mfc="white", ls="",
                      label="one model, 95 % within-run interval (these test strings/samples)")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02))


def plot_metrics_by_condition(
    summary: pd.DataFrame, table: pd.DataFrame, grammar: str, path: Path
) -> Path:
    """One panel per headline metric: conditions on x, mean and interval, seeds as dots."""
    conditions = condition_order(summary["condition"])
    colors = _colors(conditions)
    present = [m for m in HEADLINE_METRICS if m in summary.columns
               and summary[m].notna().any() and not no_room(summary, m)]
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
            learned = table.loc[(table["condition"] == cond) & (table["metric"] == metric),
                                "seeds_learned"]
            k_of_n = str(learned.iloc[0]) if len(learned) and isinstance(learned.iloc[0],
                                                                          str) else ""
            if k_of_n and k_of_n.split(" of ")[0] not in ("0", k_of_n.split(" of ")[-1]):
                ax.annotate(f"{k_of_n} seeds\nlearned", (x, 1.0), xycoords=("data",
                            "axes fraction"), ha="center", va="top", fontsize=6,
                            color=colors[cond])
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
        if LOG_SCALE.get(metric) == "symlog":
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_ylim(bottom=-0.05)
        elif metric in LOG_SCALE:
            ax.set_yscale("log")
        ax.set_title(LABELS.get(metric, metric), fontsize=9)
        ax.set_xticks(range(len(conditions)))
        ax.set_xticklabels(conditions, rotation=35, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(present):]:
        ax.axis("off")
    fig.suptitle(f"{grammar}: headline metrics by condition (dots: seeds; dashes: step-0 "
                 "baseline (grey) and oracle (black))")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _scope_legend(fig)
    return save_figure(fig, path)


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
        ax.set_yscale("log")  # step 0 (about 10 nats) and the end (about 1) on one axis
        # plain numbers ("8", "10") rather than "8×10⁰" on an axis that spans about a decade
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter(minor_thresholds=(1, 0.4)))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(columns):] if columns else []:
        ax.axis("off")
    fig.suptitle(f"{grammar}: training and evaluation losses (one line per run)")
    fig.tight_layout()
    return save_figure(fig, path)


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
            names = ", ".join(repr(k) for k in small)
            title += f"\n(left out, fewer than {MIN_CELL} strings: {names})"
        width = 0.8 / max(1, len(conditions))
        for j, cond in enumerate(conditions):
            stats = [_stat(table, cond, prefix + k)[:3] for k in kinds]
            xs = np.arange(len(kinds)) + (j - (len(conditions) - 1) / 2) * width
            means = np.array([s[0] for s in stats])
            lo = np.array([s[1] for s in stats])
            hi = np.array([s[2] for s in stats])
            err = np.vstack([np.clip(means - lo, 0, None), np.clip(hi - means, 0, None)])
            err = np.nan_to_num(err)
            # black whiskers vanish inside the oracle's black bar, where the interval matters
            ecolor = "0.6" if cond == ORACLE else "k"
            ax.bar(xs, np.nan_to_num(means), width, yerr=err, color=colors[cond], capsize=2,
                   ecolor=ecolor, label=cond)
        ax.axhline(0.5, color="k", lw=0.8, ls=":")
        ax.set_xticks(range(len(kinds)))
        ax.set_xticklabels(kinds, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    # below the panels: inside one it covers bars
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(conditions), fontsize=8,
               frameon=False)
    fig.suptitle(f"{grammar}: discrimination by negative type (95 % interval: t over seeds "
                 "with two or more, else within one run: AUROC by Wilson at its largest "
                 "variance, pair accuracy Agresti-Coull)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save_figure(fig, path)


def plot_learning_curves(curves: dict[tuple[str, int], dict], grammar: str, threshold: float,
                         path: Path) -> Path:
    """Val excess NLL over synthetic tokens, one line per (condition, seed), on a symlog
    axis (linear below 1 nat, so the oracle's floor at 0 shows), with the threshold."""
    from metaexamples.grammar.excess import curve_points

    conditions = condition_order(c for c, _ in curves)
    colors = _colors(conditions)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    labelled: set[str] = set()
    for (cond, seed), curve in sorted(curves.items()):
        tokens, _, points = curve_points(curve)
        values = [p.interval.estimate for p in points]
        ax.plot(tokens, values, color=colors[cond], lw=1.2, alpha=0.8, marker=".",
                label=cond if cond not in labelled else None)
        labelled.add(cond)
        if len(tokens):
            ax.annotate(f"s{seed}", (tokens[-1], values[-1]), fontsize=6, color=colors[cond],
                        xytext=(3, 0), textcoords="offset points")
    ax.axhline(0.0, color=BOUND_COLORS[ORACLE], lw=1, ls="--", label="oracle (0)")
    ax.axhline(threshold, color="tab:red", lw=0.8, ls=":", label=f"threshold ({threshold:g})")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=-0.05)
    ax.set_xlabel("synthetic tokens seen (step 0 at 0)")
    ax.set_ylabel("val excess NLL (nats per string)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title(f"{grammar}: learning curves (every length: exact where enumerable, "
                 "held-out val strings beyond; one line per seed)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


VERDICT_COLORS = {"better": "tab:green", "worse": "tab:red",
                  "no detectable difference": "0.35", "not tested": "0.7"}


def plot_contrasts(table: pd.DataFrame, path: Path) -> Path:
    """Forest plot: one panel per metric, one row per (condition vs reference), the
    estimate (positive = better) with its 95 % interval, coloured by the Holm verdict."""
    metrics_ = [m for m in (*HEADLINE_METRICS, "pair_accuracy", *LEARNING_SPEED)
                if m in set(table["metric"])]
    pairs = list(dict.fromkeys(zip(table["condition"], table["reference"], strict=True)))
    grammars = ", ".join(sorted(map(str, table["grammar"].unique())))
    ncols = 3
    nrows = max(1, math.ceil(len(metrics_) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 0.5 + (0.45 * len(pairs) + 1.0)
                                                    * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics_, strict=False):
        rows = table[table["metric"] == metric]
        for y, (cond, ref) in enumerate(pairs):
            hit = rows[(rows["condition"] == cond) & (rows["reference"] == ref)]
            if hit.empty:
                continue
            r = next(hit.itertuples())
            color = VERDICT_COLORS.get(r.verdict, "0.5")
            if math.isnan(r.estimate):
                note = textwrap.fill(f"not tested: {r.note}", 70, break_on_hyphens=False)
                ax.text(0.5, y, note, fontsize=6, color="0.4", ha="center", va="center",
                        transform=ax.get_yaxis_transform())
                continue
            xerr = None
            if not (math.isnan(r.ci_low) or math.isnan(r.ci_high)):
                xerr = [[r.estimate - r.ci_low], [r.ci_high - r.estimate]]
            marker = "o" if r.scope == "condition" else "s"
            ax.errorbar([r.estimate], [y], xerr=xerr, fmt=marker, color=color, capsize=3,
                        mfc=color if r.scope == "condition" else "white")
        if rows["estimate"].notna().any():
            ax.axvline(0.0, color="k", lw=0.8)
            ax.locator_params(axis="x", nbins=5)  # more run into each other ("-0.015-0.010")
        else:  # only notes: no scale to read
            ax.set_xticks([])
        ax.set_yticks(range(len(pairs)))
        ax.set_yticklabels([f"{c} − {r}" for c, r in pairs], fontsize=7)
        ax.set_ylim(-0.6, len(pairs) - 0.4)
        ax.invert_yaxis()
        # lower-is-better metrics are turned round so that right of zero is better
        ax.set_title(LABELS.get(metric, metric).replace("↓", "↓: reference − condition"),
                     fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(metrics_):]:
        ax.axis("off")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=c, label=v)
               for v, c in VERDICT_COLORS.items()]
    handles += [Line2D([], [], marker="o", ls="", color="k",
                       label="filled circle: the condition (t over paired seeds)"),
                Line2D([], [], marker="s", ls="", color="k", mfc="white",
                       label="hollow square: two models (one seed, within-run)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle(f"{grammars}: does it help? condition − reference, positive = better, 95 % "
                 "interval, colour = Holm-adjusted verdict", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    return save_figure(fig, path)
