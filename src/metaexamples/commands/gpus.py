"""Lease GPUs for one command, then run it on them (`with-gpus --gpus N -- CMD ...`).

Picks N free device ids with a lock file per device (no two jobs share a GPU), sets
CUDA_VISIBLE_DEVICES before the command starts, runs it (under `accelerate launch` with N
processes when N > 1) and releases the devices when it exits. N = 0 hides all GPUs.
Fails at once when N exceeds the machine's GPUs, and after --timeout seconds when too
few are free. The GPU count comes from `nvidia-smi -L` or METAEXAMPLES_GPU_COUNT.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpus", type=int, required=True,
                        help="GPUs to lease (0: hide all GPUs; >1: accelerate launch)")
    parser.add_argument("--lock-dir", default=None,
                        help="directory of the per-device lock files (default: "
                             "$METAEXAMPLES_GPU_LOCK_DIR or a per-user dir in the temp dir, "
                             "shared by every workflow on this machine)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait for busy GPUs before failing (default: "
                             "$METAEXAMPLES_GPU_LEASE_TIMEOUT or 300; 0: one attempt)")
    parser.add_argument("--fsdp", action="store_true",
                        help="with --gpus > 1: shard the model with FSDP instead of DDP")
    parser.add_argument("--cpu", action="store_true",
                        help="lease ids as usual but run the processes on CPU (gloo); for "
                             "tests with a simulated METAEXAMPLES_GPU_COUNT")
    parser.add_argument("cmd", nargs=argparse.REMAINDER,
                        help="the command, after '--' (e.g. -- metaexamples train ...)")


def run(args: argparse.Namespace) -> None:
    from metaexamples.scale.launch import run_with_gpus

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    code = run_with_gpus(cmd, args.gpus, lock_dir=args.lock_dir, timeout=args.timeout,
                         cpu=args.cpu, fsdp=args.fsdp)
    if code:
        raise SystemExit(code)
