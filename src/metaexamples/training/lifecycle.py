"""One fine-tuning run, as both families run it: `TrainingRun`.

Start (accelerator, seed, the base model's tokenizer and length limit), `prepare` (load the
base model; optimizer, schedule and L2-SP anchor), `resume` (from the newest resumable
checkpoint of the same settings and inputs, `checkpoints`), `train` (`loop.train_loop`,
saving a resumable checkpoint every `save_steps`), `finish` (the trained model,
``train_log.csv``, ``config.json`` and ``train_metrics.json``). The entries
(`lm.train_lm`, `prompted.train_prompt_completion`) bring their data and evaluation;
`read_texts` reads their text inputs.
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import AutoConfig

from metaexamples.io import DataFileError, read_jsonl, write_json, write_text
from metaexamples.models import load_model, load_tokenizer, save_model_dir
from metaexamples.training.anchor import drift_metrics
from metaexamples.training.checkpoints import latest_checkpoint, run_key, save_checkpoint
from metaexamples.training.loop import Progress, make_accelerator, prepare_training, train_loop
from metaexamples.training.settings import RunSettings

log = get_logger(__name__)  # logs on the main process only

DEFAULT_MAX_LENGTH = 2048  # a model that states no limit


class TrainingRun:
    """One run from a base model: made in order `prepare`, `resume` (optional), `train`,
    `finish`. Everything that can be wrong with the settings fails in the constructor,
    before any output exists."""

    def __init__(self, base_model: Path, settings: RunSettings, seed: int) -> None:
        self.started = time.perf_counter()
        self.base_model, self.settings = Path(base_model), settings
        self.accelerator, self.precision = make_accelerator(
            settings.precision, settings.gradient_accumulation_steps)
        set_seed(seed)
        limit = max_positions(self.base_model)
        if settings.max_seq_length is not None and limit is not None \
                and settings.max_seq_length > limit:
            raise ValueError(f"max_seq_length: {settings.max_seq_length} is above the model's "
                             f"maximum ({self.base_model}/config.json max_position_embeddings "
                             f"= {limit})")
        self.max_length = settings.max_seq_length or limit or DEFAULT_MAX_LENGTH
        self.tokenizer = load_tokenizer(self.base_model)
        self.checkpoint_dir: Path | None = None  # resumable checkpoints, named by `resume`

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def prepare(self, loader: DataLoader, what: str) -> None:
        """Load the base model and make it, its optimizer and `loader` ready to train."""
        model = load_model(self.base_model)
        log.info("%s; %d parameters; %s, %s", what, sum(p.numel() for p in model.parameters()),
                 self.accelerator.device, self.precision)
        self.model, self.optimizer, self.scheduler, self.loader, self.anchor = prepare_training(
            self.accelerator, model, loader, self.settings)

    def unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model, keep_torch_compile=False)

    def key(self, seed: int, digests: Mapping[str, str], **extra: Any
            ) -> tuple[str, dict[str, Any]]:
        """The run's key (`checkpoints.run_key`) of its inputs' `digests`, settings, seed,
        precision, process count and the entry's `extra`; and all of that but the key."""
        digests = dict(digests)
        hashed = {"run": self.settings.to_dict(), "seed": seed, "precision": self.precision,
                  "num_processes": self.accelerator.num_processes, **extra}
        return run_key(hashed, digests), {**hashed, "input_sha256": digests}

    def resume(self, checkpoint_dir: Path) -> Progress:
        """The progress to train from: the newest verified checkpoint in `checkpoint_dir`
        (its state restored), or step 0. Call after `prepare`."""
        self.checkpoint_dir = Path(checkpoint_dir)
        if self.is_main and self.checkpoint_dir.is_dir():
            for stale in self.checkpoint_dir.rglob(".step-*.tmp"):  # a kill during a save
                shutil.rmtree(stale, ignore_errors=True)
        found = latest_checkpoint(self.checkpoint_dir)
        if found is None:
            return Progress()
        path, progress = found
        self.accelerator.load_state(str(path))
        log.info("resuming from %s (step %d of %d)", path, progress.step,
                 self.settings.max_steps)
        return progress

    def train(self, progress: Progress, *,
              evaluate: Callable[[], dict[str, float]] | None = None,
              save: Callable[[Progress], None] | None = None,
              after_step: Callable[[Progress], None] | None = None,
              tensorboard_dir: Path | None = None) -> Progress:
        """Train from `progress` to the last step. Every `save_steps` the entry's `save`
        runs, then (before the last step) a resumable checkpoint is written, if `resume`
        named where."""
        checkpoint_dir = self.checkpoint_dir

        def save_both(p: Progress) -> None:
            if save is not None:
                save(p)
            if checkpoint_dir is not None and p.step < self.settings.max_steps:
                save_checkpoint(self.accelerator, checkpoint_dir, p)

        return train_loop(self.accelerator, self.model, self.optimizer, self.scheduler,
                          self.loader, self.settings, progress, evaluate=evaluate,
                          save=save_both, anchor=self.anchor, after_step=after_step,
                          tensorboard_dir=tensorboard_dir)

    def remove_checkpoints(self) -> None:
        """Once the outputs are written, the resumable checkpoints have served."""
        if self.is_main and self.checkpoint_dir is not None:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)

    def finish(self, progress: Progress, *, out_dir: Path, model_name: str,
               info: Mapping[str, Any], config: Mapping[str, Any],
               metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The run's metrics (`common_metrics`, the drift from the base model, then the
        entry's own `metrics`), and on the main process the trained model in
        ``out_dir/model_name``, ``train_log.csv``, ``config.json`` (the settings, then the
        entry's own `config`) and ``train_metrics.json``; every process returns the
        metrics."""
        net = self.unwrapped()
        out = common_metrics(self.accelerator, self.precision, progress,
                             time.perf_counter() - self.started)
        out |= {**metrics, **drift_metrics(net, self.base_model, self.settings.l2sp_weight)}
        if self.is_main:
            out_dir = Path(out_dir)
            save_model_dir(out_dir / model_name, net, self.tokenizer, dict(info))
            write_text(out_dir / "train_log.csv", history_csv(progress.history))
            write_json(out_dir / "config.json", {"run": self.settings.to_dict(), **config})
            write_json(out_dir / "train_metrics.json", out)
        self.accelerator.wait_for_everyone()
        return out


def max_positions(model_dir: Path) -> int | None:
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError) as err:
        raise DataFileError(f"{model_dir}: not a model directory ({err})") from err
    return getattr(config, "max_position_embeddings", None)


def read_texts(path: Path, valid_only: bool = False) -> list[str]:
    """The `text` field of a JSONL file (or the lines of a .txt file, one text per line).

    With `valid_only`, rows whose `valid` field is false are left out.
    """
    if path.suffix == ".txt":
        if not path.is_file():
            raise DataFileError(f"{path}: file not found")
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    else:
        rows = read_jsonl(path, required=("text",))
        texts = [r["text"] for r in rows if not (valid_only and r.get("valid") is False)]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise DataFileError(f"{path}: no non-empty texts" + (" marked valid" if valid_only else ""))
    return texts


def history_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The eval history as CSV: step, tokens, lr, train columns first, then the rest sorted
    (per-string lists, such as the learning curve's, go to their own file)."""
    first = ["step", "epoch", "tokens", "lr", "train_loss", "train_seconds"]
    keys = {k for row in rows for k, v in row.items() if not isinstance(v, list | tuple)}
    columns = [k for k in first if k in keys] + sorted(keys - set(first))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    return buf.getvalue()


def common_metrics(accelerator: Accelerator, precision: str, progress: Progress,
                    wall: float) -> dict[str, Any]:
    return {
        "steps": progress.step,
        "tokens_seen": progress.tokens,
        "wall_time_s": round(wall, 3),
        "train_seconds": round(progress.train_seconds, 3),
        "tokens_per_s": round(progress.tokens / max(progress.train_seconds, 1e-9), 1),
        "final_train_loss": progress.history[-1].get("train_loss"),
        "device": str(accelerator.device),
        "num_processes": accelerator.num_processes,
        "precision": precision,
        "torch_threads": torch.get_num_threads(),
    }
