"""Fine-tune on Nim prompt/answer pairs: loss on answer tokens only, L2-SP anchor.

Writes OUT_DIR/checkpoints/step-N/ every save_every_epochs, OUT_DIR/final/,
train_metrics.json, train_log.csv and config.json. Settings: the nim.training section,
resolved for the examples in --train (`config.NimTrainingConfig.run_settings`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from metaexamples.commands import add_run_settings_arguments, run_settings
from metaexamples.config import Config
from metaexamples.io import read_jsonl
from metaexamples.training.settings import RunSettings


def configure(parser: argparse.ArgumentParser) -> None:
    add_run_settings_arguments(parser)
    parser.add_argument("--model-id", type=Path, required=True, help="base model directory")
    parser.add_argument(
        "--train", type=Path, required=True, help="JSONL with 'prompt' and 'answer' per row"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument(
        "--max-len",
        type=int,
        default=None,
        help="longest tokenised example (default: the model's maximum; with --config)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run(args: argparse.Namespace) -> None:
    from metaexamples.scale.runtime import set_threads
    from metaexamples.training.prompted import train_prompt_completion

    rows = read_jsonl(args.train, required=("prompt", "answer"))
    changes = {"max_len": args.max_len} if args.max_len is not None else {}

    def resolve(config: Config) -> RunSettings:
        settings = config.nim.training.run_settings(len(rows))
        return dataclasses.replace(settings, max_seq_length=args.max_len)

    settings = run_settings(args, resolve, changes)
    set_threads(args.threads)
    names = [
        f"{args.train}:{i + 1}" + (f" (id {r['id']})" if "id" in r else "")
        for i, r in enumerate(rows)
    ]
    train_prompt_completion(
        args.model_id,
        [r["prompt"] for r in rows],
        [r["answer"] for r in rows],
        settings,
        seed=args.seed,
        out_dir=args.out_dir,
        names=names,
    )
