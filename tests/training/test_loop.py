"""The pure pieces of the shared loop: schedule and progress."""

from __future__ import annotations

import itertools
import json

import pytest

from metaexamples.training.loop import Progress, lr_at


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_at(s, max_lr=1.0, warmup_steps=4, max_steps=40, min_lr_ratio=0.1)
           for s in range(41)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in itertools.pairwise(lrs[3:]))
    assert lrs[40] == pytest.approx(0.1)
    assert min(lrs) >= 0.1 - 1e-12


def test_progress_round_trips_through_json():
    p = Progress(step=3, tokens=30, train_seconds=1.5, history=[{"step": 0, "val_loss": 2.0}])
    assert Progress.from_dict(json.loads(json.dumps(p.to_dict()))) == p
