"""What both entries read and write around the loop: the model's length limit, text
inputs, and the end of every run (`finish_run`: the trained model, ``train_log.csv``,
``config.json`` and ``train_metrics.json`` with the metrics every run has)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from transformers import AutoConfig

from metaexamples.io import DataFileError, read_jsonl, write_json, write_text
from metaexamples.models import save_model_dir
from metaexamples.training.anchor import drift_metrics
from metaexamples.training.loop import Progress


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


def finish_run(accelerator: Accelerator, model: torch.nn.Module, tokenizer: Any,
               progress: Progress, *, precision: str, started: float, base_model: Path,
               l2sp_weight: float, out_dir: Path, model_name: str, info: Mapping[str, Any],
               config: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    """End a run as both families do: its metrics (`common_metrics`, the drift from the
    base model, then the entry's own `metrics`), and on the main process the trained
    model in ``out_dir/model_name``, ``train_log.csv``, ``config.json`` and
    ``train_metrics.json``; every process returns the metrics."""
    net = accelerator.unwrap_model(model, keep_torch_compile=False)
    out = common_metrics(accelerator, precision, progress, time.perf_counter() - started)
    out |= {**metrics, **drift_metrics(net, base_model, l2sp_weight)}
    if accelerator.is_main_process:
        out_dir = Path(out_dir)
        save_model_dir(out_dir / model_name, net, tokenizer, dict(info))
        write_text(out_dir / "train_log.csv", history_csv(progress.history))
        write_json(out_dir / "config.json", dict(config))
        write_json(out_dir / "train_metrics.json", out)
    return out
