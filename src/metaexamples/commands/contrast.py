"""Paired contrasts between conditions (results/{grammar}/contrasts.csv, results/contrasts.csv).

- one grammar: ``--summary results/g3/summary.csv --pair meta_10pct examples ...
  --run CONDITION SEED SCORES SAMPLES CURVE ... --manifest data/g3/manifest.json
  --out results/g3/contrasts.csv [--plot results/g3/plots/contrasts.png]``. Runs are
  paired by seed; with one seed the runs' scores and samples are resampled (scope
  "models"), with two or more the per-seed values are compared (scope "condition").
- all grammars: ``--combine results/g1/contrasts.csv ... --out results/contrasts.csv``:
  Holm's adjustment and the minimum detectable effects over every contrast.
Estimates are condition minus reference, oriented so that positive means better.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summary", type=Path, help="one grammar's summary.csv")
    parser.add_argument("--pair", nargs=2, action="append", default=[],
                        metavar=("CONDITION", "REFERENCE"), help="a contrast to make")
    parser.add_argument("--run", dest="runs", nargs=5, action="append", default=[],
                        metavar=("CONDITION", "SEED", "SCORES", "SAMPLES", "CURVE"),
                        help="one run's per-string scores, samples and learning curve")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="the grammar's manifest.json (its length distribution)")
    parser.add_argument("--resamples", type=int, default=2000,
                        help="bootstrap resamples of a one-seed contrast")
    parser.add_argument("--combine", type=Path, nargs="*", default=None,
                        help="per-grammar contrasts.csv files to adjust together")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plot", type=Path, default=None, help="also draw the forest plot")


def run(args: argparse.Namespace) -> None:
    import logging

    import pandas as pd

    from metaexamples.grammar import contrasts, plots, summary
    from metaexamples.io import read_json

    log = logging.getLogger("metaexamples.contrast")
    if (args.summary is None) == (args.combine is None):
        raise ValueError("give either --summary (with --pair/--run) or --combine")
    if args.combine is not None:
        table = contrasts.combine([summary.read_csv_file(p) for p in args.combine])
    else:
        frame = summary.read_summaries([args.summary])
        runs = {(c, int(s)): contrasts.RunData(Path(sc), Path(sa), Path(cu))
                for c, s, sc, sa, cu in args.runs}
        manifest = read_json(args.manifest) if args.manifest else None
        table = contrasts.grammar_contrasts(frame, [tuple(p) for p in args.pair], runs,
                                            manifest, args.resamples)
    summary.write_csv(args.out, table)
    log.info("wrote %s (%d contrasts, %d tested)", args.out, len(table),
             int(pd.notna(table["p_value"]).sum()))
    for r in table[table["verdict"].isin([contrasts.BETTER, contrasts.WORSE])].itertuples():
        log.info("%s %s vs %s, %s: %s (%+.4g [%.4g, %.4g], Holm p %.3g)", r.grammar,
                 r.condition, r.reference, r.metric, r.verdict, r.estimate, r.ci_low,
                 r.ci_high, r.p_holm)
    if args.plot is not None:
        plots.plot_contrasts(table, args.plot)
