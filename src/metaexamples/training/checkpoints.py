"""Resumable checkpoints of a training run (`lifecycle.TrainingRun`): save, verify, find the
latest.

``run_key`` hashes the resolved settings and the contents of every input (model directory
and data files), so a changed config or input never resumes stale state. A checkpoint is
`accelerator.save_state` (model, optimizer, LR scheduler, python / numpy / torch RNG
states) plus ``trainer_state.json`` (step, tokens seen, the eval history; the stream
position is ``step * gradient_accumulation_steps`` micro-batches, skipped with
`accelerator.skip_first_batches` on resume, because the stream is a pure function of the
seed) plus ``checksums.json`` (sha256 of every file). It is written to a temporary
directory and renamed into place, so a hard kill leaves either a complete checkpoint or
none. A checkpoint that fails verification on load is an error naming the file (not a
silent fall-back to an older one): the atomic write means it was damaged after the fact,
and the message says to delete it to resume from the previous checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.logging import get_logger

from metaexamples.io import DataFileError, as_write_error, dumps_json, read_json, sha256_file
from metaexamples.training.loop import Progress

log = get_logger(__name__)  # logs on the main process only

CHECKSUMS = "checksums.json"
TRAINER_STATE = "trainer_state.json"


class CheckpointError(RuntimeError):
    """A checkpoint is incomplete, truncated or corrupt."""


def path_digest(path: Path) -> str:
    """sha256 of a file, or of a directory's files (names and contents)."""
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        raise DataFileError(f"{path}: not found")
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def run_key(settings: Mapping[str, Any], digests: Mapping[str, str]) -> str:
    """Key of a run's checkpoints: its resolved settings and the contents of its inputs."""
    blob = dumps_json({"settings": settings, "inputs": dict(digests)})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_steps(root: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in root.glob("step-*")
             if p.is_dir() and (m := re.fullmatch(r"step-(\d+)", p.name))]
    return sorted(found)


def save_checkpoint(
    accelerator: Accelerator, root: Path, progress: Progress, keep: int = 2
) -> Path:
    """`save_state` + progress + checksums into a temporary dir, renamed to ``step-N``."""
    final = root / f"step-{progress.step}"
    tmp = root / f".step-{progress.step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (tmp / TRAINER_STATE).write_text(dumps_json(progress.to_dict()), encoding="utf-8")
            sums = {str(f.relative_to(tmp)): sha256_file(f)
                    for f in sorted(tmp.rglob("*")) if f.is_file()}
            (tmp / CHECKSUMS).write_text(dumps_json(sums), encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for _, old in checkpoint_steps(root)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
            log.info("checkpoint %s", final)
    except Exception as err:
        # a full disk mid-save: free what the partial checkpoint took and say where it was
        # (safetensors' own error names no file); the previous checkpoint stays the resume
        # point of the next run
        wrapped = as_write_error(err, tmp, operation="saving checkpoint")  # before freeing
        shutil.rmtree(tmp, ignore_errors=True)
        if wrapped is None or wrapped is err:
            raise
        raise wrapped from err
    accelerator.wait_for_everyone()
    return final


def verify_checkpoint(path: Path) -> Progress:
    """Check every file against ``checksums.json``; return the saved progress.

    Raises CheckpointError naming the damaged file.
    """
    advice = f"delete {path} to resume from the previous checkpoint (or from the start)"
    sums_file = path / CHECKSUMS
    if not sums_file.is_file():
        raise CheckpointError(f"{path}: incomplete checkpoint (no {CHECKSUMS}); {advice}")
    try:
        sums = json.loads(sums_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{sums_file}: unreadable ({err}); {advice}") from err
    if TRAINER_STATE not in sums:
        raise CheckpointError(f"{path}: checkpoint lists no {TRAINER_STATE}; {advice}")
    for name, digest in sums.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing from the checkpoint; {advice}")
        if sha256_file(f) != digest:
            raise CheckpointError(f"{f}: corrupt or truncated (sha256 mismatch); {advice}")
    return Progress.from_dict(read_json(path / TRAINER_STATE))


def latest_checkpoint(root: Path) -> tuple[Path, Progress] | None:
    """The newest ``step-N`` under `root`, verified; None when there is none."""
    steps = checkpoint_steps(root) if root.is_dir() else []
    if not steps:
        return None
    path = steps[-1][1]
    return path, verify_checkpoint(path)


def stale_temporaries(root: Path, min_age_s: float = 0.0, now: float | None = None) -> list[Path]:
    """Every ``<run key>/.step-N.tmp`` (or deeper, as a Nim run's ``models/.step-N.*.tmp``)
    under `root` last modified `min_age_s` or more ago.

    A save that was killed or hit a full disk leaves one; the trainer removes those of its
    own run key when it starts, but one under a key that never trains again (changed
    settings or inputs) would stay forever. A save in progress keeps touching its
    directory, so a minimum age keeps a running job's save out of the list.
    """
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    found = []
    for tmp in sorted(root.glob("*/**/.step-*.tmp")):
        if not tmp.is_dir():
            continue
        newest = max((f.stat().st_mtime for f in tmp.rglob("*")), default=tmp.stat().st_mtime)
        if now - max(newest, tmp.stat().st_mtime) >= min_age_s:
            found.append(tmp)
    return found


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
