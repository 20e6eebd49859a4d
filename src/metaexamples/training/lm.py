"""The language-model entry (grammar runs): `train_lm`.

A packed token stream from `mixing.build_stream`; loss and perplexity on the grammar's
valid val strings and on held-out canonical documents every `eval_steps`, and the val
excess NLL over every length (`grammar.excess`, written to ``learning_curve.json``); resumable
checkpoints (`checkpoints`) in ``{checkpoint_root}/{run_key}/step-N/``, removed once the
run's outputs are written (`keep_checkpoints` keeps them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate.logging import get_logger
from torch.utils.data import DataLoader

from metaexamples.grammar.excess import CurveStrings
from metaexamples.io import write_json
from metaexamples.models import model_info
from metaexamples.training.checkpoints import path_digest
from metaexamples.training.encoding import encode_documents, eval_batches
from metaexamples.training.lifecycle import TrainingRun, read_texts
from metaexamples.training.loop import Progress, estimate_loss
from metaexamples.training.mixing import Pool, build_stream
from metaexamples.training.settings import RunSettings

log = get_logger(__name__)  # logs on the main process only


def _lm_batch(rows: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    ids = torch.stack(rows)
    return {"input_ids": ids, "labels": ids}


@dataclass(frozen=True)
class LMInputs:
    model_dir: Path
    corpus: Path
    canonical: Path
    canonical_heldout: Path | None = None
    eval_data: Path | None = None
    meta: Path | None = None
    meta_percent: float = 0.0
    manifest: Path | None = None  # with eval_data: the grammar, for the val excess NLL curve
    exact_max_strings: int = 256  # the curve's exact lengths (evaluation.exact_max_strings)

    def files(self) -> dict[str, Path]:
        named = {"model": self.model_dir, "corpus": self.corpus, "canonical": self.canonical,
                 "canonical_heldout": self.canonical_heldout, "eval_data": self.eval_data,
                 "meta": self.meta if self.meta_percent > 0 else None,
                 "manifest": self.manifest}
        return {k: Path(v) for k, v in named.items() if v is not None}


def train_lm(
    inputs: LMInputs,
    settings: RunSettings,
    *,
    seed: int,
    out_dir: Path,
    checkpoint_root: Path,
    keep_checkpoints: bool = False,
    after_step: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Train one grammar run; write ``model/``, ``train_metrics.json``, ``train_log.csv``
    and ``config.json`` under `out_dir`; return the metrics."""
    s = settings
    # Everything that can be wrong with the inputs fails here, before any output exists.
    if not 0.0 <= inputs.meta_percent <= 100.0:
        raise ValueError(f"meta_percent: {inputs.meta_percent} must be between 0 and 100")
    if inputs.meta_percent > 0 and inputs.meta is None:
        raise ValueError(f"meta_percent is {inputs.meta_percent} but no --meta file was given")
    if s.max_seq_length is None:
        raise ValueError("max_seq_length: a packed stream needs a sequence length")
    run = TrainingRun(inputs.model_dir, s, seed)
    corpus = read_texts(inputs.corpus)
    canonical = read_texts(inputs.canonical)
    meta = read_texts(inputs.meta) if inputs.meta is not None and inputs.meta_percent > 0 else None
    val = read_texts(inputs.eval_data, valid_only=True) if inputs.eval_data else []
    heldout = (read_texts(inputs.canonical_heldout)[: s.eval_documents]
               if inputs.canonical_heldout else [])
    curve = (CurveStrings.from_files(inputs.manifest, inputs.eval_data, inputs.exact_max_strings)
             if inputs.manifest is not None and inputs.eval_data is not None else None)
    accelerator = run.accelerator
    digests = {name: path_digest(p) for name, p in inputs.files().items()}
    key, resolved = run.key(seed, digests, meta_percent=inputs.meta_percent,
                            exact_max_strings=inputs.exact_max_strings if curve else None)

    tokenizer = run.tokenizer
    n_sequences = s.max_steps * s.batch_size * s.gradient_accumulation_steps \
        * accelerator.num_processes
    seq_len = s.max_seq_length
    stream = build_stream(
        tokenizer, Pool(canonical, str(inputs.canonical)), Pool(corpus, str(inputs.corpus)),
        Pool(meta, str(inputs.meta)) if meta else None,
        synthetic_mix_ratio=s.synthetic_mix_ratio, meta_percent=inputs.meta_percent,
        n_sequences=n_sequences, seq_len=seq_len, seed=seed,
    )
    eval_sets = {name: eval_batches(encode_documents(tokenizer, texts, seq_len),
                                    tokenizer.pad_token_id)
                 for name, texts in (("val", val), ("canonical", heldout)) if texts}
    loader = DataLoader(stream.tokens, batch_size=s.batch_size, shuffle=False,
                        collate_fn=_lm_batch)
    run.prepare(loader, f"run {key}: {s.max_steps} steps x {n_sequences // s.max_steps} "
                        f"sequences x {seq_len} tokens = {n_sequences * seq_len} tokens")
    progress = run.resume(Path(checkpoint_root) / key)
    resumed_from = progress.step

    def evaluate() -> dict[str, float]:
        net = run.unwrapped()
        out = {}
        for name, batches in eval_sets.items():
            loss = estimate_loss(net, batches, accelerator)
            out |= {f"{name}_loss": loss, f"{name}_ppl": math.exp(min(loss, 50.0))}
        if curve is not None:
            was_training = net.training
            out |= curve.score(net.eval(), tokenizer, batch_size=64)
            net.train(was_training)
        return out

    progress = run.train(progress, evaluate=evaluate, after_step=after_step,
                         tensorboard_dir=Path(out_dir) / "tensorboard")

    final = progress.history[-1]
    own = {
        "achieved_synthetic_share": stream.manifest["achieved_synthetic_share"],
        "stream": stream.manifest,
        "resumed_from_step": resumed_from,
        "run_key": key,
        **{f"final_{k}": final.get(k) for k in ("val_loss", "val_ppl", "canonical_loss",
                                                 "canonical_ppl")},
    }
    resolved |= {"run_key": key, "inputs": {k: str(v) for k, v in inputs.files().items()}}
    info = {**model_info(inputs.model_dir), "base_model": str(inputs.model_dir),
            "run_key": key, "train_steps": progress.step}
    metrics = run.finish(progress, out_dir=Path(out_dir), model_name="model", info=info,
                         config=resolved, metrics=own)
    if run.is_main:
        if curve is not None:
            write_json(Path(out_dir) / "learning_curve.json",
                       curve.record(progress.history, metrics["achieved_synthetic_share"]))
        log.info("wrote %s: %d steps, %d tokens, %.0f tok/s, synthetic share %.4f", out_dir,
                 progress.step, progress.tokens, metrics["tokens_per_s"],
                 metrics["achieved_synthetic_share"])
    if not keep_checkpoints:
        run.remove_checkpoints()
    accelerator.wait_for_everyone()
    return metrics
