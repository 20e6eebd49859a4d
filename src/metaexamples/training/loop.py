"""The training loop on accelerate, shared by both experiment families; reads top to bottom.

`train_loop`: forward, backward under `accelerator.accumulate`, clip, AdamW step, the
decoupled L2-SP pull (`anchor.L2SPAnchor`), a pure `lr_at(step)` schedule (linear warmup,
cosine decay), one log line per interval (``step loss lr ms tok/s``), `estimate_loss` every
`eval_steps`, a save hook every `save_steps`. `prepare_training` builds the optimizer,
schedule and anchor. `lifecycle.TrainingRun` calls them for both families.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from metaexamples.scale.launch import check_process_group
from metaexamples.training.anchor import L2SPAnchor
from metaexamples.training.loss import causal_lm_loss, summed_nll, supports_chunked_loss
from metaexamples.training.settings import RunSettings

log = get_logger(__name__)  # logs on the main process only


# -- the pure schedule ---------------------------------------------------------------------


def lr_at(
    step: int, *, max_lr: float, warmup_steps: int, max_steps: int, min_lr_ratio: float = 0.1
) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warmup, then cosine decay.

    >>> [round(lr_at(s, max_lr=1.0, warmup_steps=2, max_steps=6, min_lr_ratio=0.0), 3)
    ...  for s in range(6)]
    [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    min_lr = max_lr * min_lr_ratio
    return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def resolve_precision(precision: str, cuda: bool) -> str:
    """`auto` is bf16 on a GPU that supports it and fp32 otherwise."""
    if precision == "auto":
        return "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def make_accelerator(precision: str, gradient_accumulation_steps: int) -> tuple[Accelerator, str]:
    resolved = resolve_precision(precision, torch.cuda.is_available())
    accelerator = Accelerator(
        mixed_precision="bf16" if resolved == "bf16" else "no",
        gradient_accumulation_steps=gradient_accumulation_steps,
    )
    check_process_group(accelerator.num_processes, str(accelerator.distributed_type), os.environ)
    return accelerator, resolved


def make_optimizer(model: nn.Module, lr: float, weight_decay: float,
                   betas: tuple[float, float], fused: bool = True) -> torch.optim.AdamW:
    """AdamW; weight decay only on matrices (not on norms, biases or other vectors).

    Fused on CPU too: torch's default there is a per-tensor loop of eight elementwise ops,
    each a pass over all parameters (SmolLM2-135M, 2 cores: 7.2 s per step, fused 1.3 s).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)


# -- the loop ------------------------------------------------------------------------------


@dataclass
class Progress:
    """Where a run is: saved in every checkpoint and restored on resume."""

    step: int = 0
    tokens: int = 0  # useful (non-padding) tokens trained on, all processes
    train_seconds: float = 0.0  # time in training steps (evaluation and saving excluded)
    history: list[dict[str, Any]] = field(default_factory=list)
    loss_sum: float = 0.0  # train loss summed over micro-batches since the last evaluation
    loss_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Progress:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


@torch.no_grad()
def estimate_loss(model: nn.Module, batches: Sequence[dict[str, torch.Tensor]],
                  accelerator: Accelerator) -> float:
    """Token-weighted mean next-token NLL (nats) over padded `batches`."""
    was_training = model.training
    model.eval()
    nll = torch.zeros((), device=accelerator.device)
    count = 0
    for batch in batches:
        on_device = {k: v.to(accelerator.device) for k, v in batch.items()}
        with accelerator.autocast():
            batch_nll, batch_count = summed_nll(model, on_device)
        nll += batch_nll
        count += batch_count
    model.train(was_training)
    return float(nll) / max(count, 1)


def _useful_tokens(batch: Mapping[str, torch.Tensor]) -> torch.Tensor | int:
    mask = batch.get("attention_mask")
    return mask.sum() if mask is not None else batch["input_ids"].numel()


@dataclass
class _Window:
    """Loss, micro-batches, useful tokens and optimizer steps since the last log line."""

    loss: torch.Tensor | float = 0.0
    micro: int = 0
    tokens: torch.Tensor | int = 0
    steps: int = 0
    start: float = field(default_factory=time.perf_counter)

    def add(self, loss: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> None:
        self.loss = self.loss + loss.detach()  # stays on the device: no sync per step
        self.micro += 1
        self.tokens = self.tokens + _useful_tokens(batch)

    def close(self, accelerator: Accelerator) -> tuple[float, int, float]:
        """(mean loss, tokens on all processes, seconds): syncs with the device once."""
        device = accelerator.device
        loss = accelerator.reduce(torch.as_tensor(self.loss, device=device), "mean").item()
        tokens = int(accelerator.reduce(torch.as_tensor(self.tokens, device=device), "sum"))
        return loss / self.micro, tokens, time.perf_counter() - self.start


def _tensorboard(log_dir: Path | None) -> Any:
    if log_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(log_dir))


def train_loop(
    accelerator: Accelerator,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    loader: DataLoader,
    settings: RunSettings,
    progress: Progress,
    *,
    evaluate: Callable[[], dict[str, float]] | None = None,
    save: Callable[[Progress], None] | None = None,
    anchor: L2SPAnchor | None = None,
    after_step: Callable[[Progress], None] | None = None,
    tensorboard_dir: Path | None = None,
) -> Progress:
    """Train from `progress.step` to `settings.max_steps`; return the updated progress.

    `loader` yields micro-batches in training order; on resume the first
    ``progress.step * gradient_accumulation_steps`` are skipped. `evaluate` runs at step 0,
    every `eval_steps` and at the end (its metrics, with the mean train loss since the
    previous evaluation, become one `progress.history` row); `save` every `save_steps`.
    """
    s = settings
    main = accelerator.is_main_process
    writer = _tensorboard(tensorboard_dir) if main else None
    skip = progress.step * s.gradient_accumulation_steps
    batches = accelerator.skip_first_batches(loader, skip) if skip else loader

    lr = scheduler.get_last_lr()[0]  # of the step about to run, then of the last step run

    def record(train_loss: float | None) -> None:
        row: dict[str, Any] = {"step": progress.step, "tokens": progress.tokens,
                               "lr": lr, "train_loss": train_loss,
                               "train_seconds": round(progress.train_seconds, 3)}
        if evaluate is not None:
            row |= evaluate()
        progress.history.append(row)
        log.info("eval step %d | %s", progress.step, " | ".join(
            f"{k} {v:.4f}" for k, v in row.items() if k.endswith(("loss", "ppl")) and v is not None
        ))
        if writer is not None:
            for k, v in row.items():
                if isinstance(v, int | float) and k != "step":
                    writer.add_scalar(k, v, progress.step)

    if progress.step == 0:
        record(None)

    chunked = use_chunked_loss(accelerator, model, s)
    log.info("loss: %s", "chunked output projection + cross-entropy" if chunked
             else "the model's own (full logits)")
    model.train()
    window = _Window()
    bar = tqdm(total=s.max_steps, initial=progress.step, unit="step", disable=not main)
    with logging_redirect_tqdm():
        for batch in batches:
            with accelerator.accumulate(model):
                loss = causal_lm_loss(model, batch, chunked)
                accelerator.backward(loss)
                if accelerator.sync_gradients and s.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), s.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            window.add(loss, batch)
            if not accelerator.sync_gradients:
                continue

            lr = scheduler.get_last_lr()[0]
            if anchor is not None:
                anchor.apply(lr)
            scheduler.step()
            progress.step += 1
            window.steps += 1
            bar.update(1)

            step, last = progress.step, progress.step == s.max_steps
            eval_due = last or (s.eval_steps > 0 and step % s.eval_steps == 0)
            save_due = save is not None and s.save_steps > 0 and step % s.save_steps == 0
            if last or eval_due or save_due or step % s.log_steps == 0:
                mean_loss, tokens, elapsed = window.close(accelerator)
                progress.tokens += tokens
                progress.train_seconds += elapsed
                progress.loss_sum += mean_loss * window.micro
                progress.loss_count += window.micro
                log.info("step %d/%d | loss %.4f | lr %.2e | %.1f ms | %.0f tok/s", step,
                         s.max_steps, mean_loss, lr, 1000 * elapsed / window.steps,
                         tokens / elapsed)
                bar.set_postfix(loss=f"{mean_loss:.3f}", tok_s=f"{tokens / elapsed:.0f}")
                if eval_due:
                    record(progress.loss_sum / progress.loss_count)
                    progress.loss_sum, progress.loss_count = 0.0, 0
                if save_due:
                    save(progress)
                window = _Window()  # evaluation and saving are not training time
            if after_step is not None:
                after_step(progress)
    bar.close()
    if writer is not None:
        writer.close()
    if progress.step != s.max_steps:
        raise RuntimeError(f"the data ran out at step {progress.step} of {s.max_steps}")
    return progress


def use_chunked_loss(accelerator: Accelerator, model: nn.Module, settings: RunSettings) -> bool:
    """The chunked loss calls the decoder and head directly, so only on a bare model: one
    process (a DDP wrapper's forward must run for its gradient sync) and no torch.compile."""
    return (settings.chunked_loss and not settings.compile and accelerator.num_processes == 1
            and supports_chunked_loss(model))


def prepare_training(
    accelerator: Accelerator, model: nn.Module, loader: DataLoader, settings: RunSettings
) -> tuple[nn.Module, torch.optim.Optimizer, LambdaLR, DataLoader, L2SPAnchor | None]:
    """Optimizer, schedule, `accelerator.prepare`, and the anchor (after the model is placed)."""
    s = settings
    if s.gradient_checkpointing:  # renamed activation checkpointing in transformers 5
        enable = getattr(model, "activation_checkpointing_enable", None)
        (enable or model.gradient_checkpointing_enable)()
        model.config.use_cache = False
    optimizer = make_optimizer(model, s.learning_rate, s.weight_decay, s.adam_betas,
                               s.fused_optimizer)
    scheduler = LambdaLR(optimizer, lambda step: lr_at(
        step, max_lr=s.learning_rate, warmup_steps=s.warmup_steps, max_steps=s.max_steps,
        min_lr_ratio=s.min_lr_ratio) / s.learning_rate)
    if s.compile:
        model = torch.compile(model)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    accelerator.register_for_checkpointing(scheduler)
    anchor = None
    if s.l2sp_weight > 0:  # no copy of θ₀ in memory when there is no pull
        anchor = L2SPAnchor(accelerator.unwrap_model(model), s.l2sp_weight)
        log.info("L2-SP anchor: weight %g on %d tensors, %d excluded (norms, biases)",
                 s.l2sp_weight, len(anchor.params), len(anchor.excluded))
    return model, optimizer, scheduler, loader, anchor
