"""Seeds needed: from a pilot's spread across seeds, how many a paired design needs.

``metaexamples power --summary results/summary.csv --effect rule_validity_above_chance=0.05
--effect excess_nll=10%``: for every (grammar, contrast) with two or more paired seeds,
the standard deviation of the per-seed differences, and the number of seeds a paired
t-test needs to detect each effect with 80 % power at 5 % (divided by --comparisons,
the Bonferroni level Holm applies to the smallest p-value). An effect ending in % is
relative to the reference condition's mean. Writes a CSV (--out) and logs a table.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summary", type=Path, required=True,
                        help="a pilot's summary.csv with two or more seeds per condition")
    parser.add_argument("--effect", action="append", required=True, metavar="METRIC=SIZE",
                        help="effect to detect, absolute (0.05) or relative (10%%)")
    parser.add_argument("--pair", nargs=2, action="append", default=None,
                        metavar=("CONDITION", "REFERENCE"),
                        help="contrasts to size (default: every condition vs examples)")
    parser.add_argument("--comparisons", type=int, default=1,
                        help="contrasts adjusted together (the level is 5 %% / this)")
    parser.add_argument("--power", type=float, default=0.8)
    parser.add_argument("--out", type=Path, default=None, help="write the table as CSV")


def run(args: argparse.Namespace) -> None:
    import logging

    from metaexamples.grammar import power, summary

    log = logging.getLogger("metaexamples.power")
    frame = summary.read_summaries([args.summary])
    effects = [power.parse_effect(e) for e in args.effect]
    table = power.seeds_table(frame, effects, args.pair, args.comparisons, args.power)
    if args.out is not None:
        summary.write_csv(args.out, table)
    log.info("seeds needed (%.0f %% power, alpha %.4g):\n%s", 100 * args.power,
             0.05 / args.comparisons, table.to_string(index=False))
