"""Changing one rule's Slurm resources without losing the rest of the profile.

Snakemake (9.x) replaces a profile's whole `set-resources` block with one given on the
command line or in a later `--profile`, so `--set-resources train:slurm_partition=a100`
drops train's memory, runtime and CPUs and every other rule's settings. The documented
way is a copy of the profile directory; these tests hold Snakemake, the docs and the
messages to that.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from ..conftest import REPO
from .test_profiles import _rule_block, clone, require_slurm_plugin, snakemake

__all__ = ["clone"]  # the fixture, used by the tests below

# `--set-resources train:slurm_partition=a100`, `--set-resources RULE:KEY=VALUE`, ...
ONE_RULE_OVERRIDE = re.compile(r"--set-resources[\s=]+[`'\"]?[\w{}<>-]+:[\w{}<>-]+=")
WHERE_USERS_READ = [
    "README.md",
    "docs/*.md",
    "slurm/*.yaml",
    "lambda/*.yaml",
    "profiles/**/*.yaml",
    "src/**/*.py",
    "workflow/**/*.smk",
    "scripts/*",
    "Snakefile",
    "config/*.yaml",
]


def test_no_document_or_message_recommends_a_one_rule_set_resources_override():
    found = []
    for pattern in WHERE_USERS_READ:
        for path in sorted(REPO.glob(pattern)):
            if not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            # a sentence may wrap: look at the text with line breaks and comment marks folded
            folded = re.sub(r"\n\s*#?\s*", " ", text)
            found += [
                f"{path.relative_to(REPO)}: {m.group(0)}"
                for m in ONE_RULE_OVERRIDE.finditer(folded)
            ]
    assert not found, "these recommend an override that drops the profile's resources:\n" + (
        "\n".join(found)
    )


def test_each_slurm_job_runs_as_many_threads_as_cpus_it_books():
    profile = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text(encoding="utf-8"))
    for rule, res in profile["set-resources"].items():
        booked = res.get("cpus_per_gpu") or res.get("cpus_per_task")
        if booked is not None:
            assert profile["set-threads"].get(rule) == booked, (rule, booked)


def _copy_profile(clone: Path, name: str, edit) -> str:
    shutil.rmtree(clone / name, ignore_errors=True)
    shutil.copytree(clone / "slurm", clone / name)
    path = clone / name / "config.yaml"
    profile = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(profile)
    path.write_text(yaml.safe_dump(profile), encoding="utf-8")
    return name


def test_a_copied_profile_changes_one_rule_and_keeps_the_rest(clone):
    require_slurm_plugin()

    def a100(profile: dict) -> None:
        profile["set-resources"]["train"]["slurm_partition"] = "a100"

    name = _copy_profile(clone, "slurm-a100", a100)
    proc = snakemake(clone, "--profile", name, "-n", "results/summary.csv")
    assert proc.returncode == 0, proc.output[-4000:]
    train = _rule_block(proc.output, "train", "resources")
    for part in ("slurm_partition=a100", "gpu=1", "cpus_per_gpu=8", "mem_mb=64000", "runtime=360"):
        assert part in train, train
    evaluate = _rule_block(proc.output, "evaluate", "resources")
    for part in ("slurm_partition=gpu", "gpu=1", "cpus_per_gpu=4", "mem_mb=32000"):
        assert part in evaluate, evaluate
    # evaluation runs as many torch threads as it books CPUs
    assert "--threads 4" in _rule_block(proc.output, "evaluate", "Shell command")


def test_a_command_line_set_resources_drops_the_profiles_block(clone):
    """Why the docs say to copy the profile: the override replaces, it does not merge.

    Should Snakemake ever merge per rule, this fails, and docs/scale.md can say so.
    """
    require_slurm_plugin()
    proc = snakemake(
        clone,
        "--profile",
        "slurm",
        "-n",
        "--set-resources",
        "train:slurm_partition=a100",
        "--",
        "results/summary.csv",
    )
    assert proc.returncode == 0, proc.output[-4000:]
    train = _rule_block(proc.output, "train", "resources")
    assert "slurm_partition=a100" in train
    assert "cpus_per_gpu" not in train and "runtime=360" not in train, train
    evaluate = _rule_block(proc.output, "evaluate", "resources")
    assert "slurm_partition=cpu" in evaluate, evaluate
