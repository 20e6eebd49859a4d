"""GPU leases on CPU: simulated devices, many concurrent processes, clear failures."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metaexamples.scale.gpu_lease import (
    ENV_COUNT,
    GpuLeaseError,
    NoGpuDriverError,
    check_gpu_budget,
    detect_gpu_count,
    device_pool,
    lease_gpus,
)


def fake_nvidia_smi(bindir: Path, gpus: int, exit_code: int = 0) -> Path:
    """An `nvidia-smi` stand-in that lists `gpus` devices (or fails with `exit_code`)."""
    bindir.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i:08d})\\n" for i in range(gpus))
    script = bindir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        + (f"echo 'NVIDIA-SMI has failed' >&2; exit {exit_code}\n" if exit_code else "")
        + f"printf '{lines}'\n", encoding="utf-8")
    script.chmod(0o755)
    return script


def no_driver_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has no nvidia-smi and no count override."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty)}


# -- counting -------------------------------------------------------------------------


def test_override_simulates_devices_without_a_driver(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere
    assert detect_gpu_count({ENV_COUNT: "4"}) == 4
    assert device_pool({ENV_COUNT: "3"}) == ["0", "1", "2"]
    assert device_pool({ENV_COUNT: "0"}) == []


def test_cuda_visible_devices_is_the_pool():
    assert device_pool({"CUDA_VISIBLE_DEVICES": "2, 3,GPU-abc"}) == ["2", "3", "GPU-abc"]
    assert device_pool({"CUDA_VISIBLE_DEVICES": ""}) == []


@pytest.mark.parametrize("bad", ["two", "-1", "1.5"])
def test_bad_override_is_a_clear_error(bad):
    with pytest.raises(GpuLeaseError, match=ENV_COUNT):
        detect_gpu_count({ENV_COUNT: bad})


def test_missing_nvidia_smi_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NoGpuDriverError) as err:
        detect_gpu_count({})
    message = str(err.value)
    assert "nvidia-smi" in message and "not on PATH" in message and ENV_COUNT in message


def test_nvidia_smi_is_counted_and_caps_the_override(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path / "bin", gpus=2)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert detect_gpu_count({}) == 2
    assert detect_gpu_count({ENV_COUNT: "1"}) == 1  # restricting is fine
    with pytest.raises(GpuLeaseError, match="claims more GPUs than this machine has"):
        detect_gpu_count({ENV_COUNT: "8"})


def test_failing_nvidia_smi_is_reported(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path / "bin", gpus=0, exit_code=9)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(GpuLeaseError, match="exit code 9: NVIDIA-SMI has failed"):
        detect_gpu_count({})
    assert detect_gpu_count({ENV_COUNT: "2"}) == 2  # a stated count is then trusted


# -- leasing in one process -----------------------------------------------------------


def test_lease_yields_distinct_ids_and_releases(tmp_path):
    with lease_gpus(2, tmp_path, total=3) as first:
        assert first == ["0", "1"]
        with lease_gpus(1, tmp_path, total=3, timeout=0) as second:
            assert second == ["2"]
        with lease_gpus(1, tmp_path, total=3, timeout=0) as again:
            assert again == ["2"]  # released on exit
    with lease_gpus(3, tmp_path, total=3, timeout=0) as everything:
        assert everything == ["0", "1", "2"]
    with lease_gpus(0, tmp_path, total=3) as none:
        assert none == []


def test_asking_for_more_than_exist_fails_at_once(tmp_path):
    start = time.monotonic()
    with pytest.raises(GpuLeaseError, match="asks for 3 GPUs but this machine has 2"):
        with lease_gpus(3, tmp_path, total=2, timeout=60):
            pass
    assert time.monotonic() - start < 1.0


def test_waiting_for_busy_gpus_times_out_naming_the_holder(tmp_path):
    with lease_gpus(2, tmp_path, total=2):
        start = time.monotonic()
        with pytest.raises(GpuLeaseError) as err:
            with lease_gpus(1, tmp_path, total=2, timeout=0.5):
                pass
        waited = time.monotonic() - start
    assert 0.4 < waited < 5
    assert "waited 0.5 s for 1 free GPU out of 2; busy: gpu 0 held by pid" in str(err.value)
    assert f"pid {os.getpid()}" in str(err.value)


def test_partial_lease_is_never_held(tmp_path):
    """A 2-GPU request with one device busy takes nothing (no half-held deadlock)."""
    with lease_gpus(1, tmp_path, total=2) as held:
        with pytest.raises(GpuLeaseError):
            with lease_gpus(2, tmp_path, total=2, timeout=0.3):
                pass
        other = "1" if held == ["0"] else "0"
        with lease_gpus(1, tmp_path, total=2, timeout=0) as free:
            assert free == [other]


# -- leasing across processes ---------------------------------------------------------


def _worker(args: tuple[str, int, int, int]) -> list[tuple[str, float, float]]:
    """Lease `n` of `total` devices `rounds` times; prove exclusivity with O_EXCL markers."""
    lock_dir, total, n, seed = args
    rng = random.Random(seed)
    marks = Path(lock_dir) / "held"
    spans = []
    for _ in range(3):
        with lease_gpus(n, lock_dir, total=total, timeout=60, poll_interval=0.01) as ids:
            assert len(ids) == n == len(set(ids))
            start = time.monotonic()
            for dev in ids:  # fails if anyone else marked this device as in use
                os.close(os.open(marks / dev, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            time.sleep(rng.uniform(0.005, 0.03))
            for dev in ids:
                os.unlink(marks / dev)
            end = time.monotonic()
        spans += [(dev, start, end) for dev in ids]
    return spans


def test_concurrent_processes_never_share_a_gpu(tmp_path):
    (tmp_path / "held").mkdir()
    total, jobs = 4, 12
    work = [(str(tmp_path), total, 1 + i % 3, i) for i in range(jobs)]  # ask 1, 2 or 3
    ctx = mp.get_context("spawn")  # separate interpreters, like Snakemake's jobs
    with ctx.Pool(6) as pool:
        results = pool.map_async(_worker, work).get(timeout=240)  # all finish
    spans = [s for r in results for s in r]
    assert len(spans) == 3 * sum(n for _, _, n, _ in work)
    by_dev: dict[str, list[tuple[float, float]]] = {}
    for dev, a, b in spans:
        by_dev.setdefault(dev, []).append((a, b))
    assert set(by_dev) <= {str(i) for i in range(total)}
    for dev, intervals in by_dev.items():
        intervals.sort()
        for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False):
            assert start >= end, f"gpu {dev} held twice at once"
    assert not list((tmp_path / "held").iterdir())


def test_a_killed_holder_frees_its_gpus(tmp_path):
    code = (
        "import os, sys\n"
        "from metaexamples.scale.gpu_lease import lease_gpus\n"
        "with lease_gpus(2, sys.argv[1], total=2) as ids:\n"
        "    print(','.join(ids), flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == "0,1" and proc.returncode == -9
    with lease_gpus(2, tmp_path, total=2, timeout=0) as ids:  # no stale lock left
        assert ids == ["0", "1"]


# -- the workflow's start-up budget check ---------------------------------------------


def test_budget_check_passes_when_everything_agrees():
    env = {ENV_COUNT: "4"}
    assert check_gpu_budget([0, 1, 1, 2], offered=4, env=env) == 4
    assert check_gpu_budget([0, 0], offered=None, env=env) is None  # no GPU jobs
    assert check_gpu_budget([8], offered=None, local=False, env=env) is None  # cluster


@pytest.mark.parametrize("requests, offered, message", [
    ([4], 4, "asks for 4 GPU\\(s\\) \\(training.gpus\\) but this machine has 2"),
    ([1], 8, "gpu=8 is offered .* but this machine has 2 GPU"),
    ([2], 1, "only gpu=1 is offered: Snakemake would silently shrink it"),
    ([1], None, "no `gpu` budget is offered.*--resources gpu=2"),
])
def test_budget_check_fails_clearly(requests, offered, message):
    with pytest.raises(GpuLeaseError, match=message):
        check_gpu_budget(requests, offered, env={ENV_COUNT: "2"})


def test_budget_check_without_driver_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GpuLeaseError, match="jobs ask for 1 GPU.*nvidia-smi.*not on PATH"):
        check_gpu_budget([1], offered=1, env={})
