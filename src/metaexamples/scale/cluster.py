"""Start-up checks and settings for running the workflow on GPU machines and clusters.

- `profile_gpu_resources()`: the `resources:` a profile offers on this machine, from the
  hardware (`nvidia-smi -L`) or `METAEXAMPLES_GPU_COUNT`; the `lambda` profile calls it
  (a YTE expression), so the GPU count never silently disagrees with the machine.
- `check_slurm_partitions()`: every `slurm_partition` the jobs name exists on the cluster,
  checked with `sinfo` before anything is submitted.

Nothing here imports Snakemake; `workflow/rules/scale.smk` passes plain values in.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping

from metaexamples.scale.gpu_lease import NoGpuDriverError, device_pool


class ClusterError(RuntimeError):
    """The cluster does not match what the profile asks for; the message says how."""


def profile_gpu_resources(env: Mapping[str, str] | None = None) -> dict[str, int]:
    """`{"gpu": count}` for this machine; `{}` (no GPU budget) where no driver is installed.

    A machine without `nvidia-smi` can still plan (`snakemake -n`); a real run of GPU jobs
    there stops at start (`gpu_lease.check_gpu_budget`). Any other problem — a count
    override above the hardware, a hung driver — fails here, when the profile is read.
    """
    try:
        return {"gpu": len(device_pool(env))}
    except NoGpuDriverError as err:
        print(f"metaexamples: no GPU budget offered ({err})", file=sys.stderr)
        return {}


def check_slurm_partitions(
    partitions: Iterable[str | None], sinfo: str = "sinfo", timeout: float = 60.0
) -> None:
    """Fail with the list of existing partitions when a job names one the cluster lacks."""
    wanted = sorted({str(p) for p in partitions if p})
    if not wanted:
        return
    path = shutil.which(sinfo)
    if path is None:
        raise ClusterError(
            f"the jobs name Slurm partition(s) {wanted} but '{sinfo}' is not on PATH: run "
            "the Slurm profile on the cluster's login node (or inside an allocation)"
        )
    try:
        proc = subprocess.run([path, "-h", "-o", "%P"], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise ClusterError(f"'{sinfo}' did not answer within {timeout:.0f} s") from err
    if proc.returncode != 0:
        raise ClusterError(f"'{sinfo} -h -o %P' failed: {(proc.stderr or proc.stdout).strip()}")
    existing = sorted({tok.rstrip("*") for tok in proc.stdout.split()})
    missing = [p for p in wanted if p not in existing]
    if missing:
        raise ClusterError(
            f"Slurm partition(s) {missing} do not exist on this cluster (it has {existing}). "
            "Set slurm_partition under default-resources / set-resources in slurm/config.yaml "
            "(or in a copy of the profile directory, run with --profile COPY; a command-line "
            "--set-resources would replace the profile's whole set-resources block)"
        )

