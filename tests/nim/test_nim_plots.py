import pandas as pd
import pytest

from metaexamples import stats
from metaexamples.nim import plots
from metaexamples.nim.plots import (
    accuracy_by_bucket,
    accuracy_by_max_remove,
    accuracy_by_name_pair,
    accuracy_by_residue,
    accuracy_frame,
    mistakes_by_answer,
    plot_accuracy_by_bucket,
    plot_accuracy_by_max_remove,
    plot_accuracy_by_name_pair,
    plot_accuracy_by_residue,
    plot_accuracy_vs_step,
    plot_all,
    plot_mistakes_by_answer,
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

def accuracy_row(step, dataset, correct, n, majority):
    return {"step": step, "checkpoint": f"step-{step}", "dataset": dataset, "n": n,
            "exact_correct": correct, "exact_match": correct / n, "majority_rate": majority}


TABLE = pd.DataFrame([accuracy_row(200, "eval", 3, 4, 0.5), accuracy_row(100, "eval", 1, 4, 0.5),
                      accuracy_row(200, "eval_cheat", 1, 2, 0.5),
                      accuracy_row(100, "eval_cheat", 0, 2, 0.5)])


def records(frame, keys):
    return {tuple(r[k] for k in keys): (r["n"], r["correct"], r["accuracy"])
            for _, r in frame.iterrows()}  # fmt: skip


def test_accuracy_frame_sorts_and_names_what_is_missing():
    frame = accuracy_frame(TABLE)
    assert list(zip(frame["dataset"], frame["step"], strict=True)) == [
        ("eval", 100), ("eval", 200), ("eval_cheat", 100), ("eval_cheat", 200)]
    with pytest.raises(ValueError, match="majority_rate"):
        accuracy_frame(TABLE.drop(columns="majority_rate"))


def test_accuracy_vs_step_draws_intervals_the_majority_rate_and_the_chosen_step(
        monkeypatch, tmp_path):
    kept = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: kept.append(fig))
    plot_accuracy_vs_step(TABLE, tmp_path / "step.png", selected_step=200)
    (ax,) = kept[0].axes
    (eval_line, caps, (bars,)) = ax.containers[0].lines
    assert list(eval_line.get_ydata()) == [0.25, 0.75]
    wilson = stats.wilson_interval(3, 4)
    assert bars.get_segments()[1][:, 1].tolist() == pytest.approx([wilson.low, wilson.high])
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert [line.get_ydata()[0] for line in dashed] == [0.5, 0.5]
    dotted = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert dotted[0].get_xdata()[0] == 200
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["eval", "eval_cheat", "majority-answer rate (its colour)",
                      "chosen on val (step 200)"]


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
        plot_mistakes_by_answer(ANSWERED, tmp_path / "x.png", step=200),
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


def answered(row, gold, predicted):
    return {**row, "gold_label": gold, "predicted_label": predicted}


# ROWS with the answers: gold from the pile, a wrong answer where the row is incorrect
ANSWERED = [
    answered(ROWS[0], "lose", "1"),
    answered(ROWS[1], "lose", "lose"),
    answered(ROWS[2], "1", "3"),
    answered(ROWS[3], "1", "1"),
    answered(ROWS[4], "lose", "lose"),
    answered(ROWS[5], "2", "2"),
    answered(ROWS[6], "3", None),  # a generation that is none of the candidates
]


def test_mistakes_by_answer_counts_gold_by_generated_answer_at_the_step():
    frame = mistakes_by_answer(ANSWERED, step=200)
    got = {(r.dataset, r.gold_label, r.predicted_label): (r.n, r.correct)
           for r in frame.itertuples()}  # fmt: skip
    assert got == {
        ("eval", "1", "1"): (1, True),
        ("eval", "1", "3"): (1, False),
        ("eval", "lose", "lose"): (2, True),
        ("eval_cheat", "2", "2"): (1, True),
        ("eval_cheat", "3", "other"): (1, False),
    }
    assert list(mistakes_by_answer(ANSWERED, step=100)["predicted_label"]) == ["1"]
    with pytest.raises(ValueError, match="gold_label"):
        mistakes_by_answer(ROWS)


def test_plot_all_draws_the_mistakes_when_rows_carry_answers(tmp_path):
    names = sorted(p.name for p in plot_all(ANSWERED, TABLE, tmp_path, step=200))
    assert "mistakes_by_answer.png" in names and len(names) == 6


def test_breakdown_bars_carry_wilson_intervals_of_their_cells(monkeypatch, tmp_path):
    kept = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: kept.append(fig))
    plot_accuracy_by_max_remove(ROWS, tmp_path / "m.png")
    (ax,) = kept[0].axes
    eval_bars = next(c for c in ax.containers if c.get_label() == "eval")
    (whiskers,) = eval_bars.errorbar.lines[2]
    half = stats.wilson_interval(1, 2)  # max_remove 3 on eval: 1 of 2 right
    assert whiskers.get_segments()[0][:, 1].tolist() == pytest.approx([half.low, half.high])
    assert ax.get_legend().get_bbox_to_anchor().y0 > ax.bbox.y1  # above the bars
