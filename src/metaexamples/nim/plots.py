"""The one Nim plotting utility: the aggregations behind each figure, and the figures.

Inputs are the accuracy table `nim evaluate` writes (one row per checkpoint step and
eval set, with ``n``, ``exact_correct`` and ``majority_rate``) and per-example
prediction rows: the generator's structured fields (``max_remove``, ``pile``, ``names``,
``bucket``, ...) plus ``correct`` (bool), ``step`` and ``dataset``. The rows must cover
every evaluated example, not only the incorrect ones, or there is no denominator. Each
``accuracy_by_*`` function returns a DataFrame with columns ``dataset, step, <keys>, n,
correct, accuracy`` and is what the matching ``plot_*`` draws. Figures use matplotlib's
object API (no pyplot state) and are written atomically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from metaexamples import stats
from metaexamples.figures import save_figure

log = logging.getLogger(__name__)

Rows = Sequence[Mapping[str, Any]] | pd.DataFrame
Step = int | str | None  # an int, "last" (latest step per dataset) or None (every step)

STEP_COLUMN = "step"
NO_BUCKET = "none"
OTHER_ANSWER = "other"  # a generation that is none of the candidate answers
# what the accuracy-by-step figure reads from the accuracy table
CURVE_COLUMNS = (STEP_COLUMN, "dataset", "n", "exact_correct", "majority_rate")

# The figures `plot_evaluation` draws for every experiment (file stems under plots/), and
# the one only experiments with name-pair buckets get; the workflow declares these.
FIGURES = (
    "accuracy_vs_step",
    "accuracy_by_max_remove",
    "accuracy_by_residue",
    "accuracy_by_name_pair",
    "mistakes_by_answer",
)
BUCKET_FIGURE = "accuracy_by_bucket"


def accuracy_frame(table: Rows) -> pd.DataFrame:
    """The accuracy table as a frame sorted by eval set and step, its columns checked."""
    frame = pd.DataFrame(table)
    missing = [c for c in CURVE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"accuracy table: missing column(s) {missing}")
    return frame.sort_values(["dataset", STEP_COLUMN], kind="stable").reset_index(drop=True)


def prediction_frame(rows: Rows) -> pd.DataFrame:
    """Prediction rows as a DataFrame with derived columns ``residue`` (pile mod
    max_remove + 1), ``name_pair`` ("A & B") and ``bucket`` ("none" when absent); ``dataset``
    defaults to "all" and ``step`` to 0."""
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        raise ValueError("prediction rows: none given")
    missing = [c for c in ("correct", "max_remove", "pile") if c not in frame.columns]
    if missing:
        raise ValueError(f"prediction rows: missing column(s) {missing}")
    if "dataset" not in frame.columns:
        frame["dataset"] = "all"
    if STEP_COLUMN not in frame.columns:
        frame[STEP_COLUMN] = 0
    frame["correct"] = frame["correct"].astype(bool)
    frame["residue"] = frame["pile"].astype(int) % (frame["max_remove"].astype(int) + 1)
    names = frame["names"] if "names" in frame.columns else pd.Series(None, index=frame.index)
    frame["name_pair"] = names.map(lambda n: " & ".join(n) if isinstance(n, Sequence) else None)
    bucket = frame["bucket"] if "bucket" in frame.columns else pd.Series(None, index=frame.index)
    frame["bucket"] = bucket.astype(object).where(bucket.notna(), NO_BUCKET).astype(str)
    return frame


def _select_step(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
    if step is None:
        return frame
    if step == "last":
        last = frame.groupby("dataset")[STEP_COLUMN].transform("max")
        return frame[frame[STEP_COLUMN] == last]
    if isinstance(step, int) and not isinstance(step, bool):
        return frame[frame[STEP_COLUMN] == step]
    raise ValueError(f"step: expected an integer, 'last' or None, got {step!r}")


def accuracy_by(rows: Rows, keys: Sequence[str], step: Step = "last") -> pd.DataFrame:
    """Accuracy per dataset, step and `keys`: columns dataset, step, *keys, n, correct,
    accuracy, sorted by those keys. Rows whose key is missing are dropped."""
    frame = _select_step(prediction_frame(rows), step).dropna(subset=list(keys))
    group = ["dataset", STEP_COLUMN, *keys]
    out = frame.groupby(group, sort=True)["correct"].agg(n="size", correct="sum").reset_index()
    out["correct"] = out["correct"].astype(int)
    out["accuracy"] = out["correct"] / out["n"]
    return out


def accuracy_by_max_remove(rows: Rows, step: Step = "last") -> pd.DataFrame:
    return accuracy_by(rows, ["max_remove"], step)


def accuracy_by_bucket(rows: Rows, step: Step = "last") -> pd.DataFrame:
    """Per cheat / neutral / counter_cheat bucket ("none" where the data has no buckets)."""
    return accuracy_by(rows, ["bucket"], step)


def accuracy_by_residue(rows: Rows, step: Step = "last") -> pd.DataFrame:
    """Per max_remove and residue class of the pile (residue 0: a losing position)."""
    return accuracy_by(rows, ["max_remove", "residue"], step)


def accuracy_by_name_pair(
    rows: Rows, step: Step = "last", top_k: int | None = None
) -> pd.DataFrame:
    """Per name pair; with `top_k`, only the `top_k` most frequent pairs (over all datasets
    at the chosen step; ties by name)."""
    out = accuracy_by(rows, ["name_pair"], step)
    if top_k is not None:
        totals = out.groupby("name_pair")["n"].sum().reset_index()
        totals = totals.sort_values(["n", "name_pair"], ascending=[False, True])
        out = out[out["name_pair"].isin(set(totals["name_pair"].head(top_k)))]
    return out.reset_index(drop=True)


def _label_order(label: str) -> tuple[int, int | str]:
    """Moves in numeric order, then "lose", then "other"."""
    if label.isdigit():
        return (0, int(label))
    return (1, label) if label != OTHER_ANSWER else (2, label)


def mistakes_by_answer(rows: Rows, step: Step = "last") -> pd.DataFrame:
    """Gold answer x generated answer counts per dataset at `step`: columns dataset, step,
    gold_label, predicted_label, n, correct (gold == predicted). Labels are "1" ..
    "max_remove" (the move), "lose" (the losing answer) and "other" (a generation that is
    none of the candidates).

    >>> rows = [{"correct": False, "max_remove": 3, "pile": 5, "gold_label": "1",
    ...          "predicted_label": "3"},
    ...         {"correct": True, "max_remove": 3, "pile": 6, "gold_label": "2",
    ...          "predicted_label": "2"},
    ...         {"correct": False, "max_remove": 3, "pile": 4, "gold_label": "lose",
    ...          "predicted_label": None}]
    >>> mistakes_by_answer(rows)[["gold_label", "predicted_label", "n"]].values.tolist()
    [['1', '3', 1], ['2', '2', 1], ['lose', 'other', 1]]
    """
    frame = _select_step(prediction_frame(rows), step)
    missing = [c for c in ("gold_label", "predicted_label") if c not in frame.columns]
    if missing:
        raise ValueError(f"prediction rows: missing column(s) {missing}")
    frame = frame.assign(
        gold_label=frame["gold_label"].astype(str),
        predicted_label=frame["predicted_label"]
        .where(frame["predicted_label"].notna(), OTHER_ANSWER)
        .astype(str),
    )
    group = ["dataset", STEP_COLUMN, "gold_label", "predicted_label"]
    out = frame.groupby(group, sort=False).size().reset_index(name="n")
    out["correct"] = out["gold_label"] == out["predicted_label"]
    key = out.apply(
        lambda r: (r["dataset"], r[STEP_COLUMN], _label_order(r["gold_label"]),
                   _label_order(r["predicted_label"])),
        axis=1,
    )  # fmt: skip
    return out.loc[key.sort_values().index].reset_index(drop=True)


def plot_mistakes_by_answer(rows: Rows, path: str | os.PathLike[str], step: Step = "last") -> Path:
    """One panel per dataset: gold answer (rows) x generated answer (columns). Cells count
    examples; the colour is the share of the gold answer's examples that went to that
    answer, drawn for mistakes only, so the wrong move the model favours stands out; the
    diagonal (correct) is grey with its count."""
    frame = mistakes_by_answer(rows, step)
    datasets = sorted(frame["dataset"].unique())
    n_cols = min(3, len(datasets))
    n_rows = -(-len(datasets) // n_cols)
    fig = Figure(figsize=(4.6 * n_cols, 4.0 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    image = None
    for k, (ax, dataset) in enumerate(zip(axes.flat, datasets, strict=False)):
        part = frame[frame["dataset"] == dataset]
        gold = sorted(set(part["gold_label"]), key=_label_order)
        predicted = sorted(set(part["predicted_label"]) | set(gold), key=_label_order)
        counts = part.pivot_table(index="gold_label", columns="predicted_label", values="n",
                                  aggfunc="sum", fill_value=0)  # fmt: skip
        counts = counts.reindex(index=gold, columns=predicted, fill_value=0)
        share = counts.div(counts.sum(axis=1), axis=0)
        wrong = share.copy()
        for label in gold:
            wrong.loc[label, label] = float("nan")
        image = ax.imshow(wrong.to_numpy(dtype=float), cmap="Reds", vmin=0, vmax=1)
        for i, g in enumerate(gold):
            for j, p in enumerate(predicted):
                n = int(counts.loc[g, p])
                if g == p:
                    ax.add_patch(_diagonal_cell(j, i))
                if n or g == p:
                    dark = g != p and share.loc[g, p] > 0.6
                    ax.text(j, i, str(n), ha="center", va="center", fontsize="small",
                            color="white" if dark else "black")  # fmt: skip
        ax.set_xticks(range(len(predicted)), predicted)
        ax.set_yticks(range(len(gold)), gold)
        ax.set_xlabel("generated answer")
        if k % n_cols == 0:
            ax.set_ylabel("gold answer")
        n_wrong = int(part.loc[~part["correct"], "n"].sum())
        ax.set_title(f"{dataset}: {n_wrong} of {int(part['n'].sum())} wrong", fontsize="medium")
    for ax in list(axes.flat)[len(datasets) :]:
        ax.set_visible(False)
    steps = sorted(set(frame[STEP_COLUMN]))
    fig.suptitle(f"Answers given, by gold answer (step {', '.join(map(str, steps))}; "
                 "grey: correct; move = coins taken)")  # fmt: skip
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8,
                     label="share of the gold answer's examples (mistakes)")  # fmt: skip
    return save_figure(fig, path)


def _diagonal_cell(x: int, y: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor="0.85", edgecolor="none")


def _wilson_bars(correct: Sequence[float], n: Sequence[float]
                 ) -> tuple[list[float], list[list[float]]]:
    """Rates and their 95 % Wilson intervals as matplotlib's [below, above] lengths."""
    intervals = [stats.wilson_interval(k, m) for k, m in zip(correct, n, strict=True)]
    return ([iv.estimate for iv in intervals],
            [[iv.estimate - iv.low for iv in intervals],
             [iv.high - iv.estimate for iv in intervals]])


def _grouped_bars(frame: pd.DataFrame, keys: Sequence[str], title: str, xlabel: str) -> Figure:
    """Bars of accuracy with 95 % Wilson intervals: one group per key value, one bar per
    dataset. Cells hold a few prompts each, so a bar without its interval misleads."""
    frame = frame.copy()
    frame["_x"] = frame[list(keys)].astype(str).agg(" / ".join, axis=1)
    xs = list(dict.fromkeys(frame["_x"]))
    datasets = sorted(frame["dataset"].unique())
    fig = Figure(figsize=(min(20.0, max(6.0, 0.3 * len(xs) * max(1, len(datasets)) + 2)), 4.5))
    ax = fig.subplots()
    width = 0.8 / max(1, len(datasets))
    for j, dataset in enumerate(datasets):
        part = frame[frame["dataset"] == dataset].set_index("_x").reindex(xs)
        # a cell this dataset lacks: 0 of 0, whose interval is NaN and draws nothing
        heights, errors = _wilson_bars(part["correct"].fillna(0), part["n"].fillna(0))
        ax.bar([i + j * width for i in range(len(xs))], heights, width, yerr=errors,
               capsize=2, ecolor="0.3", label=dataset)
    ax.set_xticks([i + width * (len(datasets) - 1) / 2 for i in range(len(xs))])
    ax.set_xticklabels(
        xs, rotation=45 if len(xs) > 8 else 0, ha="right" if len(xs) > 8 else "center"
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("exact-match accuracy (95 % Wilson)")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if datasets:  # above the axes: inside, it covers bars
        ax.legend(fontsize="small", ncol=len(datasets), loc="lower center",
                  bbox_to_anchor=(0.5, 1.08), frameon=False)
    return fig


def plot_accuracy_vs_step(
    table: Rows, path: str | os.PathLike[str], selected_step: int | None = None
) -> Path:
    """One line per eval set: exact match against checkpoint step with its 95 % Wilson
    interval, the set's majority-answer rate (what always giving its commonest answer
    scores) dashed in the same colour, and the step validation chose dotted."""
    frame = accuracy_frame(table)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for i, (dataset, part) in enumerate(frame.groupby("dataset", sort=True)):
        color = f"C{i}"
        rate, errors = _wilson_bars(part["exact_correct"], part["n"])
        ax.errorbar(part[STEP_COLUMN], rate, yerr=errors, marker="o", capsize=3,
                    color=color, label=str(dataset))
        ax.axhline(part["majority_rate"].iloc[-1], color=color, ls="--", lw=0.8)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.4", ls="--", lw=0.8,
                          label="majority-answer rate (its colour)"))
    if selected_step is not None:
        handles.append(ax.axvline(selected_step, color="0.5", ls=":", lw=1,
                                  label=f"chosen on val (step {selected_step})"))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("step")
    ax.set_ylabel("exact-match accuracy")
    ax.set_title("Exact match by checkpoint (95 % Wilson interval)")
    ax.legend(handles=handles, fontsize="small")
    return save_figure(fig, path)


def plot_accuracy_by_max_remove(
    rows: Rows, path: str | os.PathLike[str], step: Step = "last"
) -> Path:
    frame = accuracy_by_max_remove(rows, step)
    return save_figure(
        _grouped_bars(frame, ["max_remove"], "Accuracy per max_remove", "max_remove"), path
    )


def plot_accuracy_by_bucket(rows: Rows, path: str | os.PathLike[str], step: Step = "last") -> Path:
    frame = accuracy_by_bucket(rows, step)
    return save_figure(
        _grouped_bars(frame, ["bucket"], "Accuracy per name-pair bucket", "bucket"), path
    )


def plot_accuracy_by_residue(rows: Rows, path: str | os.PathLike[str], step: Step = "last") -> Path:
    frame = accuracy_by_residue(rows, step)
    title = "Accuracy per pile residue (pile mod max_remove + 1; 0 = losing)"
    return save_figure(
        _grouped_bars(frame, ["max_remove", "residue"], title, "max_remove / residue"), path
    )


def plot_accuracy_by_name_pair(
    rows: Rows, path: str | os.PathLike[str], step: Step = "last", top_k: int = 30
) -> Path:
    frame = accuracy_by_name_pair(rows, step, top_k)
    title = f"Accuracy per name pair (the {top_k} most frequent)"
    return save_figure(_grouped_bars(frame, ["name_pair"], title, "name pair"), path)


def plot_all(
    rows: Rows | None,
    table: Rows | None,
    out_dir: str | os.PathLike[str],
    step: Step = "last",
) -> list[Path]:
    """Every figure the inputs support, under `out_dir`; returns the paths written. The
    breakdowns are drawn at `step` (the workflow passes the validation-selected one).

    Name-pair and bucket figures are drawn only when the rows carry names / buckets.
    """
    out = Path(out_dir)
    written = []
    if table is not None:
        selected = step if isinstance(step, int) else None
        written.append(plot_accuracy_vs_step(table, out / "accuracy_vs_step.png", selected))
    if rows is not None:
        frame = prediction_frame(rows)
        written.append(plot_accuracy_by_max_remove(frame, out / "accuracy_by_max_remove.png", step))
        written.append(plot_accuracy_by_residue(frame, out / "accuracy_by_residue.png", step))
        if (frame["bucket"] != NO_BUCKET).any():
            written.append(plot_accuracy_by_bucket(frame, out / "accuracy_by_bucket.png", step))
        if {"gold_label", "predicted_label"} <= set(frame.columns):
            written.append(plot_mistakes_by_answer(frame, out / "mistakes_by_answer.png", step))
        if frame["name_pair"].notna().any():
            written.append(
                plot_accuracy_by_name_pair(frame, out / "accuracy_by_name_pair.png", step)
            )
    return written


def plot_evaluation(
    eval_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Every figure of one evaluation (``accuracy_table.csv`` and ``predictions.jsonl`` in
    `eval_dir`) under `out_dir` (default ``eval_dir/plots``), the breakdowns at the
    checkpoint validation exact match chose (the last one when there is no validation set).
    """
    from metaexamples.io import read_jsonl
    from metaexamples.nim.summary import select_step

    folder = Path(eval_dir)
    records = pd.read_csv(folder / "accuracy_table.csv").to_dict("records")
    rows = read_jsonl(folder / "predictions.jsonl")
    try:
        step: Step = int(select_step(records)["step"])
    except ValueError:  # evaluated without a validation set
        log.warning("%s: no validation rows; breakdowns drawn at the last step", folder)
        step = "last"
    written = plot_all(rows, records, out_dir or folder / "plots", step)
    log.info("wrote %d figures (breakdowns at step %s)", len(written), step)
    return written
