"""Summarise runs into CSV tables (results/{grammar}/summary.csv, results/summary.csv).

Two modes:

- one grammar: ``--grammar g1 --runs RUN_DIR... [--baseline DIR] [--oracle DIR]
  --out results/g1/summary.csv``; each RUN_DIR is ``.../{condition}/seed{N}`` with
  ``train_metrics.json`` and ``eval/``; the baseline (the untrained model, step 0) and
  oracle (the grammar's exact distribution) directories have ``eval/`` only.
- all grammars: ``--combine results/g1/summary.csv ... --out results/summary.csv
  --by-condition results/summary_by_condition.csv`` concatenates the per-grammar tables
  and adds the mean and 95 % interval of every metric per condition (Student-t across
  seeds; the run's own interval when a condition has one seed), with its method and n.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grammar", help="summarise this grammar's runs")
    parser.add_argument("--runs", type=Path, nargs="*", default=[],
                        help="run directories .../{condition}/seed{N}")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="directory whose eval/ holds the untrained model's metrics")
    parser.add_argument("--oracle", type=Path, default=None,
                        help="directory whose eval/ holds the oracle's metrics")
    parser.add_argument("--combine", type=Path, nargs="*", default=None,
                        help="per-grammar summary CSVs to concatenate")
    parser.add_argument("--out", type=Path, required=True, help="summary CSV to write")
    parser.add_argument("--by-condition", type=Path, default=None,
                        help="also write the per-condition means and intervals here")


def run(args: argparse.Namespace) -> None:
    import logging

    from metaexamples.grammar import summary

    log = logging.getLogger("metaexamples.summarize")
    if (args.grammar is None) == (args.combine is None):
        raise ValueError("give either --grammar (with --runs/--baseline/--oracle) or --combine")
    if args.grammar is not None:
        frame = summary.grammar_summary(args.grammar, args.runs, args.baseline, args.oracle)
    else:
        frame = summary.read_summaries(args.combine)
    summary.write_csv(args.out, frame)
    log.info("wrote %s (%d rows, %d columns)", args.out, len(frame), frame.shape[1])
    if args.by_condition is not None:
        table = summary.by_condition(frame)
        summary.write_csv(args.by_condition, table)
        log.info("wrote %s (%d rows)", args.by_condition, len(table))
        outside = table[~table["bounds"].isin(["", summary.WITHIN])]
        for row in outside.itertuples():
            log.warning("%s %s %s = %.4g: %s", row.grammar, row.condition, row.metric,
                        row.mean, row.bounds)
