"""Fine-tune on Nim prompt/answer pairs: loss on answer tokens only, L2-SP anchor.

Writes OUT_DIR/checkpoints/step-N/ every save_every_epochs, OUT_DIR/final/,
train_metrics.json, train_log.csv and config.json. Settings: the nim.training section.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from metaexamples.commands import add_config_arguments, load_sections
from metaexamples.config import NimTrainingConfig
from metaexamples.io import read_jsonl


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
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
        help="longest tokenised example (default: the model's maximum)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run(args: argparse.Namespace) -> None:
    from metaexamples.scale.runtime import set_threads
    from metaexamples.training.prompted import train_prompt_completion

    cfg: NimTrainingConfig = load_sections(args, {"nim.training": NimTrainingConfig})[
        "nim.training"
    ]
    set_threads(args.threads)
    rows = read_jsonl(args.train, required=("prompt", "answer"))
    names = [
        f"{args.train}:{i + 1}" + (f" (id {r['id']})" if "id" in r else "")
        for i, r in enumerate(rows)
    ]
    train_prompt_completion(
        args.model_id,
        [r["prompt"] for r in rows],
        [r["answer"] for r in rows],
        cfg,
        seed=args.seed,
        out_dir=args.out_dir,
        names=names,
        max_len=args.max_len,
    )
