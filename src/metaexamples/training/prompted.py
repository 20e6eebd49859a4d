"""The prompt/completion entry (Nim runs): `train_prompt_completion`.

Padded prompt/completion batches for `epochs`, loss on completion tokens only, the L2-SP
anchor; a Hugging Face model directory every `save_every_epochs` (``checkpoints/step-N/``,
kept beside the resumable checkpoints until the run ends, so that a resumed run still has
the earlier ones) plus ``final/``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from accelerate.logging import get_logger
from torch.utils.data import DataLoader

from metaexamples.models import model_info, save_model_dir
from metaexamples.training.checkpoints import checkpoint_steps, path_digest
from metaexamples.training.encoding import PadCollate, encode_prompt_completions
from metaexamples.training.lifecycle import TrainingRun
from metaexamples.training.loop import Progress
from metaexamples.training.settings import RunSettings

log = get_logger(__name__)  # logs on the main process only


def epoch_batches(n: int, batch_size: int, epochs: int, seed: int) -> list[list[int]]:
    """Example indices per micro-batch: a fresh seeded permutation every epoch.

    >>> epoch_batches(5, 2, 2, seed=0)
    [[2, 4], [3, 0], [1], [4, 1], [2, 0], [3]]
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(epochs):
        order = rng.permutation(n).tolist()
        out += [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return out


def train_prompt_completion(
    model_dir: Path,
    prompts: Sequence[str],
    completions: Sequence[str],
    settings: RunSettings,
    *,
    seed: int,
    out_dir: Path,
    checkpoint_root: Path,
    keep_checkpoints: bool = False,
    names: Sequence[str] | None = None,
    after_step: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune on completions only for `settings.epochs` epochs; write
    ``checkpoints/step-N/`` (every `save_steps`), ``final/``, ``train_metrics.json``,
    ``train_log.csv`` and ``config.json`` under `out_dir`; return the metrics. Resumable
    checkpoints go to ``{checkpoint_root}/{run key}/`` as for grammar runs."""
    s = settings
    run = TrainingRun(model_dir, s, seed)
    tokenizer = run.tokenizer
    examples = encode_prompt_completions(tokenizer, prompts, completions, run.max_length,
                                         names=names)
    if not examples:
        raise ValueError("no prompt/completion examples to train on")
    batches = epoch_batches(len(examples), s.batch_size, s.epochs, seed)
    if len(batches) != s.max_steps:  # the plan counted other examples
        raise ValueError(f"{len(examples)} examples make {len(batches)} steps in {s.epochs} "
                         f"epochs of batches of {s.batch_size}, but the settings were resolved "
                         f"for {s.max_steps} steps")
    steps_per_epoch = len(batches) // s.epochs
    loader = DataLoader(examples, batch_sampler=batches, collate_fn=PadCollate(tokenizer))
    run.prepare(loader, f"{len(examples)} examples x {s.epochs} epochs = {s.max_steps} steps "
                        f"of {s.batch_size}")
    data = hashlib.sha256(json.dumps([list(prompts), list(completions)]).encode()).hexdigest()
    key, resolved = run.key(seed, {"model": path_digest(Path(model_dir)), "examples": data},
                            max_len=run.max_length)
    progress = run.resume(Path(checkpoint_root) / key)
    models = run.checkpoint_dir / "models"  # the evaluated checkpoints
    info = {**model_info(model_dir), "base_model": str(model_dir)}

    def save(p: Progress) -> None:
        if run.is_main:
            save_model_dir(models / f"step-{p.step}", run.unwrapped(), tokenizer,
                           {**info, "train_steps": p.step, "epoch": p.step / steps_per_epoch})
        run.accelerator.wait_for_everyone()

    resumed_from = progress.step
    progress = run.train(progress, save=save, after_step=after_step)

    for row in progress.history:
        row["epoch"] = row["step"] / steps_per_epoch
    out_dir = Path(out_dir)
    saved = checkpoint_steps(models)
    if run.is_main:
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
        for _, path in saved:
            shutil.copytree(path, out_dir / "checkpoints" / path.name)
    own = {"examples": len(examples), "epochs": s.epochs, "steps_per_epoch": steps_per_epoch,
           "checkpoints": [p.name for _, p in saved], "resumed_from_step": resumed_from,
           "run_key": key}
    resolved |= {"run_key": key, "model": str(model_dir)}
    metrics = run.finish(progress, out_dir=out_dir, model_name="final",
                         info={**info, "train_steps": progress.step}, config=resolved,
                         metrics=own)
    if not keep_checkpoints:
        run.remove_checkpoints()
    return metrics
