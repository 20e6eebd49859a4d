"""The real workflow through a real Slurm cluster (`scripts/slurm-single-node.sh up`).

One grammar's branch of the workflow (g1, two conditions, a few training steps: 13 jobs)
runs twice from copies of the checkout: once with `--profile` of a copy of
`slurm/config.yaml` in which only sizes changed, once locally. Every job of the Slurm run
must be an `sbatch` submission that `sacct` shows COMPLETED, one per planned job, and the
two `results/summary.csv` must be equal (timing columns aside).

Marked `slurm`; skipped, with the reason, where no cluster answers (`sinfo` missing, or no
idle node). `.ci/run` starts the cluster before the suite and stops it after.
"""

from __future__ import annotations

import collections
import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from metaexamples import assets

from ..conftest import ASSETS, REPO

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

BIN = str(Path(sys.executable).parent)
TARGET = "results/summary.csv"
# columns that measure time, not what was learnt
TIMING = re.compile(r"seconds|per_s$|_time")
# CPUs (= torch threads) of each torch job in both runs: 1, so that two jobs share the
# 2-core CI node at a time; equal thread counts keep the two runs' numbers identical
JOB_CPUS = 1


def cluster_problem() -> str | None:
    """Why no Slurm cluster can take jobs here (None when one can)."""
    if shutil.which("sinfo") is None or shutil.which("sacct") is None:
        return "no Slurm client on PATH (sinfo/sacct); start one: scripts/slurm-single-node.sh up"
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if proc.returncode != 0:
        return f"sinfo failed: {(proc.stderr or proc.stdout).strip()}"
    states = dict(line.split()[:2] for line in proc.stdout.splitlines() if line.strip())
    wanted = {"cpu", "gpu"}
    if not wanted <= {p.rstrip("*") for p in states}:
        return f"the cluster lacks partition(s) cpu and gpu (sinfo: {states})"
    if not any(s in ("idle", "mixed") for s in states.values()):
        return f"no idle node (sinfo: {states})"
    if subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True).returncode:
        return "sacct fails (no accounting storage: slurmdbd)"
    return None


def checkout_copy(root: Path) -> Path:
    """The files of a fresh clone (tracked plus not ignored), and the pinned OLMo wheel."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    wheel = assets.fetch_wheel(assets.OLMO_WHEEL, ASSETS / "wheels")
    (root / "data" / "assets" / "wheels").mkdir(parents=True)
    shutil.copy2(wheel, root / "data" / "assets" / "wheels" / wheel.name)  # not downloaded
    return root


def small_config(path: Path) -> Path:
    """The g1 branch at the sizes of .test/config.yaml: 2 runs of 8 steps."""
    cfg = yaml.safe_load((REPO / ".test" / "config.yaml").read_text(encoding="utf-8"))
    cfg["experiment"] = {"grammars": ["g1"], "conditions": ["examples", "meta_10pct"], "seeds": [0]}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def resized_slurm_profile(clone: Path, configfile: Path) -> str:
    """slurm/config.yaml with sizes for a 2-core node; every other setting is kept.

    Changed: the configfiles (the OLMo-1B ones need the hub; `configfile`), threads, CPUs
    per GPU, memory and runtime; the account (the cluster's, which also keeps the plugin
    from guessing one with a broken sacct call) and the first status check after 1 s
    instead of 40 (a job here takes seconds).
    """
    profile = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text(encoding="utf-8"))
    profile["configfile"] = [str(configfile)]
    profile["set-threads"] = {k: JOB_CPUS for k in profile["set-threads"]}
    profile["default-resources"] |= {"mem_mb": 1000, "runtime": 15, "slurm_account": "metaexamples"}
    for res in profile["set-resources"].values():
        for key in list(res):
            if key == "mem_mb":
                res[key] = 1000
            elif key == "runtime":
                res[key] = 15
            elif key.startswith("cpus_per_"):
                res[key] = JOB_CPUS
    profile["slurm-init-seconds-before-status-checks"] = 1
    (clone / "slurm-ci").mkdir()
    (clone / "slurm-ci" / "config.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    return "slurm-ci"


def run(cwd: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("METAEXAMPLES_", "CUDA_", "SNAKEMAKE_", "SLURM_"))
    }
    env["PATH"] = os.pathsep.join([BIN, "/usr/local/bin", "/usr/bin", "/bin"])
    return subprocess.run(
        ["snakemake", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def planned(output: str) -> collections.Counter:
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return collections.Counter(
        {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}
    )


def slurm_jobs(workdir: Path, since: str) -> list[dict[str, str]]:
    """Every Slurm job started from `workdir` since `since`: id, state, rule, partition."""
    fields = ["JobIDRaw", "State", "Comment", "Partition", "WorkDir", "AllocTRES"]
    proc = subprocess.run(
        ["sacct", "-X", "-P", "-n", "-a", "-S", since, "-o", ",".join(fields)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [
        dict(zip(fields, line.split("|"), strict=True))
        for line in proc.stdout.splitlines()
        if line.strip()
    ]
    return [r for r in rows if Path(r["WorkDir"]) == workdir]


def summary(clone: Path) -> pd.DataFrame:
    table = pd.read_csv(io.StringIO((clone / TARGET).read_text(encoding="utf-8")))
    return table.drop(columns=[c for c in table.columns if TIMING.search(c)])


def test_g1_branch_through_slurm_equals_a_local_run(tmp_path):
    problem = cluster_problem()
    if problem:
        pytest.skip(f"no Slurm cluster: {problem}")
    slurm_clone = checkout_copy(tmp_path / "slurm")
    local_clone = checkout_copy(tmp_path / "local")
    configfile = small_config(tmp_path / "g1.yaml")
    profile = resized_slurm_profile(slurm_clone, configfile)

    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 1))
    # the local reference runs beside the Slurm run (which mostly waits on the scheduler)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SNAKEMAKE_"))}
    env["PATH"] = os.pathsep.join([BIN, "/usr/bin", "/bin"])
    threads = [f"{rule}={JOB_CPUS}" for rule in ("train", "evaluate")]
    local = subprocess.Popen(
        [
            "snakemake",
            "--cores",
            "2",
            "--set-threads",
            *threads,
            "--configfile",
            str(configfile),
            "--",
            TARGET,
        ],
        cwd=local_clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        proc = run(slurm_clone, "--profile", profile, TARGET)
    finally:
        local_out, _ = local.communicate(timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert local.returncode == 0, local_out[-6000:]
    assert "Using profiles slurm-ci" in out

    # every planned job was an sbatch submission, and each one COMPLETED
    expected = planned(out)
    assert sum(expected.values()) == 13, expected
    jobs = slurm_jobs(slurm_clone, since)
    rules = collections.Counter(
        re.match(r"rule_(\w+?)(?:_wildcards_|$)", j["Comment"])[1] for j in jobs
    )
    assert rules == expected, (rules, expected, jobs)
    assert all(j["State"] == "COMPLETED" for j in jobs), jobs
    by_rule = collections.defaultdict(list)
    for j in jobs:
        by_rule[re.match(r"rule_(\w+?)(?:_wildcards_|$)", j["Comment"])[1]].append(j)
    # the profile's mapping reached Slurm: evaluation on the gpu partition with a GPU
    assert all(
        j["Partition"] == "gpu" and "gres/gpu=1" in j["AllocTRES"] for j in by_rule["evaluate"]
    ), by_rule["evaluate"]
    assert all(j["Partition"] == "gpu" for j in by_rule["train"])
    assert all(j["Partition"] == "cpu" for j in by_rule["generate_data"])

    # the same science as the local run
    pd.testing.assert_frame_equal(summary(slurm_clone), summary(local_clone))
