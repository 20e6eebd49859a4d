"""A run's settings travel as JSON from the plan to the job and come back unchanged."""

from __future__ import annotations

import pytest

from metaexamples.training.settings import RunSettings


def test_run_settings_round_trip_and_reject_unknown_or_missing_keys():
    s = RunSettings(max_steps=3, learning_rate=0.1, batch_size=2, adam_betas=(0.9, 0.95),
                    max_seq_length=16)
    assert RunSettings.from_json(s.to_json()) == s
    with pytest.raises(ValueError, match=r"unknown keys \['max_step'\]"):
        RunSettings.from_dict({**s.to_dict(), "max_step": 3})
    with pytest.raises(ValueError, match="learning_rate"):
        RunSettings.from_dict({k: v for k, v in s.to_dict().items() if k != "learning_rate"})
    with pytest.raises(ValueError, match="not valid JSON"):
        RunSettings.from_json("{max_steps: 3}")
