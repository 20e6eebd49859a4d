"""Train one grammar run: canonical text + synthetic documents mixed by token share, packed.

Writes OUT_DIR/model/ (safetensors + tokenizer), train_metrics.json, train_log.csv and
config.json; resumable checkpoints go to CHECKPOINT_ROOT/<run key>/step-N/ and are removed
once the outputs are written. Rerunning after a kill resumes from the latest checkpoint of
the same settings and inputs.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from metaexamples.commands import add_training_arguments, kill_after, run_settings
from metaexamples.config import Config, ConfigError
from metaexamples.training.settings import RunSettings

# flags that override the corresponding training.* settings (the original project's names)
OVERRIDES = {
    "max_steps": int, "eval_steps": int, "learning_rate": float, "batch_size": int,
    "gradient_accumulation_steps": int, "warmup_steps": int, "save_steps": int,
    "max_seq_length": int, "synthetic_mix_ratio": float,
}


def configure(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser)
    parser.add_argument("--model-id", type=Path, required=True, help="base model directory")
    parser.add_argument("--corpus", type=Path, required=True,
                        help="grammar examples (JSONL, field 'text'), e.g. data/g1/train.jsonl")
    parser.add_argument("--meta", type=Path, default=None,
                        help="metaexamples (JSONL), e.g. data/g1/meta_describe.jsonl")
    parser.add_argument("--meta-percent", type=float, default=0.0,
                        help="share of the synthetic token budget given to --meta (0-100)")
    parser.add_argument("--canonical", type=Path, default=Path("data/canonical/train.jsonl"))
    parser.add_argument("--canonical-heldout", type=Path, default=None,
                        help="held-out canonical documents scored every eval_steps")
    parser.add_argument("--eval-data", type=Path, default=None,
                        help="grammar val split (JSONL; rows with valid=false are skipped)")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="the grammar's manifest.json: with --eval-data, score the val "
                             "excess NLL over every length at each evaluation")
    parser.add_argument("--exact-max-strings", type=int, default=256,
                        help="lengths with at most this many strings are scored exactly "
                             "(evaluation.exact_max_strings)")
    parser.add_argument("--grammar", default=None,
                        help="the run's grammar: picks its entry of a per-grammar "
                             "training.max_steps in --config")
    for name, kind in OVERRIDES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"override training.{name} of --config")


def training_settings(args: argparse.Namespace) -> RunSettings:
    changes = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None}

    def resolve(config: Config) -> RunSettings:
        try:
            training = dataclasses.replace(config.training, **changes)
        except ConfigError:
            raise
        except (TypeError, ValueError) as err:
            raise ConfigError(f"training: {err}") from err
        return training.run_settings(args.grammar)

    return run_settings(args, resolve, changes)


def run(args: argparse.Namespace) -> None:
    from metaexamples.scale.runtime import set_threads
    from metaexamples.training.lm import LMInputs, train_lm

    settings = training_settings(args)
    set_threads(args.threads)
    inputs = LMInputs(
        model_dir=args.model_id, corpus=args.corpus, canonical=args.canonical,
        canonical_heldout=args.canonical_heldout, eval_data=args.eval_data,
        meta=args.meta, meta_percent=args.meta_percent, manifest=args.manifest,
        exact_max_strings=args.exact_max_strings,
    )
    train_lm(inputs, settings, seed=args.seed, out_dir=args.out_dir,
             checkpoint_root=args.checkpoint_root, keep_checkpoints=args.keep_checkpoints,
             after_step=kill_after(args.debug_kill_after_step))
