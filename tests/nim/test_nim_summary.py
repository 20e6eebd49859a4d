import math

import pytest

from metaexamples.nim.experiments import resolve_experiment
from metaexamples.nim.generator import generate_experiment
from metaexamples.nim.summary import (
    ALL_SEEDS,
    SUMMARY_COLUMNS,
    across_seed_rows,
    leakage_document,
    seed_rows,
    select_step,
)
from metaexamples.stats import wilson_interval


def line(step, dataset, correct, n=10, rank=0.5, majority=0.3):
    return {"step": step, "checkpoint": f"step-{step}", "dataset": dataset, "n": n,
            "exact_correct": correct, "exact_match": correct / n, "answer_prefix_match": 0.9,
            "rank_accuracy": rank, "gold_probability": 0.3,
            "majority_rate": majority}  # fmt: skip


# eval is best at step 20, but validation chooses step 10: the eval set takes no part
TABLE = [
    line(0, "val", 2),
    line(10, "val", 8),
    line(20, "val", 6),
    line(0, "eval", 1),
    line(10, "eval", 7),
    line(20, "eval", 9, rank=0.9),
    line(0, "eval_cheat", 0),
    line(10, "eval_cheat", 10),
    line(20, "eval_cheat", 10),
]
LEAKAGE = {
    "passed": True,
    "train": {"n": 400, "name_label_mi_bits_excess": 0.01},
    "eval": {"eval": {"exact_overlap_fraction": 0.0, "pile_overlap_fraction": 0.5}},
}


def test_the_checkpoint_is_chosen_on_validation_not_on_the_eval_set():
    rows = seed_rows("exp", 3, TABLE, LEAKAGE)
    assert [r["dataset"] for r in rows] == ["eval", "eval_cheat"]  # val is not reported
    first, cheat = rows
    assert set(first) == set(SUMMARY_COLUMNS)
    assert (first["selected_step"], first["val_exact_match"], first["seed"]) == (10, 0.8, 3)
    assert first["exact_match"] == 0.7  # at step 10, not the eval-best 0.9 of step 20
    assert (first["final_step"], first["final_exact_match"]) == (20, 0.9)
    assert first["base_exact_match"] == 0.1
    expected = wilson_interval(7, 10)
    assert (first["exact_match_low"], first["exact_match_high"]) == (expected.low, expected.high)
    assert first["interval_method"] == "wilson"
    assert first["above_majority"] is bool(expected.low > 0.3)
    assert first["pile_overlap_fraction"] == 0.5 and first["n_train"] == 400
    assert first["leakage_passed"] is True and first["name_label_mi_bits_excess"] == 0.01
    assert cheat["exact_match"] == 1.0 and cheat["above_majority"] is True
    assert cheat["pile_overlap_fraction"] is None


def test_validation_ties_go_to_the_earlier_step_and_missing_validation_is_an_error():
    tied = [line(5, "val", 8), line(9, "val", 8)]
    assert select_step(tied)["step"] == 5
    with pytest.raises(ValueError, match="validation set 'val'"):
        select_step([line(5, "eval", 8)])


def test_across_seed_rows_use_a_t_interval_over_the_selected_exact_matches():
    runs = []
    for seed, correct in enumerate([6, 7, 8]):
        table = [line(10, "val", 9), line(10, "eval", correct, majority=0.25)]
        runs += seed_rows("exp", seed, table, LEAKAGE)
    (row,) = across_seed_rows(runs)
    assert (row["seed"], row["n_seeds"], row["interval_method"]) == (ALL_SEEDS, 3, "t")
    assert row["exact_match"] == pytest.approx(0.7)
    # mean 0.7, sd 0.1, t(0.975, 2) = 4.303: half-width 0.248
    assert row["exact_match_low"] == pytest.approx(0.7 - 0.2484, abs=1e-3)
    assert row["above_majority"] is True and row["majority_rate"] == 0.25
    (single,) = across_seed_rows(runs[:1])
    assert math.isnan(single["exact_match_low"]) and single["above_majority"] is None


@pytest.mark.parametrize(("name", "passed"), [("tiny", True), ("cheating", True)])
def test_leakage_document_on_generated_data(name, passed):
    exp = resolve_experiment(name, {"n_train": 300, "n_eval": 60, "n_val": 60})
    splits = generate_experiment(exp.settings)
    doc = leakage_document(exp, splits.pop("train"), splits)
    assert doc["passed"] is passed and doc["violations"] == []
    assert set(doc["eval"]) == set(exp.settings.heldout_set_names)
    assert doc["thresholds"]["max_names_only_advantage"] == exp.thresholds.max_names_only_advantage


def test_leakage_document_fails_on_a_planted_leak():
    exp = resolve_experiment("tiny", {"n_train": 50, "n_eval": 10})
    splits = generate_experiment(exp.settings)
    train = splits["train"] + splits["eval"][:3]  # three eval prompts leak into train
    doc = leakage_document(exp, train, {"eval": splits["eval"]})
    assert not doc["passed"]
    assert any("exact_overlap_fraction" in v for v in doc["violations"])
