"""Score every val/test string and held-out canonical text with a model (scores.jsonl).

Writes `scores.jsonl` (one row per string: total log-probability of the string after its
opening tag, closing tag included; token count; per-token NLL and perplexity; for
negatives the score of the valid string they came from) and `perplexity_metrics.json`
(excess NLL, minimal-pair accuracy, AUROC overall and per negative type, canonical
held-out perplexity, with bootstrap intervals over strings).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from metaexamples.commands import add_evaluation_arguments, load_sections
from metaexamples.config import EvaluationConfig


def configure(parser: argparse.ArgumentParser) -> None:
    add_evaluation_arguments(parser, "one grammar's data (val.jsonl, test.jsonl, manifest.json)")
    parser.add_argument("--canonical-heldout", type=Path,
                        default=Path("data/canonical/heldout.jsonl"))
    parser.add_argument("--splits", default="val,test", help="comma-separated (default val,test)")


def run(args: argparse.Namespace) -> None:
    from metaexamples.grammar import evaluation
    from metaexamples.scale.runtime import set_threads

    cfg = load_sections(args, {"evaluation": EvaluationConfig})["evaluation"]
    set_threads(args.threads)
    evaluation.evaluate_perplexity(
        model_dir=args.model_dir,
        data_dir=args.data_dir,
        tokens_path=args.tokens,
        heldout_path=args.canonical_heldout,
        splits=tuple(s for s in args.splits.split(",") if s),
        cfg=cfg,
        out_dir=args.out_dir,
        bootstrap_seed=args.bootstrap_seed,
    )
