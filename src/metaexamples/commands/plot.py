"""Draw one grammar's figures (results/{grammar}/plots/*.png) from its summary table.

Writes `metrics_by_condition.png`, `by_negative_type.png`, `loss_curves.png` (from each
run's train_log.csv) and `learning_curves.png` (from each run's learning_curve.json) into
--out-dir. Each run is named with its condition and seed: ``--run CONDITION SEED LOG CURVE``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

FIGURES = ("metrics_by_condition.png", "loss_curves.png", "by_negative_type.png",
           "learning_curves.png")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summary", type=Path, required=True,
                        help="the grammar's summary CSV (results/{grammar}/summary.csv)")
    parser.add_argument("--run", dest="runs", nargs=4, action="append", default=[],
                        metavar=("CONDITION", "SEED", "TRAIN_LOG", "CURVE"),
                        help="one run's train_log.csv and learning_curve.json")
    parser.add_argument("--speed-threshold", type=float, default=5.0,
                        help="the learning-speed threshold drawn on the curves (nats)")
    parser.add_argument("--out-dir", type=Path, required=True)


def run(args: argparse.Namespace) -> None:
    from metaexamples.grammar import aggregate, plots, summary
    from metaexamples.io import read_json

    frame = summary.read_summaries([args.summary])
    grammars = sorted(frame["grammar"].unique())
    if len(grammars) != 1:
        raise ValueError(f"{args.summary}: expected one grammar, found {grammars}")
    grammar = grammars[0]
    table = aggregate.by_condition(frame)
    logs, curves = {}, {}
    for condition, seed, log_path, curve_path in args.runs:
        key = (condition, int(seed))
        log_frame = plots.read_train_log(Path(log_path))
        if log_frame is not None:
            logs[key] = log_frame
        curves[key] = read_json(Path(curve_path))
    out = args.out_dir
    plots.plot_metrics_by_condition(frame, table, grammar, out / FIGURES[0])
    plots.plot_loss_curves(logs, grammar, out / FIGURES[1])
    plots.plot_by_negative_type(frame, table, grammar, out / FIGURES[2])
    plots.plot_learning_curves(curves, grammar, args.speed_threshold, out / FIGURES[3])
