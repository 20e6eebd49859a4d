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
    metaexamples nim summarize --experiment tiny [--experiment 357 ...] --seed 0 [--seed 1 ...]

Experiments are the entries of ``nim.experiments`` in the config (see
`metaexamples.nim.experiments`); ``--settings`` takes the JSON the workflow passes instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from pathlib import Path
from typing import Any

from metaexamples.commands import add_config_arguments, load_sections
from metaexamples.config import ConfigError, NimTrainingConfig, load_config

log = logging.getLogger(__name__)

DATA_ROOT = Path("data/nim")
RESULTS_ROOT = Path("results/nim")
TRAIN_MODULE = "metaexamples.commands.nim_train"


class LeakageGateError(ValueError):
    """The leakage gate failed; the message lists every violation."""


# -- shared helpers ---------------------------------------------------------------------


def experiment_entry(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment's config entry: ``nim.experiments.<name>`` from --settings or --config."""
    key = f"nim.experiments.{args.experiment}"
    if args.settings is not None:
        try:
            data = json.loads(args.settings)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--settings: not valid JSON: {err}") from err
        entry = data.get(key, {}) if isinstance(data, dict) else None
        if not isinstance(entry, dict):
            raise ConfigError(f"--settings: {key} must be a mapping")
        return entry
    experiments = load_config(args.config).nim.experiments
    if args.experiment not in experiments:
        raise ConfigError(
            f"{key}: not configured in {args.config} (configured: {sorted(experiments)})"
        )
    return experiments[args.experiment]


def resolve(args: argparse.Namespace) -> Any:
    from metaexamples.nim.experiments import ExperimentError, resolve_experiment

    try:
        return resolve_experiment(args.experiment, experiment_entry(args))
    except ExperimentError as err:
        where = f"nim.experiments.{args.experiment}" + (f".{err.key}" if err.key else "")
        raise ConfigError(f"{where}: {err.detail}") from err


def _add_experiment(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--experiment", required=True, help="a name under nim.experiments")


def _read_eval_sets(data_dir: Path, names: Any) -> dict[str, list[dict[str, Any]]]:
    from metaexamples.io import read_jsonl

    return {name: read_jsonl(data_dir / f"{name}.jsonl") for name in names}


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
    from metaexamples.io import read_jsonl, write_json
    from metaexamples.nim.summary import leakage_document

    experiment = resolve(args)
    data_dir = args.data_dir or DATA_ROOT / args.experiment
    out = args.out or RESULTS_ROOT / args.experiment / "leakage.json"
    train = read_jsonl(data_dir / "train.jsonl")
    held_out = _read_eval_sets(data_dir, experiment.settings.heldout_set_names)
    document = leakage_document(experiment, train, held_out)
    write_json(out, document)
    if not document["passed"]:
        raise LeakageGateError(
            f"leakage gate failed for experiment {args.experiment!r} (report: {out}):\n  "
            + "\n  ".join(document["violations"])
            + f"\nfix the data, or relax nim.experiments.{args.experiment}.leakage.<threshold>"
        )
    log.info("leakage gate passed for %s (%s)", args.experiment, out)


# -- train ------------------------------------------------------------------------------


def configure_train(parser: argparse.ArgumentParser) -> None:
    try:
        module = importlib.import_module(TRAIN_MODULE)
    except ModuleNotFoundError as err:
        if err.name != TRAIN_MODULE:
            raise
        parser.set_defaults(nim_run=_no_trainer)
        return
    module.configure(parser)
    parser.set_defaults(nim_run=module.run)


def _no_trainer(args: argparse.Namespace) -> None:
    raise RuntimeError(f"the Nim trainer ({TRAIN_MODULE}) is not installed in this checkout")


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
    import pandas as pd

    from metaexamples.io import read_jsonl
    from metaexamples.nim.evaluate import wide_table
    from metaexamples.nim.plots import plot_all
    from metaexamples.nim.summary import select_step

    records = pd.read_csv(args.eval_dir / "accuracy_table.csv").to_dict("records")
    rows = read_jsonl(args.eval_dir / "predictions.jsonl")
    try:
        step: int | str = int(select_step(records)["step"])
    except ValueError:  # evaluated without a validation set: the last checkpoint
        log.warning("%s: no validation rows; breakdowns drawn at the last step", args.eval_dir)
        step = "last"
    written = plot_all(rows, wide_table(records), args.out_dir or args.eval_dir / "plots", step)
    log.info("wrote %d figures (breakdowns at step %s)", len(written), step)


# -- summarize --------------------------------------------------------------------------


def configure_summarize(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--experiment", action="append", required=True, help="an experiment to include (repeatable)"
    )
    parser.add_argument("--seed", type=int, action="append", required=True,
                        help="a training seed to include (repeatable)")  # fmt: skip
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_ROOT,
        help="holds <experiment>/leakage.json and <experiment>/seed<N>/accuracy_table.csv",
    )
    parser.add_argument("--out", type=Path, default=None,
                        help="default: RESULTS_DIR/summary.csv")  # fmt: skip


def run_summarize(args: argparse.Namespace) -> None:
    import pandas as pd

    from metaexamples.io import atomic_path, read_json
    from metaexamples.nim.summary import (
        ALL_SEEDS,
        SUMMARY_COLUMNS,
        across_seed_rows,
        seed_rows,
    )

    rows = []
    for name in args.experiment:
        folder = args.results_dir / name
        leakage = read_json(folder / "leakage.json")
        for seed in args.seed:
            table = pd.read_csv(folder / f"seed{seed}" / "accuracy_table.csv").to_dict("records")
            rows += seed_rows(name, seed, table, leakage)
    rows += across_seed_rows(rows)
    out = args.out or args.results_dir / "summary.csv"
    with atomic_path(out) as tmp:
        frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
        steps = ["selected_step", "final_step"]  # integers, blank on the across-seed rows
        frame[steps] = frame[steps].astype("Int64")
        frame.to_csv(tmp, index=False)
    for row in rows:
        if row["seed"] == ALL_SEEDS:
            log.info("%s %s: exact match %.3f [%.3f, %.3f] over %d seed(s); majority rate %.3f",
                     row["experiment"], row["dataset"], row["exact_match"],
                     row["exact_match_low"], row["exact_match_high"], row["n_seeds"],
                     row["majority_rate"])  # fmt: skip
    log.info("wrote %s (%d rows)", out, len(rows))


# -- wiring -----------------------------------------------------------------------------

SUBCOMMANDS = {
    "generate": (configure_generate, run_generate, "write data/nim/<experiment>/"),
    "leakage": (configure_leakage, run_leakage, "leakage report and gate"),
    "train": (configure_train, None, "prompt-masked L2-SP fine-tuning"),
    "evaluate": (configure_evaluate, run_evaluate, "every checkpoint x every eval set"),
    "plot": (configure_plot, run_plot, "figures from an evaluation"),
    "summarize": (configure_summarize, run_summarize, "results/nim/summary.csv"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="nim_command", required=True, metavar="SUBCOMMAND")
    for name, (configure_sub, run_sub, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if run_sub is not None:
            p.set_defaults(nim_run=run_sub)
        configure_sub(p)


def run(args: argparse.Namespace) -> None:
    args.nim_run(args)
