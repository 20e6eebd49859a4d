"""Summarise runs into CSV tables (results/{grammar}/summary.csv, results/summary.csv).

Two modes:

- one grammar: ``--grammar g1 --run CONDITION SEED PERPLEXITY GENERATION TRAIN CURVE ...
  --reference baseline PERPLEXITY GENERATION --reference oracle PERPLEXITY GENERATION
  --out results/g1/summary.csv``: every file is named, with the condition and seed it
  belongs to (the baseline is the untrained model at step 0, the oracle the grammar's
  exact distribution);
- all grammars: ``--combine results/g1/summary.csv ... --out results/summary.csv
  --by-condition results/summary_by_condition.csv`` concatenates the per-grammar tables
  and adds the value and 95 % interval of every metric per condition (Student-t across
  seeds, scope "seeds"; the run's own interval with one seed, scope "run").
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grammar", help="summarise this grammar's runs")
    parser.add_argument("--run", dest="runs", nargs=6, action="append", default=[],
                        metavar=("CONDITION", "SEED", "PERPLEXITY", "GENERATION", "TRAIN",
                                 "CURVE"),
                        help="one trained run: its condition, seed and four files")
    parser.add_argument("--reference", nargs=3, action="append", default=[],
                        metavar=("NAME", "PERPLEXITY", "GENERATION"),
                        help="a bound: baseline (step 0) or oracle, with its two files")
    parser.add_argument("--speed-threshold", type=float, default=5.0,
                        help="val excess NLL (nats) that tokens_to_threshold counts tokens to "
                             "(evaluation.speed_threshold_nats)")
    parser.add_argument("--combine", type=Path, nargs="*", default=None,
                        help="per-grammar summary CSVs to concatenate")
    parser.add_argument("--out", type=Path, required=True, help="summary CSV to write")
    parser.add_argument("--by-condition", type=Path, default=None,
                        help="also write the per-condition values and intervals here")


def run(args: argparse.Namespace) -> None:
    import logging

    from metaexamples.grammar import aggregate, summary

    log = logging.getLogger("metaexamples.summarize")
    if (args.grammar is None) == (args.combine is None):
        raise ValueError("give either --grammar (with --run/--reference) or --combine")
    if args.grammar is not None:
        files = [summary.RunFiles(name, None, Path(ppl), Path(gen))
                 for name, ppl, gen in args.reference]
        for name, *_ in args.reference:
            if name not in summary.REFERENCES:
                raise ValueError(f"--reference {name}: must be one of {list(summary.REFERENCES)}")
        for condition, seed, ppl, gen, train, curve in args.runs:
            files.append(summary.RunFiles(condition, int(seed), Path(ppl), Path(gen),
                                          Path(train), Path(curve)))
        frame = summary.grammar_summary(args.grammar, files, args.speed_threshold)
    else:
        frame = summary.read_summaries(args.combine)
    summary.write_csv(args.out, frame)
    log.info("wrote %s (%d rows, %d columns)", args.out, len(frame), frame.shape[1])
    if args.by_condition is not None:
        table = aggregate.by_condition(frame)
        summary.write_csv(args.by_condition, table)
        log.info("wrote %s (%d rows)", args.by_condition, len(table))
        outside = table[~table["bounds"].isin(["", aggregate.WITHIN])]
        for row in outside.itertuples():
            log.warning("%s %s %s = %.4g: %s", row.grammar, row.condition, row.metric,
                        row.mean, row.bounds)
