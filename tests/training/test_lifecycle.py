"""What both entries read and write around the loop: texts, length limits, the CSV log."""

from __future__ import annotations

import pytest

from metaexamples.io import DataFileError, write_jsonl
from metaexamples.training.lifecycle import TrainingRun, history_csv, read_texts
from metaexamples.training.settings import RunSettings
from tests.conftest import TEST_ARCH


def test_history_csv_has_a_stable_column_order():
    rows = [{"val_loss": 2.0, "step": 0, "train_loss": None, "tokens": 0, "lr": 0.1},
            {"step": 5, "val_loss": 1.0, "train_loss": 1.5, "tokens": 50, "lr": 0.05}]
    lines = history_csv(rows).splitlines()
    assert lines == ["step,tokens,lr,train_loss,val_loss", "0,0,0.1,,2.0", "5,50,0.05,1.5,1.0"]


def test_read_texts_skips_invalid_rows_and_blank_lines(tmp_path):
    rows = tmp_path / "val.jsonl"
    write_jsonl(rows, [{"text": "<g1> ¡ </g1>", "valid": True}, {"text": "<g1> ¡", "valid": False},
                       {"text": "  "}])
    assert read_texts(rows) == ["<g1> ¡ </g1>", "<g1> ¡"]
    assert read_texts(rows, valid_only=True) == ["<g1> ¡ </g1>"]
    lines = tmp_path / "eval.txt"
    lines.write_text("first\n\n  second  \n", encoding="utf-8")
    assert read_texts(lines) == ["first", "second"]
    write_jsonl(rows, [{"text": "<g1> ¡", "valid": False}])
    with pytest.raises(DataFileError, match="no non-empty texts marked valid"):
        read_texts(rows, valid_only=True)


def test_a_sequence_longer_than_the_model_allows_is_named(tiny_model_dir):
    limit = TEST_ARCH.max_position_embeddings

    def settings(n: int | None) -> RunSettings:
        return RunSettings(max_steps=1, learning_rate=0.1, batch_size=1, adam_betas=(0.9, 0.95),
                           max_seq_length=n)

    assert TrainingRun(tiny_model_dir, settings(limit), 0).max_length == limit
    assert TrainingRun(tiny_model_dir, settings(None), 0).max_length == limit
    with pytest.raises(ValueError, match=rf"max_seq_length: {limit + 1} is above"):
        TrainingRun(tiny_model_dir, settings(limit + 1), 0)
