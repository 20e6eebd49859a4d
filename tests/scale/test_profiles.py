"""`snakemake --profile lambda` and `--profile slurm`, typed as is at the root of a fresh clone.

Every test runs the real `snakemake` command in a copy of the repository (the files a clone
would have: tracked plus not-ignored), with PATH holding only this Python's scripts, the
system's /usr/bin:/bin and, where a test says so, stand-ins for nvidia-smi, sinfo or conda.
Dry runs need no GPU and no Slurm cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..conftest import REPO

BIN = str(Path(sys.executable).parent)  # snakemake and metaexamples of this environment
OLMO = yaml.safe_load((REPO / "config" / "olmo1b.yaml").read_text(encoding="utf-8"))
NIM = yaml.safe_load((REPO / "config" / "nim_pythia410m.yaml").read_text(encoding="utf-8"))["nim"]
NIM_RUNS = (sum(1 for spec in NIM["experiments"].values() if spec is not False)
            * len(NIM["training"]["seeds"]))  # 9 original experiments x 3 seeds = 27
RUNS = (len(OLMO["experiment"]["grammars"]) * len(OLMO["experiment"]["conditions"])
        * len(OLMO["experiment"]["seeds"]))  # 3 x 8 x 3 = 72 fine-tuning runs
GRAMMARS = len(OLMO["experiment"]["grammars"])
# Jobs of the full matrix (target results/summary.csv): one training per run; evaluation of
# every run plus each grammar's untrained baseline and oracle.
MATRIX = {"train": RUNS, "evaluate": RUNS + 2 * GRAMMARS, "summarize_grammar": GRAMMARS,
          "summarize": 1, "generate_data": GRAMMARS, "prepare_model": 1}
# The default target adds the Nim branch (config/nim_pythia410m.yaml in the profiles), which
# fine-tunes its own (second) model.
DEFAULT_TARGET = MATRIX | {"prepare_model": 2, "plot_grammar": GRAMMARS, "nim_train": NIM_RUNS,
                           "nim_summarize": 1}


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    root = tmp_path_factory.mktemp("clone")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / name)
    return root


def stand_in(bindir: Path, name: str, body: str) -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return bindir


def nvidia_smi(bindir: Path, gpus: int) -> Path:
    lines = "".join(f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i:08d})\\n" for i in range(gpus))
    return stand_in(bindir, "nvidia-smi", f"printf '{lines}'\n")


def snakemake(cwd: Path, *args: str, extra_path: Path | None = None,
              env: dict[str, str] | None = None, timeout: int = 300):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("METAEXAMPLES_", "CUDA_", "SNAKEMAKE_", "SLURM_"))}
    path = [str(extra_path)] if extra_path else []
    base |= {"PATH": os.pathsep.join([*path, BIN, "/usr/bin", "/bin"]), **(env or {})}
    proc = subprocess.run(["snakemake", *args], cwd=cwd, env=base, capture_output=True,
                          text=True, timeout=timeout)
    proc.output = proc.stdout + proc.stderr  # type: ignore[attr-defined]
    return proc


def require_slurm_plugin() -> None:
    """The Slurm dry runs are part of the suite: a missing plugin fails, it is not skipped."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("snakemake-executor-plugin-slurm is not installed: pip install -e '.[slurm]'")


def planned_jobs(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[-1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m[1] != "total"}


def assert_olmo_matrix(proc, expected: dict[str, int] = DEFAULT_TARGET) -> dict[str, int]:
    assert proc.returncode == 0, proc.output[-4000:]
    assert re.search(r"Config file\(s\): .*config/olmo1b\.yaml", proc.output)
    assert "data/models/allenai--OLMo-1B-hf" in proc.output  # the model of the profile
    assert "hf:allenai/c4:en" in proc.output  # the canonical stream
    jobs = planned_jobs(proc.output)
    assert {rule: jobs.get(rule) for rule in expected} == expected, jobs
    return jobs


# -- lambda ---------------------------------------------------------------------------


def test_lambda_dry_run_plans_the_olmo_matrix_without_a_gpu(clone):
    proc = snakemake(clone, "--profile", "lambda", "-n")
    # the profile, and the default workflow profile (profiles/default) under it
    assert "Using profiles lambda and workflow specific profile profiles/default" in (
        proc.output)
    assert "no GPU budget offered" in proc.output  # no nvidia-smi here, and it says so
    assert_olmo_matrix(proc)


@pytest.mark.parametrize("profile", ["lambda", "slurm"])
def test_dry_run_plans_every_run_of_the_matrix(clone, profile):
    if profile == "slurm":
        require_slurm_plugin()
    proc = snakemake(clone, "--profile", profile, "-n", "results/summary.csv")
    jobs = assert_olmo_matrix(proc, MATRIX)
    assert not any(rule.startswith("nim_") for rule in jobs), jobs


def test_lambda_dry_run_on_a_gpu_machine(clone, tmp_path):
    proc = snakemake(clone, "--profile", "lambda", "-n", extra_path=nvidia_smi(tmp_path, 8))
    assert "no GPU budget offered" not in proc.output
    jobs = assert_olmo_matrix(proc)
    if "train" in jobs:
        assert re.search(r"rule train:(?:.|\n)*?resources: .*gpu=1", proc.output)


def test_lambda_profile_takes_the_gpu_count_from_the_machine(clone, tmp_path, monkeypatch):
    from snakemake.profiles import ProfileConfigFileParser

    def rendered(path: Path) -> dict:
        with open(path, encoding="utf-8") as fh:
            return dict(ProfileConfigFileParser().parse(fh))

    profile = clone / "lambda" / "config.yaml"
    monkeypatch.delenv("METAEXAMPLES_GPU_COUNT", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(nvidia_smi(tmp_path / "a", 4)))
    settings = rendered(profile)
    assert settings["resources"] == ["gpu=4"]
    assert settings["configfile"] == ["config/olmo1b.yaml", "config/nim_pythia410m.yaml"]
    for key in ("rerun-incomplete", "keep-going", "retries", "printshellcmds"):
        assert key in settings
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # restricted by the user: 2 usable
    assert rendered(profile)["resources"] == ["gpu=2"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no driver: no budget at all
    assert "resources" not in rendered(profile)


def test_lambda_count_override_above_the_hardware_fails_at_start(clone, tmp_path):
    proc = snakemake(clone, "--profile", "lambda", "-n", extra_path=nvidia_smi(tmp_path, 2),
                     env={"METAEXAMPLES_GPU_COUNT": "8"})
    assert proc.returncode != 0
    assert "METAEXAMPLES_GPU_COUNT=8 claims more GPUs than this machine has" in proc.output
    assert "Job stats" not in proc.output


# Real (not dry) runs below: the start-up check must stop them before the first job.
# `--set-resources generate_data:gpu=1` guarantees a GPU job in the plan whatever stage
# the workflow is at; the `train` rule asks for training.gpus = 1 itself.


def require_scale_checks(clone: Path) -> None:
    """Fail fast (rather than run real jobs) when the start-up checks are not wired in."""
    if 'include: "workflow/rules/scale.smk"' not in (clone / "Snakefile").read_text():
        pytest.fail("the Snakefile must include workflow/rules/scale.smk (start-up checks)")


def test_profile_offering_more_gpus_than_exist_fails_clearly(clone, tmp_path):
    require_scale_checks(clone)
    big = clone / "bigbox"
    big.mkdir(exist_ok=True)
    (big / "config.yaml").write_text(
        "configfile: config/olmo1b.yaml\ncores: 2\nresources:\n  gpu: 8\n", encoding="utf-8")
    proc = snakemake(clone, "--profile", "bigbox", "--set-resources", "generate_data:gpu=1",
                     env={"METAEXAMPLES_GPU_COUNT": "2"}, timeout=120)
    assert proc.returncode != 0
    assert "start-up check failed: gpu=8 is offered" in proc.output
    assert "this machine has 2 GPU(s)" in proc.output
    assert not (clone / "data" / "canonical").exists()  # no job ran


def test_lambda_without_nvidia_smi_fails_clearly_at_start(clone):
    require_scale_checks(clone)
    proc = snakemake(clone, "--profile", "lambda", "--set-resources", "generate_data:gpu=1",
                     timeout=120)
    assert proc.returncode != 0
    assert "start-up check failed: jobs ask for 1 GPU(s)" in proc.output
    assert "'nvidia-smi' is not on PATH" in proc.output
    assert not (clone / "data" / "canonical").exists()


# -- slurm ----------------------------------------------------------------------------


def test_slurm_dry_run_plans_the_olmo_matrix_without_a_cluster(clone):
    require_slurm_plugin()
    proc = snakemake(clone, "--profile", "slurm", "-n")
    # the profile, and the default workflow profile (profiles/default) under it
    assert "Using profiles slurm and workflow specific profile profiles/default" in (
        proc.output)
    assert_olmo_matrix(proc)
    assert "slurm_partition=cpu" in proc.output
    assert re.search(r"rule build_canonical:(?:.|\n)*?resources: .*runtime=240", proc.output)


def _rule_block(output: str, rule: str, field: str) -> str:
    return re.search(rf"rule {rule}:(?:.|\n)*?{field}: (.*)", output)[1]


def test_slurm_profile_gives_each_rule_its_resources(clone):
    require_slurm_plugin()
    proc = snakemake(clone, "--profile", "slurm", "-n", "results/summary.csv")
    assert proc.returncode == 0, proc.output[-4000:]
    train = _rule_block(proc.output, "train", "resources")
    for part in ("gpu=1", "slurm_partition=gpu", "cpus_per_gpu=8", "mem_mb=64000",
                 "runtime=360"):
        assert part in train, train
    shell = _rule_block(proc.output, "train", "Shell command")
    assert "with-gpus --gpus 1 -- metaexamples train" in shell
    assert "--threads 8" in shell  # set-threads, not the 1 Snakemake gives without cores
    res = _rule_block(proc.output, "evaluate", "resources")
    assert "gpu=1" in res and "slurm_partition=gpu" in res, res
    assert "slurm_partition=cpu" in _rule_block(proc.output, "summarize_grammar", "resources")


def test_slurm_partition_that_does_not_exist_fails_at_start(clone, tmp_path):
    require_slurm_plugin()
    require_scale_checks(clone)
    fake = stand_in(tmp_path, "sinfo", "printf 'cpu*\\ngpu\\n'\n")
    for tool in ("sbatch", "squeue", "sacct", "scontrol"):  # present, never needed here
        stand_in(fake, tool, f"echo '{tool} must not be called' >&2; exit 1\n")
    proc = snakemake(clone, "--profile", "slurm", "--set-resources",
                     "generate_data:slurm_partition=a100", extra_path=fake, timeout=120)
    assert proc.returncode != 0
    assert "start-up check failed: Slurm partition(s) ['a100'] do not exist" in proc.output
    assert "['cpu', 'gpu']" in proc.output
    assert "sbatch must not be called" not in proc.output
    assert not (clone / "data" / "canonical").exists()


# -- conda ----------------------------------------------------------------------------


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pins(lines: list[str]) -> dict[str, Version]:
    """{normalised name: version} of `name==version` lines (others are not pins)."""
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(r.name): Version(next(iter(r.specifier)).version)
            for r in reqs if len(r.specifier) == 1 and next(iter(r.specifier)).operator == "=="}


CONSTRAINTS = (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()


def test_constraints_pin_every_requirement_within_its_range():
    pins = _pins(CONSTRAINTS)
    assert len(pins) == sum(1 for line in CONSTRAINTS if line and not line.startswith("#"))
    project = _project()
    extras = [r for reqs in project["optional-dependencies"].values() for r in reqs]
    for line in (*project["dependencies"], *extras):
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt does not pin {name}"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {req}"
    assert pins["torch"] == Version("2.13.0")


def test_the_installed_versions_are_the_pinned_ones():
    """What the suite runs on is what constraints.txt installs (the hub extra aside)."""
    wrong = {}
    for name, pinned in _pins(CONSTRAINTS).items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue
        if installed.public != pinned.public:  # 2.13.0+cpu is torch 2.13.0
            wrong[name] = f"{installed} installed, {pinned} pinned"
    assert not wrong, wrong


def test_conda_env_pins_the_same_versions_as_constraints():
    env = yaml.safe_load((REPO / "envs" / "metaexamples.yaml").read_text(encoding="utf-8"))
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    pinned = _pins(pip)
    assert len(pinned) == len(pip), f"unpinned in envs/metaexamples.yaml: {pip}"
    constraints = _pins(CONSTRAINTS)
    assert {n: v for n, v in pinned.items() if constraints.get(n) != v} == {}
    needed = {canonicalize_name(Requirement(r).name)
              for r in (*_project()["dependencies"], *_project()["optional-dependencies"]["hub"])}
    assert needed <= set(pinned), f"envs/metaexamples.yaml lacks {sorted(needed - set(pinned))}"
    deploy = REPO / "envs" / "metaexamples.post-deploy.sh"
    assert os.access(deploy, os.X_OK)
    assert "pip install --no-deps --no-build-isolation -e ." in deploy.read_text()


CONDA_STAND_IN = """\
case "$*" in
  "info --json") echo '{"conda_prefix": "%(prefix)s", "platform": "linux-64"}' ;;
  "--version") echo "conda 24.11.3" ;;
  "config --get channel_priority --json") echo '{"get": {"channel_priority": "strict"}}' ;;
  *) echo "conda stand-in: '$*' is for dry runs only" >&2; exit 1 ;;
esac
"""


def test_sdm_conda_dry_run(clone, tmp_path):
    """`snakemake --sdm conda -n` plans with the environment; a dry run builds nothing, so
    a stand-in answers conda's three queries where conda itself is not installed."""
    extra = None
    if shutil.which("conda") is None:
        extra = stand_in(tmp_path, "conda", CONDA_STAND_IN % {"prefix": tmp_path / "prefix"})
    proc = snakemake(clone, "--sdm", "conda", "-n", "--cores", "2", extra_path=extra)
    assert proc.returncode == 0, proc.output[-4000:]
    uses_conda = any("conda:" in p.read_text() for p in (clone / "workflow").rglob("*.smk"))
    if uses_conda:
        assert "envs/metaexamples.yaml" in proc.output
    # the same environment file, used by a rule, is accepted as it is
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "Snakefile").write_text(
        f'rule a:\n    output: "a.txt"\n    conda: "{clone}/envs/metaexamples.yaml"\n'
        '    shell: "metaexamples --help > {output}"\n', encoding="utf-8")
    proc = snakemake(tmp_path / "wf", "--sdm", "conda", "-n", "--cores", "1", extra_path=extra)
    assert proc.returncode == 0, proc.output[-4000:]
    assert re.search(r"Conda environment .*envs/metaexamples\.yaml will be created", proc.output)
