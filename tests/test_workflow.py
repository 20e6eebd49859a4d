"""The Snakemake workflow: lint, planning, and config rejection before any job runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from metaexamples.models import PRESETS

from .conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args: str, cwd: Path = REPO, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def planned_jobs(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into {rule: count}."""
    table = output.split("Job stats:")[-1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m[1] != "total"}


def test_lint_is_clean():
    proc = snakemake("--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_dry_run_plans_the_whole_matrix():
    proc = snakemake("-n", "-F", "--configfile", ".test/config.yaml")
    assert proc.returncode == 0, proc.stderr
    jobs = planned_jobs(proc.stdout)
    assert jobs["generate_data"] == 3
    assert jobs["train"] == 12  # 3 grammars x 2 conditions x 2 seeds
    assert jobs["evaluate"] == 12 + 2 * 3  # and each grammar's baseline and oracle
    assert jobs["contrast_grammar"] == 3 and jobs["contrast"] == 1
    # the grammar model, its initialisation for seed 1, and the Nim model
    assert jobs["prepare_model"] == 3


@pytest.mark.parametrize("cores", [1, 2, 8, 64])
def test_local_torch_jobs_never_run_more_threads_than_the_machine_has(cores):
    """`--cores N` is a budget: the torch jobs it lets run at once fit the real cores."""
    proc = snakemake("-n", "-p", "-F", "--cores", str(cores),
                     "results/runs/g1/examples/seed0/train_metrics.json")
    assert proc.returncode == 0, proc.stderr
    block = proc.stdout.split("rule train:")[1].split("\n\n")[0]
    booked = int(m[1]) if (m := re.search(r"threads: (\d+)", block)) else 1  # 1 is not shown
    ran = int(re.search(r"metaexamples train .*--threads (\d+)", proc.stdout)[1])
    machine = len(os.sched_getaffinity(0))
    assert 1 <= ran <= min(booked, 2)
    assert (cores // booked) * ran <= max(machine, ran)  # concurrent torch threads


def test_each_grammars_runs_get_their_own_max_steps(tmp_path):
    """A per-grammar max_steps reaches each train job as one number, its grammar's."""
    configfile = tmp_path / "steps.yaml"
    configfile.write_text("training: {max_steps: {g1: 7, g3: 9}}\n")
    targets = [f"results/runs/{g}/examples/seed0/train_metrics.json" for g in ("g1", "g3")]
    proc = snakemake("-n", "-p", "-F", "--configfile", str(configfile), "--", *targets)
    assert proc.returncode == 0, proc.stderr
    steps = dict(re.findall(r"--corpus data/(g\d)/train\.jsonl.*?\"max_steps\": (\d+)",
                            proc.stdout))
    assert steps == {"g1": "7", "g3": "9"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("experiment={'grammars': ['g4']}", "g4"),
        ("training={'synthetic_mix_ratio': 2}", "synthetic_mix_ratio"),
        ("grammars={'g1': {'min_length': 9, 'max_length': 3}}", "min_length"),
        ("conditions={'x': {'design': 'poem', 'percent': 5}}", "poem"),
        ("model={'name': 'gpt-7'}", "model.name"),
        ("trainig={'max_steps': 3}", "trainig"),
    ],
)
def test_invalid_config_is_rejected_before_any_job(override, message):
    proc = snakemake("-n", "--config", override)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert "Job stats" not in proc.stdout


def _conditions(name: str) -> dict:
    return {"conditions": {name: {"design": "judge", "percent": 5}},
            "experiment": {"conditions": ["examples", name]}}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (_conditions("c+d"), "conditions.c+d: condition name 'c+d' must be letters, digits"),
        (_conditions("meta 10"), "conditions.meta 10: condition name 'meta 10' must be"),
        (_conditions("a/b"), "conditions.a/b: condition name 'a/b' must be"),
        ({"experiment": {"conditions": ["examples", "judge_5pct"]}},
         "experiment.conditions: 'judge_5pct' is not one of ['examples', 'meta_1pct'"),
        ({"model": {"tiny": {"num_heads": 3}}},
         "model.tiny.num_heads: 3 does not divide model.tiny.hidden_size (64)"),
        ({"canonical": {"source": "no/such/corpus.jsonl"}},
         "canonical.source: 'no/such/corpus.jsonl': no such file"),
        ({"grammars": {"g2": {"min_length": 3, "max_length": 3}}},
         "grammars.g2: min_length, max_length: g2: no even length in [3, 3]"),
        ({"alphabet": {"size": 44}},
         "alphabet.size: 44 is more symbols than the tokenizer of 'tiny-olmo' supplies"),
    ],
    ids=["plus", "space", "slash", "undefined", "heads", "corpus", "g2-odd", "alphabet"],
)
def test_bad_configfile_is_rejected_before_any_job_naming_the_key(tmp_path, config, message):
    configfile = tmp_path / "bad.yaml"
    configfile.write_text(yaml.safe_dump(config), encoding="utf-8")
    proc = snakemake("-n", "--configfile", str(configfile))
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert "Job stats" not in proc.stdout


@pytest.mark.parametrize("name", list(PRESETS))
def test_prepare_model_builds_each_preset_from_its_asset(name):
    """The workflow takes each preset's asset and memory request from the package."""
    preset = PRESETS[name]
    target = "results/runs/g1/examples/seed0/train_metrics.json"
    proc = snakemake(f"data/models/{name}", target, "-n", "-F", "-p",
                     "--config", f"model={{'name': '{name}'}}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "metaexamples prepare-model" in proc.stdout
    assert f"{preset.asset_flag} {preset.asset} --out-dir data/models/{name}" in proc.stdout
    train = proc.stdout.split("rule train:")[1].split("\n\n")[0]
    assert f"mem_mb={preset.memory.train_mb}" in train, train


@pytest.fixture
def bare_workdir(tmp_path):
    """A copy of the workflow files alone (no assets: for jobs that need none)."""
    import shutil

    for name in ("Snakefile", "config.yaml", "workflow", "envs", "profiles"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


@pytest.mark.slow
def test_local_corpus_is_an_input_and_a_failed_jobs_log_is_shown(bare_workdir):
    corpus = bare_workdir / "corpus.jsonl"
    corpus.write_text('{"text": "first document"}\n{not json\n', encoding="utf-8")
    (bare_workdir / "local.yaml").write_text(
        "canonical: {source: corpus.jsonl, heldout_documents: 1, min_chars: 1}\n")
    run = ("data/canonical/train.jsonl", "--cores", "1", "--configfile", "local.yaml")
    proc = snakemake(*run, "-n", cwd=bare_workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "input: corpus.jsonl" in proc.stdout.split("rule build_canonical:")[1]
    # the job fails; the default workflow profile prints its log, with the error in it
    proc = snakemake(*run, cwd=bare_workdir)
    assert proc.returncode != 0
    shown = proc.stdout + proc.stderr
    assert "Logfile logs/build_canonical.log:" in shown
    assert "corpus.jsonl:2: not valid JSON" in shown
    proc = snakemake(*run, "--workflow-profile", "none", cwd=bare_workdir)
    assert "corpus.jsonl:2: not valid JSON" not in proc.stdout + proc.stderr
    # a good corpus builds; editing it rebuilds
    corpus.write_text("".join(f'{{"text": "document {i}"}}\n' for i in range(4)))
    proc = snakemake(*run, cwd=bare_workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = snakemake(*run, "-n", cwd=bare_workdir)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    with corpus.open("a", encoding="utf-8") as fh:
        fh.write('{"text": "document 4"}\n')
    proc = snakemake(*run, "-n", cwd=bare_workdir)
    assert planned_jobs(proc.stdout) == {"build_canonical": 1}
    assert "Updated input files: corpus.jsonl" in proc.stdout


@pytest.fixture
def workdir(tmp_path, olmo_tokenizer_json, arrow_dir):
    """A copy of the workflow with the (already fetched) offline assets linked in."""
    import shutil

    for name in ("Snakefile", "config.yaml", "workflow", ".test", "envs", "profiles"):
        src = REPO / name
        copy = shutil.copytree if src.is_dir() else shutil.copy
        copy(src, tmp_path / name)
    (tmp_path / "data" / "assets").mkdir(parents=True)
    for asset in (olmo_tokenizer_json, arrow_dir):
        (tmp_path / "data" / "assets" / asset.name).symlink_to(asset)
    (tmp_path / "data" / "assets" / "neox_tokenizer.json").symlink_to(
        olmo_tokenizer_json.parent / "neox_tokenizer.json")
    return tmp_path


@pytest.mark.slow
def test_rebuilds_only_what_changed(workdir):
    targets = [f"data/{g}/manifest.json" for g in ("g1", "g2", "g3")]
    base = ("--configfile", ".test/config.yaml", "--cores", "2")
    # the links make fetch_olmo_assets look done; start from the canonical corpus
    proc = snakemake(*base, *targets, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # nothing changed: nothing to do
    proc = snakemake(*base, "-n", *targets, cwd=workdir)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout
    # one grammar's settings changed: only that grammar's data is rebuilt
    config = yaml.safe_load((workdir / ".test" / "config.yaml").read_text())
    config["grammars"]["g2"]["max_length"] = 8
    (workdir / "changed.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake("--configfile", "changed.yaml", "-n", *targets, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert planned_jobs(proc.stdout) == {"generate_data": 1}
    assert "wildcards: grammar=g2" in proc.stdout


@pytest.mark.slow
def test_three_seed_contrasts_agree_with_paired_differences_of_the_summary(workdir):
    """g1, examples and meta_10pct, 3 seeds of short training: every contrasts.csv row is
    the paired t over the seeds' differences recomputed from summary.csv."""
    from metaexamples import stats
    from metaexamples.grammar.contrasts import CONTRAST_METRICS

    (workdir / "three.yaml").write_text(yaml.safe_dump({
        "experiment": {"grammars": ["g1"], "seeds": [0, 1, 2]},
        "evaluation": {"exact_max_strings": 30}}))
    args = ("--configfile", ".test/config.yaml", "three.yaml", "--cores", "2")
    proc = snakemake(*args, "results/g1/contrasts.csv", cwd=workdir, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = pd.read_csv(workdir / "results/g1/summary.csv")
    table = pd.read_csv(workdir / "results/g1/contrasts.csv")
    assert set(table["scope"]) == {"condition"} and set(table["n"]) <= {3}
    assert {"excess_nll", "auroc", "curve_mean_excess_nll"} <= set(table["metric"])
    for row in table.itertuples():
        sign = 1.0 if CONTRAST_METRICS[row.metric] == "higher" else -1.0
        a = summary[summary["condition"] == row.condition].set_index("seed")[row.metric]
        b = summary[summary["condition"] == row.reference].set_index("seed")[row.metric]
        diffs = (sign * (a - b)).dropna()
        expected = stats.paired_t(diffs.to_numpy())
        assert row.n == len(diffs)
        assert row.estimate == pytest.approx(expected.interval.estimate, rel=1e-6, abs=1e-9)
        if len(diffs) >= 2 and np.isfinite(expected.interval.low):
            assert (row.ci_low, row.ci_high) == pytest.approx(
                (expected.interval.low, expected.interval.high), rel=1e-6, abs=1e-9)
            assert row.p_value == pytest.approx(expected.p_value, rel=1e-6, abs=1e-12)
    assert table["p_holm"].dropna().ge(table["p_value"].dropna()).all()
    # each seed's runs start from their own initialisation, shared by both conditions
    models = workdir / "data" / "models"
    weights = [(models / name / "model.safetensors").read_bytes()
               for name in ("tiny-olmo", "tiny-olmo.init1", "tiny-olmo.init2")]
    assert len(set(weights)) == 3
    config = (workdir / "results/runs/g1/meta_10pct/seed2/config.json").read_text()
    assert "tiny-olmo.init2" in config
