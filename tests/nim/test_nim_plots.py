import pandas as pd
import pytest

from metaexamples.nim.plots import (
    accuracy_by_bucket,
    accuracy_by_max_remove,
    accuracy_by_name_pair,
    accuracy_by_residue,
    accuracy_table_long,
    plot_accuracy_by_bucket,
    plot_accuracy_by_max_remove,
    plot_accuracy_by_name_pair,
    plot_accuracy_by_residue,
    plot_accuracy_vs_step,
    plot_all,
    prediction_frame,
)


def pred(dataset, step, m, pile, correct, names=("A", "B"), bucket="cheat"):
    return {"dataset": dataset, "step": step, "max_remove": m, "pile": pile,
            "correct": correct, "names": list(names), "bucket": bucket}  # fmt: skip


ROWS = [
    pred("eval", 100, 3, 8, False),
    pred("eval", 200, 3, 8, True),  # residue 0
    pred("eval", 200, 3, 9, False, names=("C", "D"), bucket="neutral"),  # residue 1
    pred("eval", 200, 5, 13, True, names=("C", "D"), bucket="neutral"),  # residue 1
    pred("eval", 200, 5, 12, True),  # residue 0
    pred("eval_cheat", 200, 3, 10, True, bucket=None),  # residue 2
    pred("eval_cheat", 200, 3, 11, False),  # residue 3
]

TABLE = pd.DataFrame({"step": [200, 100], "eval": [0.75, 0.25], "eval_cheat": [0.5, 0.0]})


def records(frame, keys):
    return {tuple(r[k] for k in keys): (r["n"], r["correct"], r["accuracy"])
            for _, r in frame.iterrows()}  # fmt: skip


def test_accuracy_table_long():
    long = accuracy_table_long(TABLE)
    assert long.to_dict("records") == [
        {"step": 100, "dataset": "eval", "accuracy": 0.25},
        {"step": 200, "dataset": "eval", "accuracy": 0.75},
        {"step": 100, "dataset": "eval_cheat", "accuracy": 0.0},
        {"step": 200, "dataset": "eval_cheat", "accuracy": 0.5},
    ]
    by_checkpoint = pd.DataFrame({"checkpoint": ["checkpoint-100"], "eval": [0.5]})
    assert accuracy_table_long(by_checkpoint)["step"].tolist() == [100]


def test_accuracy_by_max_remove_uses_the_last_step():
    got = records(accuracy_by_max_remove(ROWS), ["dataset", "step", "max_remove"])
    assert got == {
        ("eval", 200, 3): (2, 1, 0.5),
        ("eval", 200, 5): (2, 2, 1.0),
        ("eval_cheat", 200, 3): (2, 1, 0.5),
    }
    every = records(accuracy_by_max_remove(ROWS, step=None), ["dataset", "step", "max_remove"])
    assert every[("eval", 100, 3)] == (1, 0, 0.0)
    assert records(accuracy_by_max_remove(ROWS, step=100), ["step", "max_remove"]) == {
        (100, 3): (1, 0, 0.0)
    }


def test_accuracy_by_residue():
    got = records(accuracy_by_residue(ROWS), ["dataset", "max_remove", "residue"])
    assert got == {
        ("eval", 3, 0): (1, 1, 1.0),
        ("eval", 3, 1): (1, 0, 0.0),
        ("eval", 5, 0): (1, 1, 1.0),
        ("eval", 5, 1): (1, 1, 1.0),
        ("eval_cheat", 3, 2): (1, 1, 1.0),
        ("eval_cheat", 3, 3): (1, 0, 0.0),
    }


def test_accuracy_by_bucket_and_name_pair():
    assert records(accuracy_by_bucket(ROWS), ["dataset", "bucket"]) == {
        ("eval", "cheat"): (2, 2, 1.0),
        ("eval", "neutral"): (2, 1, 0.5),
        ("eval_cheat", "cheat"): (1, 0, 0.0),
        ("eval_cheat", "none"): (1, 1, 1.0),
    }
    assert records(accuracy_by_name_pair(ROWS), ["dataset", "name_pair"]) == {
        ("eval", "A & B"): (2, 2, 1.0),
        ("eval", "C & D"): (2, 1, 0.5),
        ("eval_cheat", "A & B"): (2, 1, 0.5),
    }
    top = accuracy_by_name_pair(ROWS, top_k=1)
    assert set(top["name_pair"]) == {"A & B"}


def test_prediction_frame_validates():
    with pytest.raises(ValueError, match="correct"):
        prediction_frame([{"max_remove": 3, "pile": 4}])
    frame = prediction_frame([{"max_remove": 3, "pile": 6, "correct": 1}])
    assert frame.loc[0, "dataset"] == "all" and frame.loc[0, "residue"] == 2


def test_plots_are_written(tmp_path):
    paths = [
        plot_accuracy_vs_step(TABLE, tmp_path / "a" / "step.png"),
        plot_accuracy_by_max_remove(ROWS, tmp_path / "m.png"),
        plot_accuracy_by_residue(ROWS, tmp_path / "r.png"),
        plot_accuracy_by_bucket(ROWS, tmp_path / "b.png"),
        plot_accuracy_by_name_pair(ROWS, tmp_path / "n.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_plot_all_skips_what_the_rows_lack(tmp_path):
    plain = [{k: v for k, v in r.items() if k not in ("names", "bucket")} for r in ROWS]
    written = plot_all(plain, TABLE, tmp_path)
    assert sorted(p.name for p in written) == [
        "accuracy_by_max_remove.png", "accuracy_by_residue.png", "accuracy_vs_step.png",
    ]  # fmt: skip
    assert len(plot_all(ROWS, None, tmp_path / "all")) == 4
