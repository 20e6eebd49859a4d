"""The shared training loop: schedule, checkpoints, kill-and-resume, outputs, bad input."""

from __future__ import annotations

import csv
import itertools
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from metaexamples import cli
from metaexamples.canonical import offline_documents
from metaexamples.grammar.documents import example_text, meta_text
from metaexamples.io import write_jsonl
from metaexamples.training.trainer import (
    CheckpointError,
    Progress,
    epoch_batches,
    history_csv,
    lr_at,
    run_key,
    verify_checkpoint,
)

SYMBOLS = ["¡", "■", "¥", "―", "†"]
SETTINGS = {"training": {"max_steps": 6, "batch_size": 2, "max_seq_length": 32,
                         "eval_steps": 3, "save_steps": 2, "warmup_steps": 1,
                         "eval_documents": 4, "learning_rate": 0.003}}


# -- pure pieces ---------------------------------------------------------------------------


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_at(s, max_lr=1.0, warmup_steps=4, max_steps=40, min_lr_ratio=0.1)
           for s in range(41)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in itertools.pairwise(lrs[3:]))
    assert lrs[40] == pytest.approx(0.1)
    assert min(lrs) >= 0.1 - 1e-12


def test_epoch_batches_cover_every_example_once_per_epoch():
    batches = epoch_batches(10, 4, 3, seed=1)
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    for epoch in range(3):
        assert sorted(i for b in batches[3 * epoch : 3 * epoch + 3] for i in b) == list(range(10))
    assert batches[:3] != batches[3:6]
    assert batches == epoch_batches(10, 4, 3, seed=1)


def test_run_key_changes_with_settings_and_input_content():
    base = run_key({"lr": 1e-3}, {"corpus": "aa"})
    assert base == run_key({"lr": 1e-3}, {"corpus": "aa"})
    assert base != run_key({"lr": 2e-3}, {"corpus": "aa"})
    assert base != run_key({"lr": 1e-3}, {"corpus": "ab"})


def test_history_csv_has_a_stable_column_order():
    rows = [{"val_loss": 2.0, "step": 0, "train_loss": None, "tokens": 0, "lr": 0.1},
            {"step": 5, "val_loss": 1.0, "train_loss": 1.5, "tokens": 50, "lr": 0.05}]
    lines = history_csv(rows).splitlines()
    assert lines == ["step,tokens,lr,train_loss,val_loss", "0,0,0.1,,2.0", "5,50,0.05,1.5,1.0"]


# -- grammar runs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm_data(tmp_path_factory, arrow_dir) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("lmdata")
    docs = [t for _, t in itertools.islice(offline_documents(arrow_dir), 400) if len(t) > 100]
    g = torch.Generator().manual_seed(0)

    def string() -> list[str]:
        n = int(torch.randint(1, 13, (1,), generator=g))
        return [SYMBOLS[int(i)] for i in torch.randint(0, 5, (n,), generator=g)]

    paths = {name: d / f"{name}.jsonl" for name in ("canonical", "heldout", "train", "val",
                                                     "meta", "empty")}
    write_jsonl(paths["canonical"], ({"text": t} for t in docs[:300]))
    write_jsonl(paths["heldout"], ({"text": t} for t in docs[300:]))
    write_jsonl(paths["train"], ({"text": example_text("g1", string())} for _ in range(200)))
    write_jsonl(paths["val"], [{"text": example_text("g1", string()), "valid": True}
                               for _ in range(20)]
                + [{"text": "<g1> ¡ ¡", "valid": False} for _ in range(5)])
    write_jsonl(paths["meta"], ({"text": meta_text("describe", "g1", f"Rule {i}: any string.")}
                                for i in range(20)))
    paths["empty"].write_text("")
    return paths


def _train_args(model_dir: Path, data: dict[str, Path], out: Path, ckpt: Path,
                *extra: str, settings: dict | None = None) -> list[str]:
    return ["train", "--model-id", str(model_dir), "--corpus", str(data["train"]),
            "--meta", str(data["meta"]), "--meta-percent", "10",
            "--canonical", str(data["canonical"]), "--canonical-heldout", str(data["heldout"]),
            "--eval-data", str(data["val"]), "--seed", "0",
            "--settings", json.dumps(settings or SETTINGS),
            "--checkpoint-root", str(ckpt), "--out-dir", str(out), "--threads", "1", *extra]


@pytest.fixture()
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model" / "model.safetensors")


def _log_without_timing(run: Path) -> list[dict[str, str]]:
    with (run / "train_log.csv").open() as fh:
        return [{k: v for k, v in row.items() if k != "train_seconds"}
                for row in csv.DictReader(fh)]


def test_kill_and_resume_reaches_the_same_weights(tiny_model_dir, lm_data, tmp_path,
                                                  restore_threads):
    killed_out, ckpt = tmp_path / "killed", tmp_path / "ckpt"
    args = _train_args(tiny_model_dir, lm_data, killed_out, ckpt)
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
    assert cli.main(_train_args(tiny_model_dir, lm_data, straight_out, tmp_path / "c2")) == 0
    a, b = _weights(killed_out), _weights(straight_out)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _log_without_timing(killed_out) == _log_without_timing(straight_out)
    assert resumed["tokens_seen"] == json.loads(
        (straight_out / "train_metrics.json").read_text())["tokens_seen"] == 6 * 2 * 32


def test_outputs_of_a_run(tiny_model_dir, lm_data, tmp_path, restore_threads):
    out = tmp_path / "run"
    assert cli.main(_train_args(tiny_model_dir, lm_data, out, tmp_path / "ckpt")) == 0
    assert sorted(p.name for p in out.iterdir() if p.name != "tensorboard") == [
        "config.json", "model", "train_log.csv", "train_metrics.json"]
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert type(model).__name__ == "OlmoForCausalLM"
    m = json.loads((out / "train_metrics.json").read_text())
    for key in ("steps", "tokens_seen", "achieved_synthetic_share", "stream", "wall_time_s",
                "tokens_per_s", "final_train_loss", "final_val_loss", "final_val_ppl",
                "final_canonical_loss", "final_canonical_ppl", "device", "precision"):
        assert m[key] is not None, key
    assert m["precision"] == "fp32" and m["device"] == "cpu"
    assert m["achieved_synthetic_share"] == m["stream"]["achieved_synthetic_share"]
    assert m["stream"]["pools"]["meta"]["documents"] >= 1
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 3, 6]
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["max_steps"] == 6 and config["run_key"] == m["run_key"]
    assert set(config["input_sha256"]) == {"model", "corpus", "canonical", "canonical_heldout",
                                           "eval_data", "meta"}


def test_a_changed_config_never_resumes_stale_state(tiny_model_dir, lm_data, tmp_path,
                                                    restore_threads):
    ckpt = tmp_path / "ckpt"
    first = _train_args(tiny_model_dir, lm_data, tmp_path / "a", ckpt, "--keep-checkpoints")
    assert cli.main(first) == 0
    changed = _train_args(tiny_model_dir, lm_data, tmp_path / "b", ckpt, "--keep-checkpoints",
                          "--learning-rate", "0.001")
    assert cli.main(changed) == 0
    a = json.loads((tmp_path / "a" / "train_metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "train_metrics.json").read_text())
    assert a["run_key"] != b["run_key"] and b["resumed_from_step"] == 0
    assert len(list(ckpt.iterdir())) == 2


def test_a_corrupt_checkpoint_is_an_error_naming_the_file(tiny_model_dir, lm_data, tmp_path,
                                                         restore_threads, caplog):
    ckpt = tmp_path / "ckpt"
    assert cli.main(_train_args(tiny_model_dir, lm_data, tmp_path / "a", ckpt,
                                "--keep-checkpoints")) == 0
    (run_dir,) = ckpt.iterdir()
    optimizer = run_dir / "step-4" / "optimizer.bin"
    optimizer.write_bytes(optimizer.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError, match=r"optimizer.bin: corrupt or truncated"):
        verify_checkpoint(run_dir / "step-4")
    out = tmp_path / "b"
    with caplog.at_level(logging.ERROR):
        assert cli.main(_train_args(tiny_model_dir, lm_data, out, ckpt)) == 1
    assert "step-4/optimizer.bin: corrupt or truncated" in caplog.text
    assert not out.exists()
    (run_dir / "step-4" / "checksums.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete checkpoint"):
        verify_checkpoint(run_dir / "step-4")


def test_checkpoint_progress_round_trips(tmp_path):
    p = Progress(step=3, tokens=30, train_seconds=1.5, history=[{"step": 0, "val_loss": 2.0}])
    assert Progress.from_dict(json.loads(json.dumps(p.to_dict()))) == p


@pytest.mark.parametrize(("extra", "message"), [
    (("--max-seq-length", "512"), "training.max_seq_length: 512 is above the model's maximum"),
    (("--synthetic-mix-ratio", "1.0"), "training.synthetic_mix_ratio: 1.0 must be in"),
    (("--synthetic-mix-ratio", "0"), "training.synthetic_mix_ratio: 0.0 must be in"),
])
def test_bad_settings_are_named_and_nothing_is_written(tiny_model_dir, lm_data, tmp_path,
                                                       restore_threads, caplog, extra, message):
    out = tmp_path / "run"
    with caplog.at_level(logging.ERROR):
        assert cli.main(_train_args(tiny_model_dir, lm_data, out, tmp_path / "c", *extra)) == 1
    assert message in caplog.text
    assert not out.exists() and not (tmp_path / "c").exists()


def test_empty_corpus_is_named_and_nothing_is_written(tiny_model_dir, lm_data, tmp_path,
                                                      restore_threads, caplog):
    data = {**lm_data, "train": lm_data["empty"]}
    out = tmp_path / "run"
    with caplog.at_level(logging.ERROR):
        assert cli.main(_train_args(tiny_model_dir, data, out, tmp_path / "c")) == 1
    assert f"{lm_data['empty']}: file is empty" in caplog.text
    assert not out.exists()


# -- prompt/completion runs ----------------------------------------------------------------


def test_nim_train_writes_checkpoints_per_epoch_and_final(tiny_neox_dir, tmp_path,
                                                          restore_threads):
    rows = [{"id": i, "prompt": f"Nim with {n} coins, take 1 to 3. Your move:",
             "answer": f" take {n % 4 or 1} coins"} for i, n in enumerate(range(5, 25))]
    train = tmp_path / "train.jsonl"
    write_jsonl(train, rows)
    settings = {"nim.training": {"epochs": 2, "batch_size": 8, "learning_rate": 0.002,
                                 "l2sp_weight": 0.01, "save_every_epochs": 1}}
    out = tmp_path / "nim"
    assert cli.main(["nim-train", "--model-id", str(tiny_neox_dir), "--train", str(train),
                     "--settings", json.dumps(settings), "--seed", "0", "--out-dir", str(out),
                     "--threads", "1"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-3", "step-6"]
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
        assert cli.main(["nim-train", "--model-id", str(tiny_neox_dir), "--train", str(train),
                         "--settings", "{}", "--out-dir", str(tmp_path / "o")]) == 1
    assert f"{train}:1 (id a7): the prompt's tokens are not a prefix" in caplog.text
    assert not (tmp_path / "o").exists()

