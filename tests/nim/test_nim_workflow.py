"""The Nim rules: planning for plain and cheat experiments, config rejection before any job."""

from __future__ import annotations

import re

import pytest
import yaml

from ..conftest import REPO
from ..test_workflow import planned_jobs, snakemake, workdir  # noqa: F401  (a fixture)

EXPERIMENTS = {"tiny": {}, "cheating": {"n_train": 200}, "357": {"n_train": 300}}


def test_dry_run_plans_plain_and_cheat_experiments_for_every_seed(tmp_path):
    config = yaml.safe_load((REPO / ".test/config.yaml").read_text())
    config["nim"]["experiments"] = EXPERIMENTS
    config["nim"]["training"]["seeds"] = [0, 1]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    targets = [
        "results/nim/summary.csv",
        "results/nim/cheating/seed1/plots/accuracy_by_bucket.png",
        "results/nim/357/seed0/plots/accuracy_vs_step.png",
        "results/nim/tiny/seed1/plots/accuracy_by_name_pair.png",
    ]
    proc = snakemake("-n", "-F", "-p", *targets, f"--configfile={path}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    jobs = planned_jobs(proc.stdout)
    assert jobs["nim_generate"] == jobs["nim_leakage"] == 3
    for rule in ("nim_train", "nim_evaluate"):
        assert jobs[rule] == 3 * 2
    assert jobs["nim_plot"] == 2 and jobs["nim_plot_cheat"] == 1
    assert jobs["nim_summarize"] == 1
    for seed in (0, 1):
        assert f"--seed {seed} --out-dir results/nim/357/seed{seed}/train" in proc.stdout
    # 357 is scored on val, the pooled eval set and one set per max_remove value
    heldout = " ".join(f"data/nim/357/{n}.jsonl" for n in
                       ("val", "eval", "eval_m3", "eval_m5", "eval_m7"))  # fmt: skip
    assert f"--eval {heldout} --out-dir results/nim/357/seed0" in proc.stdout
    assert "data/nim/cheating/eval_counter_cheat.jsonl" in proc.stdout
    assert "data/nim/tiny/eval_cheat.jsonl" not in proc.stdout
    summarize = re.search(r"metaexamples nim summarize (.*) --out", proc.stdout)[1]
    runs = re.findall(r"--run (\S+) (\d) (\S+) (\S+)", summarize)
    assert sorted((name, seed) for name, seed, *_ in runs) == sorted(
        (name, seed) for name in ("tiny", "cheating", "357") for seed in "01")
    assert all(table == f"results/nim/{name}/seed{seed}/accuracy_table.csv"
               and leakage == f"results/nim/{name}/leakage.json"
               for name, seed, table, leakage in runs)


def test_a_bad_nim_experiment_is_rejected_before_any_job():
    proc = snakemake("-n", "--config", "nim={'experiments': {'tiny': {'n_train': 0}}}")
    assert proc.returncode != 0
    assert "nim.experiments.tiny.n_train" in proc.stderr + proc.stdout
    assert "Job stats" not in proc.stdout


def test_a_run_with_every_nim_experiment_off_plans_no_nim_job(tmp_path):
    """`nim: {experiments: {tiny: false}}`: the default targets leave the Nim family out
    (no summary to make), and the grammar matrix is planned as usual."""
    path = tmp_path / "no_nim.yaml"
    path.write_text("nim: {experiments: {tiny: false}}\n")
    proc = snakemake("-n", "-F", f"--configfile={path}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    jobs = planned_jobs(proc.stdout)
    assert jobs["train"] > 0
    assert not [rule for rule in jobs if rule.startswith("nim_")], jobs
    assert "results/nim/" not in proc.stdout


@pytest.mark.slow
def test_a_nim_only_run_completes_with_every_figure(workdir):  # noqa: F811
    """The Nim targets alone, for real, on the small test config (one epoch of the tiny
    experiment): data, leakage gate, training, evaluation, summary and every figure."""
    from metaexamples.nim.plots import FIGURES

    figures = [f"results/nim/tiny/seed0/plots/{name}.png" for name in FIGURES]
    run = ("--configfile", ".test/config.yaml", "--cores", "2")
    proc = snakemake(*run, "results/nim/summary.csv", *figures, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = planned_jobs(proc.stdout + proc.stderr)
    assert jobs["nim_train"] == 1 and "train" not in jobs and "generate_data" not in jobs
    summary = (workdir / "results/nim/summary.csv").read_text().splitlines()
    datasets = {line.split(",")[1] for line in summary[1:]}
    assert datasets == {"eval", "eval_unseen_piles"}
    for figure in figures:
        assert (workdir / figure).stat().st_size > 0
