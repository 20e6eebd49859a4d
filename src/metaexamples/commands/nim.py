"""The Nim experiment family: generate, leakage, train, evaluate, plot, summarize.

    metaexamples nim generate  --experiment tiny --model-id data/models/tiny-neox
    metaexamples nim leakage   --experiment tiny
    metaexamples nim train     --model-id data/models/tiny-neox --seed 0 \\
                               --train data/nim/tiny/train.jsonl \\
                               --out-dir results/nim/tiny/seed0/train
    metaexamples nim evaluate  --train-dir results/nim/tiny/seed0/train \\
                               --base-model data/models/tiny-neox \\
                               --eval data/nim/tiny/val.jsonl data/nim/tiny/eval.jsonl \\
                               --out-dir results/nim/tiny/seed0
    metaexamples nim plot      --eval-dir results/nim/tiny/seed0
    metaexamples nim summarize --run tiny 0 results/nim/tiny/seed0/accuracy_table.csv \
        results/nim/tiny/leakage.json [--run ...] --out results/nim/summary.csv

Experiments are the entries of ``nim.experiments`` in the config (see
`metaexamples.nim.experiments`); ``--settings`` takes the JSON the workflow passes instead.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from metaexamples.commands import add_config_arguments, load_sections, nim_train
from metaexamples.config import NimTrainingConfig

log = logging.getLogger(__name__)

DATA_ROOT = Path("data/nim")
RESULTS_ROOT = Path("results/nim")


# -- shared helpers ---------------------------------------------------------------------


def resolve(args: argparse.Namespace) -> Any:
    """The experiment named by --experiment, from --settings or --config."""
    from metaexamples.nim.experiments import load_experiment

    return load_experiment(args.experiment, args.settings, args.config)


def _add_experiment(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--experiment", required=True, help="a name under nim.experiments")


# -- generate ---------------------------------------------------------------------------


def configure_generate(parser: argparse.ArgumentParser) -> None:
    _add_experiment(parser)
    parser.add_argument("--model-id", type=Path, default=None,
                        help="model directory whose tokenizer checks every prompt/answer seam "
                             "(without it the seam is not checked)")  # fmt: skip
    parser.add_argument("--out-dir", type=Path, default=None,
                        help=f"default: {DATA_ROOT}/<experiment>")  # fmt: skip


def run_generate(args: argparse.Namespace) -> None:
    from metaexamples.nim.generator import write_experiment

    experiment = resolve(args)
    tokenizer = None
    if args.model_id is not None:
        from metaexamples.models import load_tokenizer

        tokenizer = load_tokenizer(args.model_id)
    else:
        log.warning("no --model-id: the prompt/answer token seam is not checked")
    write_experiment(experiment.settings, args.out_dir or DATA_ROOT / args.experiment, tokenizer)


# -- leakage ----------------------------------------------------------------------------


def configure_leakage(parser: argparse.ArgumentParser) -> None:
    _add_experiment(parser)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"default: {DATA_ROOT}/<experiment>")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None,
                        help=f"default: {RESULTS_ROOT}/<experiment>/leakage.json")  # fmt: skip


def run_leakage(args: argparse.Namespace) -> None:
    from metaexamples.nim.summary import run_leakage_gate

    out = args.out or RESULTS_ROOT / args.experiment / "leakage.json"
    run_leakage_gate(resolve(args), args.data_dir or DATA_ROOT / args.experiment, out)


# -- train ------------------------------------------------------------------------------


# -- evaluate ---------------------------------------------------------------------------


def configure_evaluate(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--train-dir",
        type=Path,
        default=None,
        help="a training run: checkpoints/step-N/ and final/ are evaluated",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        help="a model directory saved at step N, as N=DIR (repeatable)",
    )
    parser.add_argument(
        "--base-model",
        type=Path,
        required=True,
        help="the model trained from: its tokenizer is used, and it is "
        "evaluated as step 0 unless --no-base",
    )
    parser.add_argument("--no-base", action="store_true", help="do not evaluate step 0")
    parser.add_argument(
        "--eval",
        type=Path,
        nargs="+",
        required=True,
        help="eval JSONL files (dataset name: the file stem)",
    )
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: nim.training.eval_batch_size"
    )
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")  # fmt: skip


def _explicit_checkpoint(spec: Path) -> Any:
    from metaexamples.nim.checkpoints import Checkpoint

    step, sep, path = str(spec).partition("=")
    if not sep or not step.isdigit():
        raise ValueError(f"--checkpoint: expected STEP=DIR, got {str(spec)!r}")
    return Checkpoint(int(step), Path(path), Path(path).name)


def run_evaluate(args: argparse.Namespace) -> None:
    from metaexamples.io import read_jsonl
    from metaexamples.models import load_tokenizer
    from metaexamples.nim.checkpoints import Checkpoint, find_checkpoints
    from metaexamples.nim.evaluate import BASE_NAME, evaluate
    from metaexamples.scale.runtime import set_threads

    cfg: NimTrainingConfig = load_sections(args, {"nim.training": NimTrainingConfig})[
        "nim.training"
    ]
    set_threads(args.threads)
    checkpoints = [_explicit_checkpoint(c) for c in args.checkpoint]
    if args.train_dir is not None:
        checkpoints += find_checkpoints(args.train_dir)
    if not args.no_base:
        checkpoints.append(Checkpoint(0, args.base_model, BASE_NAME))
    checkpoints.sort(key=lambda c: c.step)
    names = [p.stem for p in args.eval]
    if len(set(names)) != len(names):
        raise ValueError(f"--eval: two files share a name: {names}")
    datasets = {p.stem: read_jsonl(p) for p in args.eval}
    evaluate(
        checkpoints, datasets, load_tokenizer(args.base_model), args.out_dir,
        batch_size=args.batch_size or cfg.eval_batch_size, device=args.device,
    )  # fmt: skip


# -- plot -------------------------------------------------------------------------------


def configure_plot(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--eval-dir",
        type=Path,
        required=True,
        help="where nim evaluate wrote accuracy_table.csv and predictions.jsonl",
    )
    parser.add_argument("--out-dir", type=Path, default=None, help="default: EVAL_DIR/plots")


def run_plot(args: argparse.Namespace) -> None:
    from metaexamples.nim.plots import plot_evaluation

    plot_evaluation(args.eval_dir, args.out_dir)


# -- summarize --------------------------------------------------------------------------


def configure_summarize(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", dest="runs", nargs=4, action="append", default=[],
                        metavar=("EXPERIMENT", "SEED", "ACCURACY_TABLE", "LEAKAGE"),
                        help="one run and its files (repeatable; none: a header-only table)")
    parser.add_argument("--out", type=Path, default=RESULTS_ROOT / "summary.csv")


def run_summarize(args: argparse.Namespace) -> None:
    from metaexamples.nim.summary import summary_rows, write_summary

    write_summary(summary_rows(args.runs), args.out)


# -- wiring -----------------------------------------------------------------------------

SUBCOMMANDS = {
    "generate": (configure_generate, run_generate, "write data/nim/<experiment>/"),
    "leakage": (configure_leakage, run_leakage, "leakage report and gate"),
    "train": (nim_train.configure, nim_train.run, "prompt-masked L2-SP fine-tuning"),
    "evaluate": (configure_evaluate, run_evaluate, "every checkpoint x every eval set"),
    "plot": (configure_plot, run_plot, "figures from an evaluation"),
    "summarize": (configure_summarize, run_summarize, "results/nim/summary.csv"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="nim_command", required=True, metavar="SUBCOMMAND")
    for name, (configure_sub, run_sub, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(nim_run=run_sub)
        configure_sub(p)


def run(args: argparse.Namespace) -> None:
    args.nim_run(args)
