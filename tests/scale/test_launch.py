"""`metaexamples with-gpus`: devices set before the command starts, accelerate for N > 1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metaexamples.scale.gpu_lease import lease_gpus
from metaexamples.scale.launch import FSDP_FLAGS, accelerate_command, check_process_group

BIN = str(Path(sys.executable).parent)
SHOW = "import os; print('CVD=' + os.environ['CUDA_VISIBLE_DEVICES'])"


def with_gpus(args: list[str], tmp_path: Path, count: str | None = "2", **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "METAEXAMPLES_"))}
    env |= {"PATH": BIN + os.pathsep + "/usr/bin:/bin",
            "METAEXAMPLES_GPU_LOCK_DIR": str(tmp_path / "locks")}
    if count is not None:
        env["METAEXAMPLES_GPU_COUNT"] = count
    return subprocess.run(["metaexamples", "with-gpus", *args], env=env, capture_output=True,
                          text=True, timeout=kw.get("timeout", 120))


def test_accelerate_command_runs_metaexamples_as_a_module():
    cmd = accelerate_command(["metaexamples", "train", "--seed", "1"], 4, port=29999)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert "--multi_gpu" in cmd and "--use_fsdp" not in cmd
    flags = dict(zip(cmd[3::1], cmd[4::1], strict=False))
    assert flags["--num_processes"] == "4" and flags["--num_machines"] == "1"
    assert flags["--main_process_port"] == "29999"
    assert cmd[-5:] == ["-m", "metaexamples.cli", "train", "--seed", "1"]


def test_accelerate_command_scripts_executables_and_fsdp():
    assert accelerate_command(["train.py", "-x"], 2, port=1)[-2:] == ["train.py", "-x"]
    assert accelerate_command(["/bin/echo", "hi"], 2, port=1)[-3:] == ["--no_python",
                                                                      "/bin/echo", "hi"]
    fsdp = accelerate_command(["metaexamples", "train"], 2, port=1, fsdp=True)
    assert "--multi_gpu" not in fsdp and all(f in fsdp for f in FSDP_FLAGS)
    with pytest.raises(ValueError, match="at least 2 processes"):
        accelerate_command(["metaexamples"], 1, port=1)


def test_one_gpu_is_set_before_the_command_starts(tmp_path):
    proc = with_gpus(["--gpus", "1", "--", sys.executable, "-c", SHOW], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "CVD=0"


def test_held_devices_are_skipped(tmp_path):
    with lease_gpus(1, tmp_path / "locks", total=2):  # device 0 busy in this process
        proc = with_gpus(["--gpus", "1", "--", sys.executable, "-c", SHOW], tmp_path)
    assert proc.stdout.strip() == "CVD=1", proc.stderr


def test_zero_gpus_hides_all_and_exit_code_passes_through(tmp_path):
    proc = with_gpus(["--gpus", "0", "--", "sh", "-c",
                      'echo "CVD=[$CUDA_VISIBLE_DEVICES]"; exit 7'], tmp_path, count=None)
    assert proc.returncode == 7
    assert proc.stdout.strip() == "CVD=[]"


def test_too_many_gpus_fail_at_once(tmp_path):
    start = time.monotonic()
    proc = with_gpus(["--gpus", "3", "--", "true"], tmp_path)
    assert proc.returncode == 1
    assert "asks for 3 GPUs but this machine has 2" in proc.stderr
    assert time.monotonic() - start < 30


def test_no_driver_fails_with_a_clear_message(tmp_path):
    proc = with_gpus(["--gpus", "1", "--", "true"], tmp_path, count=None)
    assert proc.returncode == 1
    assert "'nvidia-smi' is not on PATH" in proc.stderr
    assert "METAEXAMPLES_GPU_COUNT" in proc.stderr


def test_busy_gpus_time_out(tmp_path):
    with lease_gpus(2, tmp_path / "locks", total=2):
        proc = with_gpus(["--gpus", "1", "--timeout", "0.5", "--", "true"], tmp_path)
    assert proc.returncode == 1
    assert "waited 0.5 s for 1 free GPU out of 2" in proc.stderr


def test_two_processes_run_under_accelerate_with_gloo(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(
        "import os, sys, torch.distributed as dist\n"
        "from pathlib import Path\n"
        "from accelerate import Accelerator\n"
        "a = Accelerator()\n"
        "Path(sys.argv[1], f'rank{a.process_index}').write_text(\n"
        "    f\"{a.process_index}/{a.num_processes} {dist.get_backend()} \"\n"
        "    f\"{os.environ['CUDA_VISIBLE_DEVICES']}\")\n",
        encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    proc = with_gpus(["--gpus", "2", "--cpu", "--", str(script), str(out)], tmp_path,
                     timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = {p.name: p.read_text() for p in out.iterdir()}
    assert ranks == {"rank0": "0/2 gloo 0,1", "rank1": "1/2 gloo 0,1"}


def test_termination_reaches_the_command_and_frees_the_lease(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "METAEXAMPLES_"))}
    env |= {"PATH": BIN + os.pathsep + "/usr/bin:/bin", "METAEXAMPLES_GPU_COUNT": "1",
            "METAEXAMPLES_GPU_LOCK_DIR": str(tmp_path / "locks")}
    child = ("import signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
             "print('ready', flush=True)\n"
             "time.sleep(60)\n")
    proc = subprocess.Popen(["metaexamples", "with-gpus", "--gpus", "1", "--", sys.executable,
                             "-c", child], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 42  # the command saw SIGTERM and its code came back
    with lease_gpus(1, tmp_path / "locks", total=1, timeout=0) as ids:
        assert ids == ["0"]


def test_a_launch_that_did_not_form_one_process_group_stops():
    torchrun = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "RANK": "0"}
    with pytest.raises(RuntimeError, match=r"launched as 2 processes .* accelerate sees 1"):
        check_process_group(1, "NO", torchrun)
    check_process_group(2, "MULTI_GPU", torchrun)  # one group of two: fine
    check_process_group(1, "NO", {})  # no launcher: one process
    with pytest.raises(RuntimeError, match="launched as 4 processes"):  # 2 nodes x 2, 1 formed
        check_process_group(2, "MULTI_GPU", {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not an integer"):
        check_process_group(1, "NO", {"WORLD_SIZE": "two"})
