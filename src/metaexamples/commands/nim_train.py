"""Fine-tune on Nim prompt/answer pairs: loss on answer tokens only, L2-SP anchor.

Writes OUT_DIR/checkpoints/step-N/ every save_every_epochs, OUT_DIR/final/,
train_metrics.json, train_log.csv and config.json; resumable checkpoints go to
CHECKPOINT_ROOT/<run key>/ and are removed once the outputs are written. Rerunning after a
kill resumes from the latest checkpoint of the same settings and inputs. Settings: the
nim.training section, resolved for the examples in --train
(`config.NimTrainingConfig.run_settings`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from metaexamples.commands import add_training_arguments, kill_after, run_settings
from metaexamples.config import Config
from metaexamples.io import read_jsonl
from metaexamples.training.settings import RunSettings


def configure(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser)
    parser.add_argument("--model-id", type=Path, required=True, help="base model directory")
    parser.add_argument(
        "--train", type=Path, required=True, help="JSONL with 'prompt' and 'answer' per row"
    )
    parser.add_argument(
        "--max-len",
        type=int,
        default=None,
        help="longest tokenised example (default: the model's maximum; with --config)",
    )


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
        checkpoint_root=args.checkpoint_root,
        keep_checkpoints=args.keep_checkpoints,
        names=names,
        after_step=kill_after(args.debug_kill_after_step),
    )
