import math

import pytest

from metaexamples.nim.experiments import resolve_experiment
from metaexamples.nim.generator import generate_experiment
from metaexamples.nim.summary import SUMMARY_COLUMNS, leakage_document, summary_rows


def line(step, dataset, exact, rank=0.5, n=10):
    return {"step": step, "checkpoint": f"step-{step}", "dataset": dataset, "n": n,
            "exact_match": exact, "answer_prefix_match": exact, "rank_accuracy": rank,
            "gold_probability": 0.3}  # fmt: skip


TABLE = [line(0, "eval", 0.0), line(10, "eval", 0.8), line(20, "eval", 0.6, rank=0.9),
         line(10, "eval_cheat", 1.0), line(20, "eval_cheat", 1.0)]  # fmt: skip
LEAKAGE = {
    "passed": True,
    "train": {"n": 400, "name_label_mi_bits_excess": 0.01},
    "eval": {"eval": {"exact_overlap_fraction": 0.0, "pile_overlap_fraction": 0.5}},
}


def test_summary_rows_final_best_and_base():
    rows = summary_rows("exp", TABLE, LEAKAGE)
    assert [r["dataset"] for r in rows] == ["eval", "eval_cheat"]
    first, cheat = rows
    assert set(first) == set(SUMMARY_COLUMNS)
    assert (first["step"], first["exact_match"], first["rank_accuracy"]) == (20, 0.6, 0.9)
    assert (first["best_step"], first["best_exact_match"], first["base_exact_match"]) == (
        10, 0.8, 0.0
    )  # fmt: skip
    assert first["pile_overlap_fraction"] == 0.5 and first["n_train"] == 400
    assert first["leakage_passed"] is True and first["name_label_mi_bits_excess"] == 0.01
    assert cheat["best_step"] == 10  # ties go to the earlier step
    assert math.isnan(cheat["base_exact_match"]) and cheat["pile_overlap_fraction"] is None


@pytest.mark.parametrize(("name", "passed"), [("tiny", True), ("cheating", True)])
def test_leakage_document_on_generated_data(name, passed):
    exp = resolve_experiment(name, {"n_train": 300, "n_eval": 60})
    splits = generate_experiment(exp.settings)
    doc = leakage_document(exp, splits.pop("train"), splits)
    assert doc["passed"] is passed and doc["violations"] == []
    assert set(doc["eval"]) == set(exp.eval_sets)
    assert doc["thresholds"]["max_names_only_advantage"] == exp.thresholds.max_names_only_advantage


def test_leakage_document_fails_on_a_planted_leak():
    exp = resolve_experiment("tiny", {"n_train": 50, "n_eval": 10})
    splits = generate_experiment(exp.settings)
    train = splits["train"] + splits["eval"][:3]  # three eval prompts leak into train
    doc = leakage_document(exp, train, {"eval": splits["eval"]})
    assert not doc["passed"]
    assert any("exact_overlap_fraction" in v for v in doc["violations"])
