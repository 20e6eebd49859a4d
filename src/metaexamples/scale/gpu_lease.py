"""Race-free GPU leases for jobs that share one machine.

Snakemake counts GPUs (`resources: gpu=N` against a global `--resources gpu=M`) but never
says *which* devices a job may use (snakemake issue 281). `lease_gpus` picks them: one lock
file per device id under a lock directory, taken with `flock` through `filelock`, so

- two jobs never hold the same device at once (the kernel arbitrates each lock file);
- a lease is all-or-nothing: a job that cannot get all n devices releases what it took
  and retries, so two multi-GPU jobs can never deadlock holding half each;
- a crashed job cannot leave a stale lease (the kernel drops `flock` locks with the process);
- asking for more devices than the machine has fails at once, and waiting for busy devices
  ends after `timeout` seconds with a message naming the holders.

The device pool is what CUDA would see: the ids in `CUDA_VISIBLE_DEVICES` when that is set,
else `0 .. count-1` where the count comes from `nvidia-smi -L` or the override
`METAEXAMPLES_GPU_COUNT` (tests simulate devices with it; on a real machine it may only
restrict, never exceed, what `nvidia-smi` lists).

Example (a simulated 2-device machine)::

    >>> import tempfile
    >>> with lease_gpus(1, tempfile.mkdtemp(), total=2) as ids:
    ...     ids
    ['0']
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from filelock import FileLock, Timeout

ENV_COUNT = "METAEXAMPLES_GPU_COUNT"
ENV_LOCK_DIR = "METAEXAMPLES_GPU_LOCK_DIR"
ENV_TIMEOUT = "METAEXAMPLES_GPU_LEASE_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
NVIDIA_SMI_TIMEOUT = 60.0


class GpuLeaseError(RuntimeError):
    """GPUs cannot be counted or leased; the message says why and what to do."""


class NoGpuDriverError(GpuLeaseError):
    """`nvidia-smi` is not installed and no count was given: a machine without GPUs."""


# -- counting -------------------------------------------------------------------------


def nvidia_smi_count(executable: str = "nvidia-smi", timeout: float = NVIDIA_SMI_TIMEOUT) -> int:
    """Number of GPUs `nvidia-smi -L` lists (one `GPU i: ...` line each)."""
    path = shutil.which(executable)
    if path is None:
        raise NoGpuDriverError(
            f"cannot count GPUs: '{executable}' is not on PATH (no NVIDIA driver here?). "
            f"Install the driver, or state the count with {ENV_COUNT}=N "
            "(N=0 when the machine has no GPU)."
        )
    try:
        proc = subprocess.run([path, "-L"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise GpuLeaseError(
            f"'{path} -L' did not answer within {timeout:.0f} s (driver hung?); "
            f"set {ENV_COUNT}=N to skip it"
        ) from err
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise GpuLeaseError(
            f"'{path} -L' failed with exit code {proc.returncode}: "
            f"{detail[0] if detail else 'no output'}; set {ENV_COUNT}=N to skip it"
        )
    return sum(1 for line in proc.stdout.splitlines() if re.match(r"GPU \d+:", line))


def detect_gpu_count(env: Mapping[str, str] | None = None, executable: str = "nvidia-smi") -> int:
    """GPUs on this machine: `METAEXAMPLES_GPU_COUNT` if set, else `nvidia-smi -L`.

    The override is checked against `nvidia-smi` when that answers: it may restrict the
    count, never exceed it (a claim of 8 GPUs on a 2-GPU machine fails here, clearly).
    """
    env = os.environ if env is None else env
    raw = env.get(ENV_COUNT, "").strip()
    if not raw:
        return nvidia_smi_count(executable)
    try:
        count = int(raw)
    except ValueError:
        count = -1
    if count < 0:
        raise GpuLeaseError(f"{ENV_COUNT}={raw!r}: expected a whole number >= 0")
    if shutil.which(executable) is not None:
        try:
            hardware = nvidia_smi_count(executable)
        except GpuLeaseError:  # a broken driver: the stated count is all there is to go on
            return count
        if count > hardware:
            raise GpuLeaseError(
                f"{ENV_COUNT}={count} claims more GPUs than this machine has "
                f"({executable} -L lists {hardware})"
            )
    return count


def device_pool(env: Mapping[str, str] | None = None, total: int | None = None) -> list[str]:
    """The device ids jobs may lease, as CUDA names them.

    `total` simulates a machine with that many devices (ids '0'..). Otherwise the ids in
    `CUDA_VISIBLE_DEVICES` when it is set (empty: no device), else `detect_gpu_count()`.
    """
    env = os.environ if env is None else env
    if total is not None:
        if total < 0:
            raise GpuLeaseError(f"total={total}: expected >= 0")
        return [str(i) for i in range(total)]
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [tok.strip() for tok in visible.split(",") if tok.strip()]
    return [str(i) for i in range(detect_gpu_count(env))]


def default_lock_dir(env: Mapping[str, str] | None = None) -> Path:
    """`METAEXAMPLES_GPU_LOCK_DIR`, else a per-user directory in the machine's temp dir.

    Machine-local on purpose: every workflow of the user on this machine shares the same
    leases, and `flock` is reliable on local filesystems (not always on NFS).
    Inside a Slurm allocation the directory is per job: Slurm numbers each job's devices
    from 0, so device '0' of two jobs on one node can be different GPUs.
    """
    env = os.environ if env is None else env
    if env.get(ENV_LOCK_DIR):
        return Path(env[ENV_LOCK_DIR])
    user = re.sub(r"[^A-Za-z0-9_.-]", "_", _user())
    root = Path(tempfile.gettempdir()) / f"metaexamples-gpu-locks-{user}"
    job = re.sub(r"[^A-Za-z0-9_.-]", "_", env.get("SLURM_JOB_ID", ""))
    return root / f"slurm-{job}" if job else root


def default_timeout(env: Mapping[str, str] | None = None) -> float:
    env = os.environ if env is None else env
    raw = env.get(ENV_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        return float(raw)
    except ValueError as err:
        raise GpuLeaseError(f"{ENV_TIMEOUT}={raw!r}: expected seconds") from err


# -- the workflow's budget -------------------------------------------------------------


def check_gpu_budget(
    requests: Iterable[int],
    offered: int | None,
    *,
    local: bool = True,
    env: Mapping[str, str] | None = None,
) -> int | None:
    """Fail before any job runs when the GPUs jobs ask for, offer and have disagree.

    `requests`: the `gpu` resource of each job about to run; `offered`: the workflow's global
    `gpu` resource (a profile's `resources:` or `--resources gpu=M`; None when not given);
    `local`: jobs run on this machine (on a cluster the scheduler allocates devices, so
    nothing here is checked). Snakemake itself silently shrinks a job's request to what is
    offered and never says which devices to use, so these checks run at start instead.

    Returns this machine's device count when GPU jobs will run locally, else None.
    (A budget cannot be added once the workflow has started, hence an error rather than
    a default when none is offered.)
    """
    need = max((int(r) for r in requests), default=0)
    if need <= 0 or not local:
        return None
    try:
        count = len(device_pool(env))
    except GpuLeaseError as err:
        raise GpuLeaseError(f"jobs ask for {need} GPU(s), but {err}") from err
    if need > count:
        raise GpuLeaseError(
            f"a job asks for {need} GPU(s) (training.gpus) but this machine has {count}: "
            "lower training.gpus or use a bigger machine"
        )
    if offered is None:
        raise GpuLeaseError(
            f"jobs ask for {need} GPU(s) but no `gpu` budget is offered, so Snakemake would "
            f"start them all at once: use --profile lambda, or add --resources gpu={count} "
            "(this machine's count)"
        )
    if offered > count:
        raise GpuLeaseError(
            f"gpu={offered} is offered (profile `resources:` or --resources) but this machine "
            f"has {count} GPU(s): Snakemake would start more GPU jobs than there are GPUs. "
            f"Offer gpu={count} or leave it out ({ENV_COUNT} overrides the count)"
        )
    if offered < need:
        raise GpuLeaseError(
            f"a job asks for {need} GPU(s) but only gpu={offered} is offered: Snakemake would "
            f"silently shrink it. Offer at least gpu={need} (this machine has {count})"
        )
    return count


# -- leasing --------------------------------------------------------------------------


@contextlib.contextmanager
def lease_gpus(
    n: int,
    lock_dir: str | os.PathLike[str] | None = None,
    total: int | None = None,
    timeout: float | None = None,
    *,
    devices: Sequence[str] | None = None,
    poll_interval: float = 0.2,
    env: Mapping[str, str] | None = None,
) -> Iterator[list[str]]:
    """Hold `n` distinct free device ids for the duration of the `with` block.

    `devices` (or `total`, a simulated count) gives the pool; default `device_pool()`.
    Raises `GpuLeaseError` at once when `n` exceeds the pool, and after `timeout` seconds
    (default `METAEXAMPLES_GPU_LEASE_TIMEOUT` or 300; 0 = one attempt) when too few are free.
    """
    if n < 0:
        raise GpuLeaseError(f"cannot lease {n} GPUs")
    if n == 0:
        yield []
        return
    pool = list(devices) if devices is not None else device_pool(env, total)
    if n > len(pool):
        raise GpuLeaseError(
            f"a job asks for {n} GPU{'s' if n > 1 else ''} but this machine has {len(pool)}"
            f"{' (' + ', '.join(pool) + ')' if pool else ''}: lower training.gpus, or run on a "
            "bigger machine"
        )
    lock_root = Path(lock_dir) if lock_dir is not None else default_lock_dir(env)
    lock_root.mkdir(parents=True, exist_ok=True)
    wait = default_timeout(env) if timeout is None else float(timeout)
    deadline = time.monotonic() + wait
    locks = {dev: FileLock(lock_root / f"gpu-{_slug(dev)}.lock", preserve_lock_file=True)
             for dev in pool}
    while True:
        held = _try_take(locks, n)
        if held:
            break
        if time.monotonic() >= deadline:
            raise GpuLeaseError(
                f"waited {wait:g} s for {n} free GPU{'s' if n > 1 else ''} out of "
                f"{len(pool)}; busy: {_describe_holders(lock_root, pool)}. Another job or "
                f"workflow holds them (locks in {lock_root}); raise {ENV_TIMEOUT} to wait longer"
            )
        time.sleep(poll_interval * (0.5 + random.random()))
    try:
        for dev in held:
            _write_owner(lock_root, dev)
        yield held
    finally:
        for dev in held:
            with contextlib.suppress(OSError):
                (lock_root / f"gpu-{_slug(dev)}.owner").unlink()
            locks[dev].release()


def _try_take(locks: dict[str, FileLock], n: int) -> list[str]:
    """All-or-nothing: n locks in pool order, or none held on return."""
    held: list[str] = []
    for dev, lock in locks.items():
        try:
            lock.acquire(blocking=False)
        except Timeout:
            continue
        held.append(dev)
        if len(held) == n:
            return held
    for dev in held:
        locks[dev].release()
    return []


def _write_owner(lock_root: Path, dev: str) -> None:
    owner = lock_root / f"gpu-{_slug(dev)}.owner"
    tmp = owner.with_suffix(f".owner.{os.getpid()}")
    tmp.write_text(f"pid {os.getpid()} on {socket.gethostname()} since "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n", encoding="utf-8")
    os.replace(tmp, owner)


def _describe_holders(lock_root: Path, pool: Sequence[str]) -> str:
    parts = []
    for dev in pool:
        owner = lock_root / f"gpu-{_slug(dev)}.owner"
        try:
            parts.append(f"gpu {dev} held by {owner.read_text(encoding='utf-8').strip()}")
        except OSError:
            parts.append(f"gpu {dev}")
    return "; ".join(parts)


def _slug(dev: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", dev)


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "user"
