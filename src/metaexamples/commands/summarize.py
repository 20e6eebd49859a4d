"""Summarise runs into CSV tables (results/{grammar}/summary.csv, results/summary.csv).

Two modes:

- one grammar: ``--grammar g1 --runs RUN_DIR... [--baseline DIR] --out results/g1/summary.csv``;
  each RUN_DIR is ``.../{condition}/seed{N}`` with ``train_metrics.json`` and ``eval/``;
  the baseline directory (the untrained model, step 0) has ``eval/`` only.
- all grammars: ``--combine results/g1/summary.csv ... --out results/summary.csv
  --by-condition results/summary_by_condition.csv`` concatenates the per-grammar tables
  and adds the mean and 95 % bootstrap interval of every metric per condition (across
  seeds; across strings when a condition has one seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from metaexamples.commands import add_config_arguments, load_sections
from metaexamples.config import EvaluationConfig


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--grammar", help="summarise this grammar's runs")
    parser.add_argument("--runs", type=Path, nargs="*", default=[],
                        help="run directories .../{condition}/seed{N}")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="directory whose eval/ holds the untrained model's metrics")
    parser.add_argument("--combine", type=Path, nargs="*", default=None,
                        help="per-grammar summary CSVs to concatenate")
    parser.add_argument("--out", type=Path, required=True, help="summary CSV to write")
    parser.add_argument("--by-condition", type=Path, default=None,
                        help="also write the per-condition means and intervals here")
    parser.add_argument("--bootstrap-seed", type=int, default=0)


def run(args: argparse.Namespace) -> None:
    import logging

    import numpy as np

    from metaexamples.grammar import summary

    log = logging.getLogger("metaexamples.summarize")
    if (args.grammar is None) == (args.combine is None):
        raise ValueError("give either --grammar (with --runs/--baseline) or --combine")
    if args.grammar is not None:
        frame = summary.grammar_summary(args.grammar, args.runs, args.baseline)
    else:
        frame = summary.read_summaries(args.combine)
    summary.write_csv(args.out, frame)
    log.info("wrote %s (%d rows, %d columns)", args.out, len(frame), frame.shape[1])
    if args.by_condition is not None:
        cfg = load_sections(args, {"evaluation": EvaluationConfig})["evaluation"]
        rng = np.random.default_rng(args.bootstrap_seed)
        table = summary.by_condition(frame, rng, cfg.bootstrap_resamples)
        summary.write_csv(args.by_condition, table)
        log.info("wrote %s (%d rows)", args.by_condition, len(table))
