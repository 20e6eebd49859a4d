import json
import shutil

import pytest

from metaexamples.nim.checkpoints import find_checkpoints


def _fake_model(path, payload: bytes, steps: int | None = None):
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(payload)
    if steps is not None:
        (path / "metaexamples_model.json").write_text(json.dumps({"train_steps": steps}))


def test_find_checkpoints_sorts_by_step_and_dedupes_final(tmp_path):
    _fake_model(tmp_path / "checkpoints" / "step-10", b"ten", 10)
    _fake_model(tmp_path / "checkpoints" / "step-2", b"two", 2)
    (tmp_path / "checkpoints" / ".step-12.tmp").mkdir()  # an interrupted save: ignored
    _fake_model(tmp_path / "final", b"ten", 10)
    found = find_checkpoints(tmp_path)
    assert [(c.step, c.name) for c in found] == [(2, "step-2"), (10, "step-10")]

    shutil.rmtree(tmp_path / "final")
    _fake_model(tmp_path / "final", b"twelve", 12)
    assert [c.step for c in find_checkpoints(tmp_path)] == [2, 10, 12]

    shutil.rmtree(tmp_path / "final")
    _fake_model(tmp_path / "final", b"ten")  # no marker, same weights: a duplicate
    assert [c.step for c in find_checkpoints(tmp_path)] == [2, 10]

    shutil.rmtree(tmp_path / "final")
    _fake_model(tmp_path / "final", b"other")  # no marker, other weights: after the last
    assert [c.name for c in find_checkpoints(tmp_path)] == ["step-2", "step-10", "final"]


def test_find_checkpoints_needs_one(tmp_path):
    with pytest.raises(ValueError, match="no checkpoints"):
        find_checkpoints(tmp_path)
