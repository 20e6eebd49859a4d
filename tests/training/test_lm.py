"""The language-model entry: a grammar run's outputs, and bad input named before any output."""

from __future__ import annotations

import argparse
import csv
import json
import logging

import numpy as np
import pytest
from transformers import AutoModelForCausalLM

from metaexamples import cli
from metaexamples.commands import train as train_command
from metaexamples.config import ConfigError


def test_outputs_of_a_run(train_args, tmp_path, restore_threads):
    out = tmp_path / "run"
    assert cli.main(train_args(out, tmp_path / "ckpt")) == 0
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
    assert m["anchor_weight"] == 0.0 and m["anchor_distance"] > 0  # no pull: it drifts
    assert m["stream"]["pools"]["meta"]["documents"] >= 1
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 3, 6]
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["max_steps"] == 6 and config["run_key"] == m["run_key"]
    assert set(config["input_sha256"]) == {"model", "corpus", "canonical", "canonical_heldout",
                                           "eval_data", "meta"}


@pytest.mark.parametrize(("extra", "message"), [
    (("--max-seq-length", "512"), "max_seq_length: 512 is above the model's maximum"),
    (("--synthetic-mix-ratio", "1.0"), "training.synthetic_mix_ratio: 1.0 must be in"),
    (("--synthetic-mix-ratio", "0"), "training.synthetic_mix_ratio: 0.0 must be in"),
])
def test_bad_settings_are_named_and_nothing_is_written(train_args, tmp_path,
                                                       restore_threads, caplog, extra, message):
    out = tmp_path / "run"
    with caplog.at_level(logging.ERROR):
        assert cli.main(train_args(out, tmp_path / "c", *extra)) == 1
    assert message in caplog.text
    assert not out.exists() and not (tmp_path / "c").exists()


def test_empty_corpus_is_named_and_nothing_is_written(train_args, lm_data, tmp_path,
                                                      restore_threads, caplog):
    data = {**lm_data, "train": lm_data["empty"]}
    out = tmp_path / "run"
    with caplog.at_level(logging.ERROR):
        assert cli.main(train_args(out, tmp_path / "c", data=data)) == 1
    assert f"{lm_data['empty']}: file is empty" in caplog.text
    assert not out.exists()


def test_settings_are_resolved_from_the_config_or_taken_as_given(tmp_path):
    parser = argparse.ArgumentParser()
    train_command.configure(parser)
    config = tmp_path / "config.yaml"
    config.write_text("training: {max_steps: {g1: 3, g3: 7}, learning_rate: 0.01}\n"
                      "experiment: {grammars: [g1, g3]}\n")
    base = ["--model-id", "m", "--corpus", "c", "--out-dir", "o", "--config", str(config)]
    resolve = train_command.training_settings
    g3 = resolve(parser.parse_args([*base, "--grammar", "g3"]))
    assert (g3.max_steps, g3.learning_rate) == (7, 0.01)
    assert resolve(parser.parse_args([*base, "--max-steps", "5"])).max_steps == 5
    with pytest.raises(ConfigError, match="is per grammar; name the run's grammar"):
        resolve(parser.parse_args(base))
    with pytest.raises(ConfigError, match="no entry for 'g2'"):
        resolve(parser.parse_args([*base, "--grammar", "g2"]))
    # the workflow's resolved JSON is taken as given, and is the same settings
    given = ["--model-id", "m", "--corpus", "c", "--out-dir", "o", "--settings", g3.to_json()]
    assert resolve(parser.parse_args(given)) == g3
    with pytest.raises(ConfigError, match="--max-steps, --learning-rate: change the config"):
        resolve(parser.parse_args([*given, "--max-steps", "5", "--learning-rate", "0.1"]))


def test_a_run_with_its_grammar_writes_the_val_excess_nll_curve(train_args, tmp_path,
                                                                restore_threads):
    from metaexamples.grammar.excess import curve_summaries
    from metaexamples.grammar.languages import make_grammar
    from metaexamples.io import write_jsonl

    from .conftest import SYMBOLS

    g = make_grammar("g1", tuple(SYMBOLS), 1, 4)
    rng = np.random.default_rng(0)
    val = tmp_path / "val.jsonl"
    strings = {tuple(g.sample(rng)) for _ in range(40)}
    write_jsonl(val, [{"text": " ".join(["<g1>", *s, "</g1>"]), "symbols": list(s),
                       "valid": True, "logp_true": g.logp(s)} for s in sorted(strings)])
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"grammar": "g1", "alphabet": SYMBOLS, "min_length": 1,
                                    "max_length": 4}))
    out = tmp_path / "run"
    argv = train_args(out, tmp_path / "ckpt", "--manifest", str(manifest),
                      "--exact-max-strings", "25")
    argv[argv.index("--eval-data") + 1] = str(val)
    assert cli.main(argv) == 0
    curve = json.loads((out / "learning_curve.json").read_text())
    assert curve["steps"] == [0, 3, 6]
    assert sum(curve["exact"]) == 5 + 25  # every string of lengths 1 and 2
    assert all(n > 2 for n, e in zip(curve["lengths"], curve["exact"], strict=True) if not e)
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    logged = [float(r["val_excess_nll"]) for r in rows]
    assert logged == pytest.approx(curve["excess_nll"])
    assert logged[-1] < logged[0]  # it learns
    summary = curve_summaries(curve, threshold=logged[0])
    assert summary["tokens_to_threshold"] == 0.0
    assert summary["curve_final_excess_nll"] == pytest.approx(logged[-1])
