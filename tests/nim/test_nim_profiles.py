"""`snakemake --profile lambda -n` and `--profile slurm -n` plan the original project's Nim
experiments on Pythia-410m with at least three seeds each, with GPU, memory and time requests that
fit a 410M model. Dry runs in a clean copy of the repository; no GPU and no cluster needed."""

from __future__ import annotations

import re

import pytest

from metaexamples.training.settings import RunSettings

from ..scale.test_profiles import (  # noqa: F401  (clone is a fixture)
    clone,
    nvidia_smi,
    planned_jobs,
    require_slurm_plugin,
    snakemake,
)

# The original project's experiments: max_remove sets, name shortcuts (and their
# cheat-versus-neutral variants), numbers, randomized terminology and the label-leaking names.
ORIGINAL_EXPERIMENTS = {"234", "357", "34567", "345678", "8910", "20000names", "cheating",
                    "notcheating", "varcheating25", "varcheating50", "varcheating75",
                    "numocc4", "manybase", "purenums", "randomterms",
                    "labelnames"}  # fmt: skip
PYTHIA = "data/models/EleutherAI--pythia-410m-deduped"


def nim_runs(output: str) -> dict[str, set[int]]:
    """experiment -> seeds of the planned `nim train` commands, checking each one's model."""
    runs: dict[str, set[int]] = {}
    for command in re.findall(r"metaexamples nim train (.*)", output):
        assert f"--model-id {PYTHIA} " in command, command
        name, seed = re.search(r"--seed (\d+) --out-dir results/nim/([^/]+)/seed\1/", command
                               ).group(2, 1)  # fmt: skip
        runs.setdefault(name, set()).add(int(seed))
    return runs


def rule_resources(output: str, rule: str) -> list[str]:
    return re.findall(rf"rule {rule}:(?:.|\n)*?resources: (.*)", output)


def assert_original_experiments(proc) -> dict[str, int]:
    assert proc.returncode == 0, proc.output[-4000:]
    runs = nim_runs(proc.output)
    assert set(runs) == ORIGINAL_EXPERIMENTS
    assert all(len(seeds) >= 3 for seeds in runs.values()), runs
    jobs = planned_jobs(proc.output)
    n_runs = sum(map(len, runs.values()))
    assert jobs["nim_train"] == jobs["nim_evaluate"] == n_runs
    assert "tiny" not in runs  # the CPU smoke experiment stays on the CPU
    return jobs


def test_lambda_plans_the_original_nim_experiments_on_pythia(clone, tmp_path):  # noqa: F811
    proc = snakemake(clone, "--profile", "lambda", "-n", "-p",
                     extra_path=nvidia_smi(tmp_path, 8))  # fmt: skip
    jobs = assert_original_experiments(proc)
    assert jobs["train"] > 0  # the grammar matrix is planned beside it
    for rule in ("nim_train", "nim_evaluate"):
        for res in rule_resources(proc.output, rule):
            assert "gpu=1" in res, res  # leased by with-gpus, one device per job
    train_mem = {re.search(r"mem_mb=(\d+)", r)[1] for r in rule_resources(proc.output, "nim_train")}
    assert train_mem == {"16000"}  # a 410M model, not the 1B default (48000)
    assert "with-gpus --gpus 1 -- metaexamples nim train" in proc.output


def test_slurm_plans_the_original_nim_experiments_with_their_resources(clone):  # noqa: F811
    require_slurm_plugin()
    proc = snakemake(clone, "--profile", "slurm", "-n", "-p")
    assert_original_experiments(proc)
    for res in rule_resources(proc.output, "nim_train"):
        for part in (
            "gpu=1",
            "slurm_partition=gpu",
            "cpus_per_gpu=8",
            "mem_mb=16000",
            "runtime=1440",
        ):
            assert part in res, res
    for res in rule_resources(proc.output, "nim_evaluate"):
        for part in ("gpu=1", "slurm_partition=gpu", "mem_mb=12000"):
            assert part in res, res
    assert re.search(r"metaexamples nim train .* --threads 8 ", proc.output)


@pytest.mark.parametrize("profile", ["lambda", "slurm"])
def test_profiles_use_the_original_training_settings(clone, profile):  # noqa: F811
    if profile == "slurm":
        require_slurm_plugin()
    proc = snakemake(clone, "--profile", profile, "-n", "-p", "results/nim/summary.csv")
    assert proc.returncode == 0, proc.output[-4000:]
    given = re.search(r"metaexamples nim train .*--settings '([^']*)'", proc.output)[1]
    settings = RunSettings.from_json(given)
    assert (settings.epochs, settings.batch_size, settings.learning_rate) == (130, 64, 3e-05)
    assert settings.max_steps % 130 == 0  # whole epochs
    assert settings.warmup_steps == round(0.1 * settings.max_steps)
