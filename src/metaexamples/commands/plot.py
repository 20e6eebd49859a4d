"""Draw one grammar's figures (results/{grammar}/plots/*.png) from its summary table.

Writes `metrics_by_condition.png`, `loss_curves.png` (from each run's train_log.csv)
and `by_negative_type.png` into --out-dir.
"""

from __future__ import annotations

import argparse
from pathlib import Path

FIGURES = ("metrics_by_condition.png", "loss_curves.png", "by_negative_type.png")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summary", type=Path, required=True,
                        help="the grammar's summary CSV (results/{grammar}/summary.csv)")
    parser.add_argument("--runs", type=Path, nargs="*", default=[],
                        help="run directories .../{condition}/seed{N} with train_log.csv")
    parser.add_argument("--out-dir", type=Path, required=True)


def run(args: argparse.Namespace) -> None:
    from metaexamples.grammar import plots, summary

    frame = summary.read_summaries([args.summary])
    grammars = sorted(frame["grammar"].unique())
    if len(grammars) != 1:
        raise ValueError(f"{args.summary}: expected one grammar, found {grammars}")
    grammar = grammars[0]
    table = summary.by_condition(frame)
    logs = {}
    for run_dir in args.runs:
        condition, seed = summary.parse_run_dir(run_dir)
        log_frame = plots.read_train_log(run_dir / "train_log.csv")
        if log_frame is not None:
            logs[(condition, seed)] = log_frame
    out = args.out_dir
    plots.plot_metrics_by_condition(frame, table, grammar, out / FIGURES[0])
    plots.plot_loss_curves(logs, grammar, out / FIGURES[1])
    plots.plot_by_negative_type(frame, table, grammar, out / FIGURES[2])
