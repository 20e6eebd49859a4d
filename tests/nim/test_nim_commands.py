"""`metaexamples nim ...`: the subcommands chained as the workflow runs them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from metaexamples.cli import build_parser, main
from metaexamples.io import read_json, read_jsonl

CONFIG = {
    "nim": {
        "experiments": {
            "tiny": {"n_train": 40, "n_eval": 8, "n_val": 8},
            "cheats": {"preset": "cheating", "n_train": 200, "n_eval": 6, "n_val": 6,
                       "trace_min": 2, "n_name_pairs": 12},
            "labels": {"preset": "labelnames", "n_train": 300, "n_eval": 40, "n_val": 20},
            "leaky": {"preset": "tiny", "split": "random", "pile_max": 8, "trace_min": 2,
                      "trace_max": 2, "name_source": "fixed", "unseen_pile_fraction": 0.0,
                      "n_train": 60, "n_eval": 10, "n_val": 5,
                      "leakage": {"max_exact_overlap_fraction": 0.0}},
        },
        "training": {"eval_batch_size": 8},
    }
}  # fmt: skip


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_generate_leakage_evaluate_plot_summarize(workdir, tiny_neox_dir):
    model = str(tiny_neox_dir)
    for name in ("tiny", "cheats"):
        assert main(["nim", "generate", "--experiment", name, "--model-id", model]) == 0
        assert main(["nim", "leakage", "--experiment", name]) == 0
    manifest = read_json("data/nim/cheats/manifest.json")
    assert manifest["seam_checked"] is True
    assert sorted(manifest["splits"]) == [
        "eval", "eval_cheat", "eval_counter_cheat", "eval_neutral", "train", "val"
    ]  # fmt: skip
    leakage = read_json("results/nim/tiny/leakage.json")
    assert leakage["passed"] is True
    assert set(leakage["eval"]) == {"val", "eval", "eval_unseen_piles"}

    for name, seed in (("tiny", 0), ("tiny", 1), ("cheats", 0), ("cheats", 1)):
        folder = workdir / "data/nim" / name
        evals = [str(folder / "val.jsonl"), *sorted(map(str, folder.glob("eval*.jsonl")))]
        code = main(
            [
                "nim",
                "evaluate",
                "--base-model",
                model,
                "--checkpoint",
                f"{3 + seed}={model}",
                "--eval",
                *evals,
                "--out-dir",
                f"results/nim/{name}/seed{seed}",
                "--threads",
                "1",
            ]
        )
        assert code == 0
        assert main(["nim", "plot", "--eval-dir", f"results/nim/{name}/seed{seed}"]) == 0
    table = pd.read_csv("results/nim/cheats/seed0/accuracy_table.csv")
    assert sorted(set(table["step"])) == [0, 3]
    assert len(table) == 2 * 5  # val and four eval sets at two checkpoints
    plots = {p.name for p in (workdir / "results/nim/cheats/seed0/plots").glob("*.png")}
    assert "accuracy_by_bucket.png" in plots and "accuracy_vs_step.png" in plots
    assert "mistakes_by_answer.png" in plots
    assert not (workdir / "results/nim/tiny/seed0/plots/accuracy_by_bucket.png").exists()

    runs = [arg for name in ("tiny", "cheats") for seed in (0, 1)
            for arg in ("--run", name, str(seed),
                        f"results/nim/{name}/seed{seed}/accuracy_table.csv",
                        f"results/nim/{name}/leakage.json")]  # fmt: skip
    assert main(["nim", "summarize", *runs]) == 0
    summary = pd.read_csv("results/nim/summary.csv", dtype={"seed": str})
    per_seed = summary[summary["seed"] != "all"]
    assert list(per_seed["experiment"]) == ["tiny"] * 4 + ["cheats"] * 8
    assert "val" not in set(summary["dataset"])
    assert set(per_seed["selected_step"]) <= {0, 3, 4}  # a checkpoint of that seed
    assert "selected_step,selected_checkpoint" in open("results/nim/summary.csv").readline()
    assert ",3.0," not in open("results/nim/summary.csv").read()  # steps stay integers
    across = summary[summary["seed"] == "all"]
    assert list(across["experiment"]) == ["tiny"] * 2 + ["cheats"] * 4
    assert set(across["n_seeds"]) == {2} and set(across["interval_method"]) == {"t"}


def test_settings_json_is_what_the_workflow_passes(workdir):
    settings = json.dumps({"nim.experiments.tiny": {"n_train": 12, "n_eval": 4}})
    assert main(["nim", "generate", "--experiment", "tiny", "--settings", settings]) == 0
    assert len(read_jsonl("data/nim/tiny/train.jsonl")) == 12


def test_leakage_gate_failure_exits_nonzero_and_keeps_the_report(workdir, caplog):
    assert main(["nim", "generate", "--experiment", "leaky"]) == 0
    assert main(["nim", "leakage", "--experiment", "leaky"]) == 1
    report = read_json("results/nim/leaky/leakage.json")
    assert report["passed"] is False
    assert "exact_overlap_fraction" in caplog.text
    assert "nim.experiments.leaky.leakage" in caplog.text


def test_an_expected_leakage_failure_goes_on_and_an_unexpected_pass_stops(workdir, caplog):
    assert main(["nim", "generate", "--experiment", "labels"]) == 0
    assert main(["nim", "leakage", "--experiment", "labels"]) == 0
    report = read_json("results/nim/labels/leakage.json")
    assert report["passed"] is False and report["expected_failure"]
    assert "as expected" in caplog.text
    entry = {"preset": "tiny", "n_train": 40, "n_eval": 8, "n_val": 8,
             "leakage": {"expected_failure": "a test of the switch"}}  # fmt: skip
    settings = json.dumps({"nim.experiments.clean": entry})
    run = ["--experiment", "clean", "--settings", settings]
    assert main(["nim", "generate", *run]) == 0
    assert main(["nim", "leakage", *run]) == 1
    assert "expected_failure says it leaks (a test of the switch)" in caplog.text


def test_summarize_without_experiments_writes_the_header_only(workdir):
    assert main(["nim", "summarize", "--out", "summary.csv"]) == 0
    lines = (workdir / "summary.csv").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("experiment,dataset,seed")


def test_unknown_experiment_is_a_clear_error(workdir, caplog):
    assert main(["nim", "generate", "--experiment", "nope"]) == 1
    assert "nim.experiments.nope: not configured" in caplog.text


def test_train_delegates_to_the_nim_trainer():
    from metaexamples.commands import nim_train

    args = build_parser().parse_args(
        ["nim", "train", "--model-id", "m", "--train", "t.jsonl", "--out-dir", "o"]
    )
    assert args.nim_run is nim_train.run
