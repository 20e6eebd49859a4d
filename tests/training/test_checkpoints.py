"""Checkpoints of grammar runs: run keys, kill-and-resume, stale and corrupt state."""

from __future__ import annotations

import csv
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from metaexamples import cli
from metaexamples.training.checkpoints import (
    CheckpointError,
    checkpoint_steps,
    latest_checkpoint,
    run_key,
    save_checkpoint,
    verify_checkpoint,
)
from metaexamples.training.loop import Progress


def test_run_key_changes_with_settings_and_input_content():
    base = run_key({"lr": 1e-3}, {"corpus": "aa"})
    assert base == run_key({"lr": 1e-3}, {"corpus": "aa"})
    assert base != run_key({"lr": 2e-3}, {"corpus": "aa"})
    assert base != run_key({"lr": 1e-3}, {"corpus": "ab"})



def test_only_the_newest_checkpoints_are_kept(tmp_path):
    """A 1B run saves every 250 steps, optimizer state included: ~12 GB a checkpoint."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(3, 2)
    model, optimizer = accelerator.prepare(model, torch.optim.AdamW(model.parameters()))
    for step in (2, 4, 6):
        save_checkpoint(accelerator, tmp_path, Progress(step=step), keep=2)
    assert [s for s, _ in checkpoint_steps(tmp_path)] == [4, 6]
    assert latest_checkpoint(tmp_path)[1].step == 6
    assert not list(tmp_path.glob(".step-*"))


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model" / "model.safetensors")


def _log_without_timing(run: Path) -> list[dict[str, str]]:
    with (run / "train_log.csv").open() as fh:
        return [{k: v for k, v in row.items() if k != "train_seconds"}
                for row in csv.DictReader(fh)]


def test_kill_and_resume_reaches_the_same_weights(train_args, tmp_path,
                                                  restore_threads):
    killed_out, ckpt = tmp_path / "killed", tmp_path / "ckpt"
    args = train_args(killed_out, ckpt)
    proc = subprocess.run([sys.executable, "-m", "metaexamples.cli", *args,
                           "--debug-kill-after-step", "5"], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not killed_out.exists()  # a hard kill leaves no output behind
    (run_dir,) = ckpt.iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == ["step-2", "step-4"]

    assert cli.main(args) == 0  # the rerun resumes from step 4
    resumed = json.loads((killed_out / "train_metrics.json").read_text())
    assert resumed["resumed_from_step"] == 4 and resumed["steps"] == 6
    assert not run_dir.exists()  # checkpoints are removed once the outputs are written

    straight_out = tmp_path / "straight"
    assert cli.main(train_args(straight_out, tmp_path / "c2")) == 0
    a, b = _weights(killed_out), _weights(straight_out)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _log_without_timing(killed_out) == _log_without_timing(straight_out)
    assert resumed["tokens_seen"] == json.loads(
        (straight_out / "train_metrics.json").read_text())["tokens_seen"] == 6 * 2 * 32



def test_a_changed_config_never_resumes_stale_state(train_args, tmp_path,
                                                    restore_threads):
    ckpt = tmp_path / "ckpt"
    first = train_args(tmp_path / "a", ckpt, "--keep-checkpoints")
    assert cli.main(first) == 0
    changed = train_args(tmp_path / "b", ckpt, "--keep-checkpoints",
                          "--learning-rate", "0.001")
    assert cli.main(changed) == 0
    a = json.loads((tmp_path / "a" / "train_metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "train_metrics.json").read_text())
    assert a["run_key"] != b["run_key"] and b["resumed_from_step"] == 0
    assert len(list(ckpt.iterdir())) == 2


def test_a_corrupt_checkpoint_is_an_error_naming_the_file(train_args, tmp_path,
                                                         restore_threads, caplog):
    ckpt = tmp_path / "ckpt"
    assert cli.main(train_args(tmp_path / "a", ckpt,
                                "--keep-checkpoints")) == 0
    (run_dir,) = ckpt.iterdir()
    optimizer = run_dir / "step-4" / "optimizer.bin"
    optimizer.write_bytes(optimizer.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError, match=r"optimizer.bin: corrupt or truncated"):
        verify_checkpoint(run_dir / "step-4")
    out = tmp_path / "b"
    with caplog.at_level(logging.ERROR):
        assert cli.main(train_args(out, ckpt)) == 1
    assert "step-4/optimizer.bin: corrupt or truncated" in caplog.text
    assert not out.exists()
    (run_dir / "step-4" / "checksums.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete checkpoint"):
        verify_checkpoint(run_dir / "step-4")


