"""Sample strings after the opening tag and judge them (samples.jsonl).

Temperature 1, the full distribution (top-p 1), each sample stopped at its closing tag
or after `evaluation.max_new_tokens`. Writes `samples.jsonl` (text, stop reason, format
and rule validity, length, whether it occurs in train) and `generation_metrics.json`
(format validity, rule validity, rule validity among well-formed samples, distinct and
novel fractions, length histogram vs the generator's, chance rate, bootstrap intervals).
"""

from __future__ import annotations

import argparse

from metaexamples.commands import add_evaluation_arguments, load_sections
from metaexamples.config import EvaluationConfig


def configure(parser: argparse.ArgumentParser) -> None:
    add_evaluation_arguments(parser, "one grammar's data (train.jsonl, manifest.json)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--samples", type=int, default=None,
                        help="override evaluation.samples")


def run(args: argparse.Namespace) -> None:
    import dataclasses

    from metaexamples.grammar import evaluation
    from metaexamples.scale.runtime import set_threads

    cfg = load_sections(args, {"evaluation": EvaluationConfig})["evaluation"]
    if args.samples is not None:
        cfg = dataclasses.replace(cfg, samples=args.samples)
    set_threads(args.threads)
    evaluation.evaluate_generation(
        model_dir=args.model_dir,
        data_dir=args.data_dir,
        tokens_path=args.tokens,
        seed=args.seed,
        cfg=cfg,
        out_dir=args.out_dir,
        bootstrap_seed=args.bootstrap_seed,
    )
