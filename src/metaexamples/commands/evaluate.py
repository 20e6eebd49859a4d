"""Evaluate one model on one grammar in one job: score its strings and sample from it.

The model is loaded once (``--oracle``: the grammar's exact-distribution oracle on the
model directory's tokenizer, the upper bound of every metric). Writes into --out-dir:
`scores.jsonl` (one row per val/test string and held-out canonical document: total
log-probability after the opening tag, ending included; token count; the score of the
valid string a negative came from) and `perplexity_metrics.json` (P(L)-weighted excess
NLL with its per-length values, minimal-pair accuracy, AUROC pooled and per negative
type with counts, canonical perplexity); `samples.jsonl` (text, stop reason, format and
rule validity, length, whether it occurs in train) and `generation_metrics.json` (format
and rule validity, distinct and novel fractions, length histogram vs the generator's,
chance rate). Every metric carries a 95 % interval from within the run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from metaexamples.commands import add_evaluation_arguments, load_sections
from metaexamples.config import EvaluationConfig


def configure(parser: argparse.ArgumentParser) -> None:
    add_evaluation_arguments(parser, "one grammar's data (train/val/test.jsonl, manifest.json)")
    parser.add_argument("--oracle", action="store_true",
                        help="evaluate the grammar's exact-distribution oracle, on the "
                             "tokenizer in --model-dir")
    parser.add_argument("--canonical-heldout", type=Path,
                        default=Path("data/canonical/heldout.jsonl"))
    parser.add_argument("--splits", default="val,test", help="comma-separated (default val,test)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")


def run(args: argparse.Namespace) -> None:
    from metaexamples.grammar import evaluation
    from metaexamples.scale.runtime import set_threads

    cfg = load_sections(args, {"evaluation": EvaluationConfig})["evaluation"]
    set_threads(args.threads)
    evaluation.evaluate(
        model_dir=args.model_dir,
        data_dir=args.data_dir,
        tokens_path=args.tokens,
        heldout_path=args.canonical_heldout,
        splits=tuple(s for s in args.splits.split(",") if s),
        seed=args.seed,
        cfg=cfg,
        out_dir=args.out_dir,
        oracle=args.oracle,
        bootstrap_seed=args.bootstrap_seed,
    )
