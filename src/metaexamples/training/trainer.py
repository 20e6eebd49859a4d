"""One training loop on accelerate, shared by both experiment families.

`train_loop` is the loop, readable top to bottom: forward, backward under
`accelerator.accumulate`, clip, AdamW step, the decoupled L2-SP pull, a pure `lr_at(step)`
schedule (linear warmup, cosine decay), one log line per interval
(``step loss lr ms tok/s``), `estimate_loss` every `eval_steps`, a checkpoint hook every
`save_steps`. Two entries set it up:

- `train_lm` (grammar runs): a packed token stream from `mixing.build_stream`; loss and
  perplexity on the grammar's valid val strings and on held-out canonical documents;
  resumable checkpoints in ``{checkpoint_root}/{run_key}/step-N/``.
- `train_prompt_completion` (Nim runs): padded prompt/completion batches for `epochs`,
  loss on completion tokens only, the L2-SP anchor; a Hugging Face model directory every
  `save_every_epochs` in ``{out_dir}/checkpoints/step-N/`` plus ``{out_dir}/final/``.

Resume (`train_lm`). ``run_key`` hashes the resolved settings and the contents of every
input (model directory and data files), so a changed config or input never resumes stale
state. A checkpoint is `accelerator.save_state` (model, optimizer, LR scheduler, python /
numpy / torch RNG states) plus ``trainer_state.json`` (step, tokens seen, the eval history;
the stream position is ``step * gradient_accumulation_steps`` micro-batches, skipped with
`accelerator.skip_first_batches` on resume, because the stream is a pure function of the
seed) plus ``checksums.json`` (sha256 of every file). It is written to a temporary
directory and renamed into place, so a hard kill leaves either a complete checkpoint or
none. A checkpoint that fails verification on load is an error naming the file (not a
silent fall-back to an older one): the atomic write means it was damaged after the fact,
and the message says to delete it to resume from the previous checkpoint. The run's
checkpoints are removed once its outputs are written (`keep_checkpoints` keeps them).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm
from transformers import AutoConfig, PreTrainedTokenizerBase

from metaexamples.config import NimTrainingConfig, TrainingConfig
from metaexamples.io import (
    DataFileError,
    dumps_json,
    read_json,
    read_jsonl,
    sha256_file,
    write_json,
    write_text,
)
from metaexamples.models import load_model, load_tokenizer, model_info, save_model_dir
from metaexamples.training.mixing import Pool, build_stream
from metaexamples.training.objectives import (
    IGNORE_INDEX,
    Encoded,
    L2SPAnchor,
    encode_documents,
    encode_prompt_completions,
    pad_batch,
)

log = get_logger(__name__)  # logs on the main process only

CHECKSUMS = "checksums.json"
TRAINER_STATE = "trainer_state.json"
EVAL_MAX_TOKENS = 2048  # padded tokens per evaluation batch (bounds the logits' memory)


class CheckpointError(RuntimeError):
    """A checkpoint is incomplete, truncated or corrupt."""


# -- settings and the pure schedule --------------------------------------------------------


@dataclass(frozen=True)
class LoopSettings:
    """What `train_loop` needs, whichever family set it up."""

    max_steps: int
    learning_rate: float
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # cosine decays to learning_rate * min_lr_ratio
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    log_steps: int = 10
    eval_steps: int = 0  # 0: evaluate only at the end
    save_steps: int = 0  # 0: never call the save hook
    l2sp_weight: float = 0.0
    gradient_checkpointing: bool = False
    compile: bool = False

    @classmethod
    def from_training(cls, cfg: TrainingConfig) -> LoopSettings:
        return cls(
            max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
            warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay,
            max_grad_norm=cfg.max_grad_norm,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            log_steps=min(10, cfg.eval_steps), eval_steps=cfg.eval_steps,
            save_steps=cfg.save_steps, l2sp_weight=cfg.l2sp_weight,
            gradient_checkpointing=cfg.gradient_checkpointing, compile=cfg.compile,
        )


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
    return accelerator, resolved


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; weight decay only on matrices (not on norms, biases or other vectors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, fused=torch.cuda.is_available())


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
        input_ids = batch["input_ids"].to(accelerator.device)
        with accelerator.autocast():
            logits = model(input_ids=input_ids,
                           attention_mask=batch["attention_mask"].to(accelerator.device)).logits
        labels = batch["labels"][:, 1:].to(accelerator.device)
        nll += F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels.flatten(),
                               ignore_index=IGNORE_INDEX, reduction="sum")
        count += int((labels != IGNORE_INDEX).sum())
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
    settings: LoopSettings,
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
                if v is not None and k != "step":
                    writer.add_scalar(k, v, progress.step)

    if progress.step == 0:
        record(None)

    model.train()
    window = _Window()
    bar = tqdm(total=s.max_steps, initial=progress.step, unit="step", disable=not main)
    with logging_redirect_tqdm():
        for batch in batches:
            with accelerator.accumulate(model):
                loss = model(**batch).loss
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


def prepare_training(
    accelerator: Accelerator, model: nn.Module, loader: DataLoader, settings: LoopSettings
) -> tuple[nn.Module, torch.optim.Optimizer, LambdaLR, DataLoader, L2SPAnchor | None]:
    """Optimizer, schedule, `accelerator.prepare`, and the anchor (after the model is placed)."""
    s = settings
    if s.gradient_checkpointing:  # renamed activation checkpointing in transformers 5
        enable = getattr(model, "activation_checkpointing_enable", None)
        (enable or model.gradient_checkpointing_enable)()
        model.config.use_cache = False
    optimizer = make_optimizer(model, s.learning_rate, s.weight_decay)
    scheduler = LambdaLR(optimizer, lambda step: lr_at(
        step, max_lr=s.learning_rate, warmup_steps=s.warmup_steps, max_steps=s.max_steps,
        min_lr_ratio=s.min_lr_ratio) / s.learning_rate)
    if s.compile:
        model = torch.compile(model)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    accelerator.register_for_checkpointing(scheduler)
    anchor = None
    if s.l2sp_weight > 0:
        anchor = L2SPAnchor(accelerator.unwrap_model(model), s.l2sp_weight)
        log.info("L2-SP anchor: weight %g on %d tensors, %d excluded (norms, biases)",
                 s.l2sp_weight, len(anchor.params), len(anchor.excluded))
    return model, optimizer, scheduler, loader, anchor


# -- checkpoints ---------------------------------------------------------------------------


def path_digest(path: Path) -> str:
    """sha256 of a file, or of a directory's files (names and contents)."""
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        raise DataFileError(f"{path}: not found")
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def run_key(settings: Mapping[str, Any], digests: Mapping[str, str]) -> str:
    """Key of a run's checkpoints: its resolved settings and the contents of its inputs."""
    blob = dumps_json({"settings": settings, "inputs": dict(digests)})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_steps(root: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in root.glob("step-*")
             if p.is_dir() and (m := re.fullmatch(r"step-(\d+)", p.name))]
    return sorted(found)


def save_checkpoint(
    accelerator: Accelerator, root: Path, progress: Progress, keep: int = 2
) -> Path:
    """`save_state` + progress + checksums into a temporary dir, renamed to ``step-N``."""
    final = root / f"step-{progress.step}"
    tmp = root / f".step-{progress.step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / TRAINER_STATE).write_text(dumps_json(progress.to_dict()), encoding="utf-8")
        sums = {str(f.relative_to(tmp)): sha256_file(f)
                for f in sorted(tmp.rglob("*")) if f.is_file()}
        (tmp / CHECKSUMS).write_text(dumps_json(sums), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in checkpoint_steps(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        log.info("checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def verify_checkpoint(path: Path) -> Progress:
    """Check every file against ``checksums.json``; return the saved progress.

    Raises CheckpointError naming the damaged file.
    """
    advice = f"delete {path} to resume from the previous checkpoint (or from the start)"
    sums_file = path / CHECKSUMS
    if not sums_file.is_file():
        raise CheckpointError(f"{path}: incomplete checkpoint (no {CHECKSUMS}); {advice}")
    try:
        sums = json.loads(sums_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{sums_file}: unreadable ({err}); {advice}") from err
    if TRAINER_STATE not in sums:
        raise CheckpointError(f"{path}: checkpoint lists no {TRAINER_STATE}; {advice}")
    for name, digest in sums.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing from the checkpoint; {advice}")
        if sha256_file(f) != digest:
            raise CheckpointError(f"{f}: corrupt or truncated (sha256 mismatch); {advice}")
    return Progress.from_dict(read_json(path / TRAINER_STATE))


def latest_checkpoint(root: Path) -> tuple[Path, Progress] | None:
    """The newest ``step-N`` under `root`, verified; None when there is none."""
    steps = checkpoint_steps(root) if root.is_dir() else []
    if not steps:
        return None
    path = steps[-1][1]
    return path, verify_checkpoint(path)


def history_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The eval history as CSV: step, tokens, lr, train columns first, then the rest sorted."""
    first = ["step", "epoch", "tokens", "lr", "train_loss", "train_seconds"]
    keys = {k for row in rows for k in row}
    columns = [k for k in first if k in keys] + sorted(keys - set(first))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    return buf.getvalue()


# -- shared setup helpers ------------------------------------------------------------------


def max_positions(model_dir: Path) -> int | None:
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError) as err:
        raise DataFileError(f"{model_dir}: not a model directory ({err})") from err
    return getattr(config, "max_position_embeddings", None)


def check_seq_len(model_dir: Path, seq_len: int, key: str) -> None:
    limit = max_positions(model_dir)
    if limit is not None and seq_len > limit:
        raise ValueError(f"{key}: {seq_len} is above the model's maximum "
                         f"({model_dir}/config.json max_position_embeddings = {limit})")


def read_texts(path: Path, valid_only: bool = False) -> list[str]:
    """The `text` field of a JSONL file (or the lines of a .txt file, as the seed's eval files).

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


def eval_batches(
    examples: Sequence[Encoded], pad_token_id: int | None, max_tokens: int = EVAL_MAX_TOKENS
) -> list[dict[str, torch.Tensor]]:
    """Padded batches of at most `max_tokens` positions, longest examples first."""
    ordered = sorted(examples, key=lambda e: len(e.input_ids), reverse=True)
    batches, group = [], []
    for e in ordered:
        if group and (len(group) + 1) * len(group[0].input_ids) > max_tokens:
            batches.append(pad_batch(group, pad_token_id))
            group = []
        group.append(e)
    if group:
        batches.append(pad_batch(group, pad_token_id))
    return batches


def _lm_batch(rows: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    ids = torch.stack(rows)
    return {"input_ids": ids, "labels": ids}


def _metrics_common(accelerator: Accelerator, precision: str, progress: Progress,
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


# -- entry 1: grammar runs (packed stream) -------------------------------------------------


@dataclass(frozen=True)
class LMInputs:
    model_dir: Path
    corpus: Path
    canonical: Path
    canonical_heldout: Path | None = None
    eval_data: Path | None = None
    meta: Path | None = None
    meta_percent: float = 0.0

    def files(self) -> dict[str, Path]:
        named = {"model": self.model_dir, "corpus": self.corpus, "canonical": self.canonical,
                 "canonical_heldout": self.canonical_heldout, "eval_data": self.eval_data,
                 "meta": self.meta if self.meta_percent > 0 else None}
        return {k: Path(v) for k, v in named.items() if v is not None}


def train_lm(
    inputs: LMInputs,
    cfg: TrainingConfig,
    *,
    seed: int,
    out_dir: Path,
    checkpoint_root: Path,
    keep_checkpoints: bool = False,
    after_step: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Train one grammar run; write ``model/``, ``train_metrics.json``, ``train_log.csv``
    and ``config.json`` under `out_dir`; return the metrics."""
    started = time.perf_counter()
    accelerator, precision = make_accelerator(cfg.precision, cfg.gradient_accumulation_steps)
    set_seed(seed)

    # Everything that can be wrong with the inputs fails here, before any output exists.
    if not 0.0 <= inputs.meta_percent <= 100.0:
        raise ValueError(f"meta_percent: {inputs.meta_percent} must be between 0 and 100")
    if inputs.meta_percent > 0 and inputs.meta is None:
        raise ValueError(f"meta_percent is {inputs.meta_percent} but no --meta file was given")
    check_seq_len(inputs.model_dir, cfg.max_seq_length, "training.max_seq_length")
    corpus = read_texts(inputs.corpus)
    canonical = read_texts(inputs.canonical)
    meta = read_texts(inputs.meta) if inputs.meta is not None and inputs.meta_percent > 0 else None
    val = read_texts(inputs.eval_data, valid_only=True) if inputs.eval_data else []
    heldout = (read_texts(inputs.canonical_heldout)[: cfg.eval_documents]
               if inputs.canonical_heldout else [])
    digests = {name: path_digest(p) for name, p in inputs.files().items()}
    settings = {"training": dataclasses.asdict(cfg), "seed": seed,
                "meta_percent": inputs.meta_percent, "precision": precision,
                "num_processes": accelerator.num_processes}
    key = run_key(settings, digests)
    ckpt_dir = Path(checkpoint_root) / key
    resume = latest_checkpoint(ckpt_dir)

    tokenizer = load_tokenizer(inputs.model_dir)
    n_sequences = (cfg.max_steps * cfg.batch_size * cfg.gradient_accumulation_steps
                   * accelerator.num_processes)
    stream = build_stream(
        tokenizer, Pool(canonical, str(inputs.canonical)), Pool(corpus, str(inputs.corpus)),
        Pool(meta, str(inputs.meta)) if meta else None,
        synthetic_mix_ratio=cfg.synthetic_mix_ratio, meta_percent=inputs.meta_percent,
        n_sequences=n_sequences, seq_len=cfg.max_seq_length, seed=seed,
    )
    seq_len = cfg.max_seq_length
    eval_sets = {name: eval_batches(encode_documents(tokenizer, texts, seq_len),
                                    tokenizer.pad_token_id)
                 for name, texts in (("val", val), ("canonical", heldout)) if texts}

    model = load_model(inputs.model_dir)
    log.info("run %s: %d steps x %d sequences x %d tokens = %d tokens; %d parameters; %s, %s",
             key, cfg.max_steps, n_sequences // cfg.max_steps, seq_len, n_sequences * seq_len,
             sum(p.numel() for p in model.parameters()), accelerator.device, precision)
    loader = DataLoader(stream.tokens, batch_size=cfg.batch_size, shuffle=False,
                        collate_fn=_lm_batch)
    loop = LoopSettings.from_training(cfg)
    model, optimizer, scheduler, loader, anchor = prepare_training(accelerator, model, loader,
                                                                   loop)
    progress = Progress()
    if resume is not None:
        accelerator.load_state(str(resume[0]))
        progress = resume[1]
        log.info("resuming from %s (step %d of %d)", resume[0], progress.step, cfg.max_steps)
    resumed_from = progress.step
    if accelerator.is_main_process and ckpt_dir.is_dir():
        for stale in ckpt_dir.glob(".step-*.tmp"):  # left by a kill during a save
            shutil.rmtree(stale, ignore_errors=True)

    def evaluate() -> dict[str, float]:
        net = accelerator.unwrap_model(model, keep_torch_compile=False)
        out = {}
        for name, batches in eval_sets.items():
            loss = estimate_loss(net, batches, accelerator)
            out |= {f"{name}_loss": loss, f"{name}_ppl": math.exp(min(loss, 50.0))}
        return out

    def save(p: Progress) -> None:
        if p.step < cfg.max_steps:  # the outputs written next make a final one redundant
            save_checkpoint(accelerator, ckpt_dir, p)

    progress = train_loop(
        accelerator, model, optimizer, scheduler, loader, loop, progress,
        evaluate=evaluate, save=save, anchor=anchor, after_step=after_step,
        tensorboard_dir=Path(out_dir) / "tensorboard",
    )

    final = progress.history[-1]
    metrics = _metrics_common(accelerator, precision, progress, time.perf_counter() - started)
    metrics |= {
        "achieved_synthetic_share": stream.manifest["achieved_synthetic_share"],
        "stream": stream.manifest,
        "resumed_from_step": resumed_from,
        "run_key": key,
        **{f"final_{k}": final.get(k) for k in ("val_loss", "val_ppl", "canonical_loss",
                                                 "canonical_ppl")},
    }
    resolved = {**settings, "run_key": key, "input_sha256": digests,
                "inputs": {k: str(v) for k, v in inputs.files().items()}}
    if accelerator.is_main_process:
        out_dir = Path(out_dir)
        info = {**model_info(inputs.model_dir), "base_model": str(inputs.model_dir),
                "run_key": key, "train_steps": progress.step}
        save_model_dir(out_dir / "model", accelerator.unwrap_model(model, keep_torch_compile=False),
                       tokenizer, info)
        write_text(out_dir / "train_log.csv", history_csv(progress.history))
        write_json(out_dir / "config.json", resolved)
        write_json(out_dir / "train_metrics.json", metrics)
        if not keep_checkpoints:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
        log.info("wrote %s: %d steps, %d tokens, %.0f tok/s, synthetic share %.4f", out_dir,
                 progress.step, progress.tokens, metrics["tokens_per_s"],
                 metrics["achieved_synthetic_share"])
    accelerator.wait_for_everyone()
    return metrics


# -- entry 2: prompt/completion runs (Nim) -------------------------------------------------


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
    )
    loader = DataLoader(examples, batch_sampler=batches, collate_fn=_Collate(tokenizer))
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
    metrics = _metrics_common(accelerator, precision, progress, time.perf_counter() - started)
    metrics |= {
        "examples": len(examples),
        "epochs": cfg.epochs,
        "steps_per_epoch": steps_per_epoch,
        "checkpoints": [p.name for _, p in checkpoint_steps(ckpt_dir)],
        "anchor_distance": anchor.distance() if anchor is not None else None,
        "anchor_excluded": sorted(anchor.excluded) if anchor is not None else [],
    }
    if accelerator.is_main_process:
        net = accelerator.unwrap_model(model, keep_torch_compile=False)
        save_model_dir(out_dir / "final", net, tokenizer, {**info, "train_steps": progress.step})
        write_text(out_dir / "train_log.csv", history_csv(progress.history))
        write_json(out_dir / "config.json", {"nim.training": dataclasses.asdict(cfg),
                                             "seed": seed, "max_len": max_len,
                                             "model": str(model_dir), "precision": precision})
        write_json(out_dir / "train_metrics.json", metrics)
    accelerator.wait_for_everyone()
    return metrics


class _Collate:
    """Pads prompt/completion examples with the tokenizer's pad id (picklable for workers)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.pad_token_id = tokenizer.pad_token_id

    def __call__(self, examples: list[Encoded]) -> dict[str, torch.Tensor]:
        return pad_batch(examples, self.pad_token_id)
