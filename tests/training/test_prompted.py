"""The prompt/completion entry: epochs of batches, checkpoints per epoch, seams."""

from __future__ import annotations

import csv
import json
import logging
import signal
import subprocess
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from metaexamples import cli
from metaexamples.config import NimTrainingConfig
from metaexamples.io import write_jsonl
from metaexamples.training.prompted import epoch_batches

from ..conftest import REPO


def test_epoch_batches_cover_every_example_once_per_epoch():
    batches = epoch_batches(10, 4, 3, seed=1)
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    for epoch in range(3):
        assert sorted(i for b in batches[3 * epoch : 3 * epoch + 3] for i in b) == list(range(10))
    assert batches[:3] != batches[3:6]
    assert batches == epoch_batches(10, 4, 3, seed=1)



def test_nim_train_writes_checkpoints_per_epoch_and_final(tiny_neox_dir, tmp_path,
                                                          restore_threads):
    rows = [{"id": i, "prompt": f"Nim with {n} coins, take 1 to 3. Your move:",
             "answer": f" take {n % 4 or 1} coins"} for i, n in enumerate(range(5, 25))]
    train = tmp_path / "train.jsonl"
    write_jsonl(train, rows)
    config = tmp_path / "config.yaml"
    config.write_text("nim: {training: {epochs: 2, batch_size: 8, learning_rate: 0.002, "
                      "l2sp_weight: 0.01, save_every_epochs: 1}}\n")
    out = tmp_path / "nim"
    assert cli.main(["nim", "train", "--model-id", str(tiny_neox_dir), "--train", str(train),
                     "--config", str(config), "--seed", "0", "--out-dir", str(out),
                     "--checkpoint-root", str(tmp_path / "ckpt"), "--threads", "1"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-3", "step-6"]
    assert not list((tmp_path / "ckpt").iterdir())  # served, removed
    for model_dir in (out / "checkpoints" / "step-3", out / "final"):
        AutoModelForCausalLM.from_pretrained(model_dir)
    m = json.loads((out / "train_metrics.json").read_text())
    assert m["steps"] == 6 and m["steps_per_epoch"] == 3 and m["examples"] == 20
    assert "gpt_neox.final_layer_norm.weight" in m["anchor_excluded"]
    assert m["anchor_distance"] > 0
    log_rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [float(r["epoch"]) for r in log_rows] == [0.0, 1.0, 2.0]


def test_nim_train_rejects_a_merging_seam(tiny_neox_dir, tmp_path, caplog):
    train = tmp_path / "train.jsonl"
    write_jsonl(train, [{"id": "a7", "prompt": "Your move: ", "answer": "take 1 coin"}])
    with caplog.at_level(logging.ERROR):
        assert cli.main(["nim", "train", "--model-id", str(tiny_neox_dir), "--train",
                         str(train), "--config", str(REPO / "config.yaml"),
                         "--out-dir", str(tmp_path / "o")]) == 1
    assert f"{train}:1 (id a7): the prompt's tokens are not a prefix" in caplog.text
    assert not (tmp_path / "o").exists()



def test_nim_betas_come_from_nim_training(tiny_neox_dir, tmp_path, monkeypatch, restore_threads):
    from metaexamples.training import lifecycle, prompted

    seen = []

    def prepare(*args):
        prepared = real_prepare(*args)
        seen.append(prepared[1].param_groups[0]["betas"])
        return prepared

    real_prepare = lifecycle.prepare_training
    monkeypatch.setattr(lifecycle, "prepare_training", prepare)
    cfg = NimTrainingConfig(epochs=1, batch_size=4, adam_beta1=0.8, adam_beta2=0.95)
    prompts = [f"Nim with {n} coins. Your move:" for n in range(5, 9)]
    out = tmp_path / "nim"
    prompted.train_prompt_completion(
        tiny_neox_dir, prompts, [" take 1 coin"] * 4, cfg.run_settings(4), seed=0, out_dir=out,
        checkpoint_root=tmp_path / "checkpoints")
    assert seen == [(0.8, 0.95)]
    assert NimTrainingConfig().adam_beta1 == 0.9 and NimTrainingConfig().adam_beta2 == 0.999


def test_settings_resolved_for_other_examples_are_refused(tiny_neox_dir, tmp_path, caplog):
    """The workflow resolves the steps from the experiment's n_train; a train file of
    another size must not silently train on another schedule."""
    rows = [{"prompt": f"Nim with {n} coins. Your move:", "answer": " take 1 coin"}
            for n in range(5, 11)]
    train = tmp_path / "train.jsonl"
    write_jsonl(train, rows)
    settings = NimTrainingConfig(epochs=1, batch_size=2).run_settings(10).to_json()
    argv = ["nim", "train", "--model-id", str(tiny_neox_dir), "--train", str(train),
            "--settings", settings, "--out-dir", str(tmp_path / "o"),
            "--checkpoint-root", str(tmp_path / "ckpt")]
    with caplog.at_level(logging.ERROR):
        assert cli.main(argv) == 1
        assert "6 examples make 3 steps in 1 epochs of batches of 2, but the settings were " \
               "resolved for 5 steps" in caplog.text
        assert cli.main([*argv, "--max-len", "64"]) == 1
        assert "--max-len: change the config before it is resolved" in caplog.text
    assert not (tmp_path / "o").exists()


def test_a_killed_nim_run_resumes_to_the_same_model(tiny_neox_dir, tmp_path, restore_threads):
    """Killed after step 4 of 6 (checkpoints at 2 and 4), the rerun resumes from step 4, ends
    on the uninterrupted run's weights and still hands over every epoch's model."""
    rows = [{"prompt": f"Nim with {n} coins, take 1 to 3. Your move:",
             "answer": f" take {n % 4 or 1} coins"} for n in range(5, 17)]
    train = tmp_path / "train.jsonl"
    write_jsonl(train, rows)
    settings = NimTrainingConfig(epochs=3, batch_size=6, learning_rate=0.002, l2sp_weight=0.5,
                                 save_every_epochs=1).run_settings(len(rows)).to_json()

    def argv(out: str, ckpt: str) -> list[str]:
        return ["nim", "train", "--model-id", str(tiny_neox_dir), "--train", str(train),
                "--settings", settings, "--out-dir", str(tmp_path / out),
                "--checkpoint-root", str(tmp_path / ckpt), "--threads", "1"]

    killed = subprocess.run([sys.executable, "-m", "metaexamples.cli", *argv("a", "ca"),
                             "--debug-kill-after-step", "5"], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "a").exists()
    (run_dir,) = (tmp_path / "ca").iterdir()
    assert sorted(p.name for p in run_dir.glob("step-*")) == ["step-2", "step-4"]
    assert cli.main(argv("a", "ca")) == 0
    assert cli.main(argv("b", "cb")) == 0  # uninterrupted
    a, b = (json.loads((tmp_path / x / "train_metrics.json").read_text()) for x in "ab")
    assert (a["resumed_from_step"], b["resumed_from_step"]) == (4, 0)
    for model in ("final", "checkpoints/step-2", "checkpoints/step-4", "checkpoints/step-6"):
        wa, wb = (load_file(tmp_path / x / model / "model.safetensors") for x in "ab")
        assert all(torch.equal(wa[k], wb[k]) for k in wb), model
    logs = [[{k: v for k, v in r.items() if k != "train_seconds"}
             for r in csv.DictReader((tmp_path / x / "train_log.csv").open())] for x in "ab"]
    assert logs[0] == logs[1]
