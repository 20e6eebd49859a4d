"""The prompt/completion entry (Nim runs): `train_prompt_completion`.

Padded prompt/completion batches for `epochs`, loss on completion tokens only, the L2-SP
anchor; a Hugging Face model directory every `save_every_epochs` in
``{out_dir}/checkpoints/step-N/`` plus ``{out_dir}/final/``.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from metaexamples.config import NimTrainingConfig
from metaexamples.models import load_model, load_tokenizer, model_info, save_model_dir
from metaexamples.training.checkpoints import checkpoint_steps
from metaexamples.training.encoding import PadCollate, encode_prompt_completions
from metaexamples.training.loop import (
    LoopSettings,
    Progress,
    make_accelerator,
    prepare_training,
    train_loop,
)
from metaexamples.training.run_files import finish_run, max_positions

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
    cfg: NimTrainingConfig,
    *,
    seed: int,
    out_dir: Path,
    names: Sequence[str] | None = None,
    max_len: int | None = None,
    after_step: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune on completions only; write ``checkpoints/step-N/`` every
    `save_every_epochs`, ``final/``, ``train_metrics.json``, ``train_log.csv`` and
    ``config.json`` under `out_dir`; return the metrics."""
    started = time.perf_counter()
    accelerator, precision = make_accelerator("auto", 1)
    set_seed(seed)
    limit = max_positions(model_dir)
    max_len = max_len or limit or 2048
    if limit is not None and max_len > limit:
        raise ValueError(f"max_len: {max_len} is above the model's maximum ({limit})")
    tokenizer = load_tokenizer(model_dir)
    examples = encode_prompt_completions(tokenizer, prompts, completions, max_len, names=names)
    if not examples:
        raise ValueError("no prompt/completion examples to train on")

    batches = epoch_batches(len(examples), cfg.batch_size, cfg.epochs, seed)
    steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    loop = LoopSettings(
        max_steps=len(batches), learning_rate=cfg.learning_rate,
        warmup_steps=round(cfg.warmup_fraction * len(batches)), min_lr_ratio=0.0,
        log_steps=max(1, min(10, steps_per_epoch)), eval_steps=steps_per_epoch,
        save_steps=steps_per_epoch * cfg.save_every_epochs, l2sp_weight=cfg.l2sp_weight,
        adam_betas=(cfg.adam_beta1, cfg.adam_beta2),
    )
    loader = DataLoader(examples, batch_sampler=batches, collate_fn=PadCollate(tokenizer))
    model = load_model(model_dir)
    log.info("%d examples x %d epochs = %d steps of %d; %d parameters; %s, %s", len(examples),
             cfg.epochs, loop.max_steps, cfg.batch_size,
             sum(p.numel() for p in model.parameters()), accelerator.device, precision)
    model, optimizer, scheduler, loader, anchor = prepare_training(accelerator, model, loader,
                                                                   loop)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    if accelerator.is_main_process and ckpt_dir.exists():
        log.info("removing stale checkpoints in %s", ckpt_dir)
        shutil.rmtree(ckpt_dir)
    info = {**model_info(model_dir), "base_model": str(model_dir)}

    def save(p: Progress) -> None:
        if accelerator.is_main_process:
            net = accelerator.unwrap_model(model, keep_torch_compile=False)
            save_model_dir(ckpt_dir / f"step-{p.step}", net, tokenizer,
                           {**info, "train_steps": p.step, "epoch": p.step / steps_per_epoch})
        accelerator.wait_for_everyone()

    progress = train_loop(accelerator, model, optimizer, scheduler, loader, loop, Progress(),
                          save=save, anchor=anchor, after_step=after_step)

    for row in progress.history:
        row["epoch"] = row["step"] / steps_per_epoch
    own = {"examples": len(examples), "epochs": cfg.epochs, "steps_per_epoch": steps_per_epoch,
           "checkpoints": [p.name for _, p in checkpoint_steps(ckpt_dir)]}
    config = {"nim.training": dataclasses.asdict(cfg), "seed": seed, "max_len": max_len,
              "model": str(model_dir), "precision": precision}
    metrics = finish_run(accelerator, model, tokenizer, progress, precision=precision,
                         started=started, base_model=model_dir, l2sp_weight=cfg.l2sp_weight,
                         out_dir=out_dir, model_name="final",
                         info={**info, "train_steps": progress.step}, config=config,
                         metrics=own)
    accelerator.wait_for_everyone()
    return metrics
