"""Run a command on leased GPUs (`metaexamples with-gpus --gpus N -- CMD ...`), and check
that a multi-process launch formed one process group (`check_process_group`).

The wrapper leases N device ids (`gpu_lease.lease_gpus`), sets `CUDA_VISIBLE_DEVICES` in
the child's environment *before* the child starts, so CUDA initialises on exactly those
devices, runs the command, and releases the lease when it exits. N = 0 hides every GPU;
N = 1 runs the command as it is; N > 1 runs it under `accelerate launch` with N processes
(DDP, or FSDP with `fsdp=True`), which torchrun starts one per device.

`cpu=True` keeps the lease (device ids can be simulated with `METAEXAMPLES_GPU_COUNT`) but
runs the processes on CPU with the gloo backend: the tests exercise the multi-process path
this way on machines without a GPU.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from metaexamples.scale.gpu_lease import GpuLeaseError, lease_gpus

# FSDP settings for models too large for one device's memory: shard parameters, gradients
# and optimizer state; wrap each transformer block; gather a full state dict for saving.
FSDP_FLAGS = (
    "--use_fsdp",
    "--fsdp_sharding_strategy", "FULL_SHARD",
    "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP",
    "--fsdp_state_dict_type", "FULL_STATE_DICT",
    "--fsdp_use_orig_params", "true",
)


def accelerate_command(
    cmd: Sequence[str],
    processes: int,
    *,
    port: int,
    fsdp: bool = False,
    threads_per_process: int = 1,
) -> list[str]:
    """`accelerate launch` of `cmd` with one process per leased device on this machine.

    Every setting is passed explicitly so a user's `accelerate config` file cannot change
    the topology. `metaexamples ...` runs as `-m metaexamples.cli ...`; a `.py` file as a
    script; any other executable with `--no_python`.
    """
    if processes < 2:
        raise ValueError(f"accelerate launch needs at least 2 processes, got {processes}")
    if not cmd:
        raise ValueError("no command to launch")
    launch = [
        sys.executable, "-m", "accelerate.commands.launch",
        *(FSDP_FLAGS if fsdp else ("--multi_gpu",)),
        "--num_processes", str(processes),
        "--num_machines", "1",
        "--machine_rank", "0",
        "--main_process_port", str(port),
        "--num_cpu_threads_per_process", str(max(1, threads_per_process)),
        "--dynamo_backend", "no",
        "--mixed_precision", "no",  # only a default: the trainer passes its own precision
    ]
    program, *rest = cmd
    if Path(program).name == "metaexamples":
        return [*launch, "-m", "metaexamples.cli", *rest]
    if program.endswith(".py"):
        return [*launch, program, *rest]
    return [*launch, "--no_python", program, *rest]


def free_port() -> int:
    """A TCP port free right now, for the rendezvous of one multi-process job."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_with_gpus(
    cmd: Sequence[str],
    gpus: int,
    *,
    lock_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    cpu: bool = False,
    fsdp: bool = False,
    env: Mapping[str, str] | None = None,
) -> int:
    """Lease `gpus` devices, run `cmd` on them, release; returns the command's exit code."""
    if not cmd:
        raise GpuLeaseError("with-gpus: no command given (put it after '--')")
    if gpus < 0:
        raise GpuLeaseError(f"--gpus {gpus}: expected >= 0")
    child_env = dict(os.environ if env is None else env)
    if gpus == 0:
        child_env["CUDA_VISIBLE_DEVICES"] = ""  # the job asked for no GPU: hide them all
        return _run(list(cmd), child_env)
    with lease_gpus(gpus, lock_dir, timeout=timeout, env=child_env) as ids:
        child_env["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
        if cpu:
            child_env["ACCELERATE_USE_CPU"] = "true"
        full = list(cmd)
        if gpus > 1:
            threads = _threads(child_env)
            full = accelerate_command(cmd, gpus, port=free_port(), fsdp=fsdp,
                                      threads_per_process=max(1, threads // gpus))
        print(f"with-gpus: CUDA_VISIBLE_DEVICES={child_env['CUDA_VISIBLE_DEVICES']} "
              f"({'cpu simulation, ' if cpu else ''}{gpus} process"
              f"{'es' if gpus > 1 else ''})", file=sys.stderr, flush=True)
        return _run(full, child_env)


def _threads(env: Mapping[str, str]) -> int:
    with contextlib.suppress(ValueError):
        return int(env.get("OMP_NUM_THREADS", ""))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _run(cmd: list[str], env: dict[str, str]) -> int:
    """Run `cmd`, forwarding termination signals to it; the exit code (128+N if killed)."""
    proc = subprocess.Popen(cmd, env=env)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    handled = [s for s in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)) if s]
    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave handlers alone
        previous = {s: signal.signal(s, forward) for s in handled}
    try:
        code = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 - code if code < 0 else code


def launched_processes(env: Mapping[str, str]) -> int:
    """How many processes the launcher (torchrun, accelerate launch) started: WORLD_SIZE,
    or LOCAL_WORLD_SIZE on this machine if larger; 1 without a launcher."""
    counts = []
    for key in ("WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        value = env.get(key, "").strip()
        if not value:
            continue
        try:
            counts.append(int(value))
        except ValueError:
            raise ValueError(f"environment variable {key}={value!r} is not an integer") from None
    return max(counts, default=1)


def check_process_group(num_processes: int, distributed_type: str,
                        env: Mapping[str, str]) -> None:
    """Stop when a multi-process launch did not form one process group.

    Otherwise each process trains its own copy as "rank 0" and all of them write the same
    outputs: where CUDA is unavailable, accelerate falls back to a single-process state in
    each of the launched processes.
    """
    launched = launched_processes(env)
    if launched > 1 and num_processes != launched:
        raise RuntimeError(
            f"launched as {launched} processes (WORLD_SIZE={env.get('WORLD_SIZE')}, "
            f"LOCAL_WORLD_SIZE={env.get('LOCAL_WORLD_SIZE')}, RANK={env.get('RANK')}) but "
            f"accelerate sees {num_processes} ({distributed_type}): the processes did not "
            "form one process group and would train independent copies writing the same "
            "outputs. Without CUDA launch with --cpu (metaexamples with-gpus --cpu) or run "
            "one process."
        )
