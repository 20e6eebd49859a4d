"""CLI subcommands: argument parsing and settings resolved from the arguments; the science
lives in the package modules."""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from metaexamples.config import Config, ConfigError, load_config, section_from_dict
from metaexamples.training.settings import RunSettings


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="config.yaml",
                        help="experiment config YAML (default: config.yaml)")
    parser.add_argument("--settings", default=None,
                        help="inline JSON with just the sections this stage needs "
                             "(what the workflow passes); overrides --config")


def add_evaluation_arguments(parser: argparse.ArgumentParser, data_help: str) -> None:
    """What the evaluation stage takes: a model, one grammar's data and an output folder."""
    add_config_arguments(parser)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True, help=data_help)
    parser.add_argument("--tokens", type=Path, default=Path("data/tokens.json"))
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--bootstrap-seed", type=int, default=0)


def load_sections(args: argparse.Namespace, sections: dict[str, type]) -> dict[str, Any]:
    """The config sections a stage needs, from --settings JSON or from the --config file.

    `sections` maps a key path ('data', 'grammars.g2', 'nim.training') to its dataclass.
    """
    if args.settings is not None:
        try:
            data = json.loads(args.settings)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--settings: not valid JSON: {err}") from err
        return {key: section_from_dict(cls, data.get(key), key) for key, cls in sections.items()}
    config = load_config(args.config)
    return {key: _lookup(config, key) for key in sections}


def _lookup(config: Config, key: str) -> Any:
    obj: Any = config
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """What every training job takes: its settings, resolved by the workflow (--settings) or
    here from a config file (--config) for a run by hand, and where it checkpoints."""
    parser.add_argument("--config", default="config.yaml",
                        help="experiment config YAML the run's settings are resolved from "
                             "(default: config.yaml)")
    parser.add_argument("--settings", default=None,
                        help="the run's resolved settings as JSON (what the workflow passes); "
                             "taken as given, instead of --config")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--checkpoint-root", type=Path, default=Path("checkpoints"),
                        help="resumable checkpoints go to CHECKPOINT_ROOT/<run key>/; a rerun "
                             "with the same settings and inputs resumes from the newest")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep the run's checkpoints after its outputs are written")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    # testing aid: SIGKILL this process right after the given optimizer step
    parser.add_argument("--debug-kill-after-step", type=int, default=None,
                        help=argparse.SUPPRESS)


def kill_after(step: int | None) -> Callable[[Any], None] | None:
    """The `--debug-kill-after-step` hook: SIGKILL this process after optimizer step `step`."""
    if step is None:
        return None

    def hook(progress: Any) -> None:
        if progress.step == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def run_settings(args: argparse.Namespace, resolve: Callable[[Config], RunSettings],
                 overrides: Mapping[str, Any]) -> RunSettings:
    """--settings as given, or `resolve` applied to --config; `overrides` (flags the user
    set) change the config before it is resolved, so they go only with --config."""
    if args.settings is None:
        return resolve(load_config(args.config))
    if overrides:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in overrides)
        raise ConfigError(f"{flags}: change the config before it is resolved; --settings "
                          "is resolved already (pass --config instead)")
    return RunSettings.from_json(args.settings)
