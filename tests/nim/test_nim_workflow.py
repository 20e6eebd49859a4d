"""The Nim rules: planning for plain and cheat experiments, config rejection before any job."""

from __future__ import annotations

import yaml

from ..conftest import REPO
from ..test_workflow import planned_jobs, snakemake

EXPERIMENTS = {"tiny": {}, "cheating": {"n_train": 200}, "357": {"n_train": 300}}


def test_dry_run_plans_plain_and_cheat_experiments(tmp_path):
    config = yaml.safe_load((REPO / ".test/config.yaml").read_text())
    config["nim"]["experiments"] = EXPERIMENTS
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    targets = [
        "results/nim/summary.csv",
        "results/nim/cheating/plots/accuracy_by_bucket.png",
        "results/nim/357/plots/accuracy_vs_step.png",
        "results/nim/tiny/plots/accuracy_by_name_pair.png",
    ]
    proc = snakemake("-n", "-F", *targets, f"--configfile={path}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    jobs = planned_jobs(proc.stdout)
    assert jobs["nim_generate"] == 2 and jobs["nim_generate_cheat"] == 1
    for rule in ("nim_leakage", "nim_train", "nim_evaluate"):
        assert jobs[rule] == 3
    assert jobs["nim_plot"] == 2 and jobs["nim_plot_cheat"] == 1
    assert jobs["nim_summarize"] == 1
    assert "data/nim/cheating/eval_counter_cheat.jsonl" in proc.stdout
    assert "data/nim/tiny/eval_cheat.jsonl" not in proc.stdout


def test_a_bad_nim_experiment_is_rejected_before_any_job():
    proc = snakemake("-n", "--config", "nim={'experiments': {'tiny': {'n_train': 0}}}")
    assert proc.returncode != 0
    assert "nim.experiments.tiny.n_train" in proc.stderr + proc.stdout
    assert "Job stats" not in proc.stdout
