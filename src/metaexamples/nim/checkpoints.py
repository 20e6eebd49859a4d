"""The checkpoints of one Nim training run, in step order, each evaluated once.

A run writes ``checkpoints/step-{N}/`` during training and ``final/`` at the end; ``final``
is often the last step's weights again, and is then not evaluated twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from metaexamples.io import read_json, sha256_file
from metaexamples.training.checkpoints import checkpoint_steps

log = logging.getLogger(__name__)

FINAL_NAME = "final"
STEP_FILES = (("metaexamples_model.json", "train_steps"), ("trainer_state.json", "global_step"))


@dataclass(frozen=True)
class Checkpoint:
    """A model directory and the optimizer step it was saved at."""

    step: int
    path: Path
    name: str


def _weight_files(path: Path) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((p.name, p.stat().st_size) for p in path.glob("*.safetensors")))


def _recorded_step(path: Path) -> int | None:
    """The step a checkpoint's metadata records: ``train_steps`` in the package's model
    marker, else ``global_step`` in a Hugging Face ``trainer_state.json``."""
    for name, key in STEP_FILES:
        data = None
        with contextlib.suppress(ValueError, OSError):
            data = read_json(path / name) if (path / name).is_file() else None
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _same_weights(a: Path, b: Path) -> bool:
    files_a, files_b = _weight_files(a), _weight_files(b)
    if not files_a or files_a != files_b:
        return False
    return all(sha256_file(a / name) == sha256_file(b / name) for name, _ in files_a)


def find_checkpoints(train_dir: str | os.PathLike[str]) -> list[Checkpoint]:
    """The checkpoints of a training run, sorted by step.

    ``checkpoints/step-{N}/`` directories give step N. ``final/`` is added unless it holds
    the same weights as the last step checkpoint; its step is the one a JSON file in it
    records (`_recorded_step`), else one past the last checkpoint's.
    """
    root = Path(train_dir)
    found = [
        Checkpoint(step, path, path.name) for step, path in checkpoint_steps(root / "checkpoints")
    ]
    final = root / FINAL_NAME
    if final.is_dir():
        last = found[-1] if found else None
        step = _recorded_step(final)
        if last is not None and (step == last.step or _same_weights(final, last.path)):
            log.info("%s: same as %s, not evaluated twice", final, last.name)
        else:
            if step is None:
                step = last.step + 1 if last is not None else 1
                log.warning("%s: no recorded step; evaluated as step %d", final, step)
            found.append(Checkpoint(step, final, FINAL_NAME))
            found.sort(key=lambda c: c.step)
    if not found:
        raise ValueError(f"{root}: no checkpoints (expected checkpoints/step-N/ or final/)")
    steps = [c.step for c in found]
    if len(set(steps)) != len(steps):
        raise ValueError(f"{root}: two checkpoints share a step: {steps}")
    return found
