import math
import random

import pytest

from metaexamples.nim.experiments import resolve_experiment
from metaexamples.nim.generator import generate_experiment
from metaexamples.nim.leakage import (
    LeakageThresholds,
    leakage_gate,
    leakage_report,
    mutual_information_bits,
    names_only_accuracy,
    normalise_numbers,
)
from metaexamples.nim.settings import PRESETS, NimSettings
from metaexamples.nim.summary import leakage_document


def row(prompt, pile, label_move, names=("A", "B")):
    return {"prompt": prompt, "pile": pile, "label_move": label_move, "names": list(names)}


def test_mutual_information_exact_values():
    assert mutual_information_bits(["a", "a", "b", "b"], [1, 1, 2, 2]) == pytest.approx(1.0)
    assert mutual_information_bits(["a", "b", "a", "b"], [1, 1, 2, 2]) == pytest.approx(0.0)
    xs = ["a"] * 4 + ["b"] * 4
    ys = [1, 1, 1, 2, 2, 2, 2, 1]  # P(y | a) = 3/4, 1/4
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert mutual_information_bits(xs, ys) == pytest.approx(1 - h)


def test_normalise_numbers():
    assert normalise_numbers("There are 17 coins. Leo takes 3.") == (
        "There are <N> coins. Leo takes <N>."
    )


def test_names_only_classifier_exact():
    train = [row("p", 1, 1, ("A", "B"))] * 3 + [row("p", 1, 2, ("C", "D"))] * 2
    train += [row("p", 1, 2, ("A", "B"))]
    evals = [row("q", 1, 1, ("A", "B")), row("q", 1, 2, ("C", "D")), row("q", 1, 2, ("E", "F"))]
    out = names_only_accuracy(train, evals)
    # rule: AB -> 1, CD -> 2, unseen -> overall majority (1 and 2 tie at 3: "1" wins)
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert out["majority_baseline_accuracy"] == pytest.approx(1 / 3)
    assert out["advantage"] == pytest.approx(1 / 3)
    assert out["pair_coverage"] == pytest.approx(2 / 3)
    # paired differences +1, 0, 0: mean 1/3, sample sd sqrt(1/3), n = 3
    assert out["advantage_lower"] == pytest.approx(1 / 3 - 1.96 * math.sqrt(1 / 3 / 3))


def test_planted_duplicate_prompts_and_shared_piles_are_caught():
    train = [row(f"There are {p} coins.", p, p % 4 or None) for p in range(1, 41)]
    evals = [row("There are 5 coins.", 5, 1), row("There are 99 coins.", 99, 3)]
    evals += [row("Totally new 7", 7, 3), row("Totally new 8", 200, None)]
    report = leakage_report(train, {"eval": evals})
    e = report["eval"]["eval"]
    assert (e["exact_overlap_count"], e["exact_overlap_fraction"]) == (1, 0.25)
    assert (e["normalised_overlap_count"], e["normalised_overlap_fraction"]) == (2, 0.5)
    assert (e["pile_overlap_count"], e["pile_overlap_fraction"]) == (2, 0.5)
    violations = leakage_gate(report, {"max_pile_overlap_fraction": 0.0})
    assert any("eval: exact_overlap_fraction" in v for v in violations)
    assert any("eval: pile_overlap_fraction" in v for v in violations)
    assert not any("normalised" in v for v in violations)  # not gated by default


def test_planted_name_label_shortcut_is_caught():
    rng = random.Random(0)
    pairs = [(f"N{i}", f"M{i}") for i in range(10)]
    labels = [1, 2, 3, None]

    def rows(n, tied):
        out = []
        for k in range(n):
            label = rng.choice(labels)
            pair = pairs[labels.index(label)] if tied else rng.choice(pairs)
            out.append(row(f"prompt {k} {rng.random()}", 1000 + k, label, pair))
        return out

    leaky = leakage_report(rows(800, tied=True), {"eval": rows(200, tied=True)})
    assert leaky["train"]["name_label_mi_bits_excess"] > 1.5
    assert leaky["eval"]["eval"]["names_only_accuracy"] == 1.0
    violations = leakage_gate(leaky)
    assert any(v.startswith("train: name_label_mi_bits_excess") for v in violations)
    assert any(v.startswith("eval: names_only_advantage_lower") for v in violations)

    clean = leakage_report(rows(800, tied=False), {"eval": rows(200, tied=False)})
    assert clean["train"]["name_label_mi_bits"] > 0  # plug-in bias
    assert abs(clean["train"]["name_label_mi_bits_excess"]) < 0.05
    assert leakage_gate(clean) == []


def test_generated_clean_data_passes_the_gate():
    pile_split = {"max_remove": [3], "pile_max": 60, "n_train": 400, "n_eval": 100,
                  "split": "pile"}  # fmt: skip
    splits = generate_experiment(NimSettings.from_dict(pile_split))
    report = leakage_report(splits["train"], {"eval": splits["eval"]})
    strict = LeakageThresholds(max_pile_overlap_fraction=0.0)
    assert leakage_gate(report, strict) == []
    assert report["eval"]["eval"]["pile_overlap_fraction"] == 0.0


def test_generated_cheat_data_fails_the_gate_and_random_names_pass():
    base = dict(max_remove=[4], name_source="random", n_name_pairs=20, n_train=1500,
                n_eval=300, masked_mentions=4, trace_min=4, trace_max=4)  # fmt: skip
    cheat = generate_experiment(
        NimSettings.from_dict({**base, "cheat_fraction": 0.5, "cheat_probability": 0.9})
    )
    report = leakage_report(cheat["train"], {k: v for k, v in cheat.items() if k != "train"})
    assert report["eval"]["eval_cheat"]["names_only_accuracy"] == 1.0
    assert report["eval"]["eval_counter_cheat"]["names_only_accuracy"] == 0.0
    assert report["eval"]["eval_neutral"]["name_pair_coverage"] == 0.0
    assert leakage_gate(report)
    fair = generate_experiment(NimSettings.from_dict(base))
    assert leakage_gate(leakage_report(fair["train"], {"eval": fair["eval"]})) == []


def test_rows_without_names_skip_name_metrics():
    train = [{"prompt": "a 1", "pile": 1, "label_move": 1}]
    report = leakage_report(train, {"eval": [{"prompt": "b 2", "pile": 2, "label_move": None}]})
    assert report["train"]["name_label_mi_bits"] is None
    assert report["eval"]["eval"]["names_only_accuracy"] is None
    assert leakage_gate(report) == []


def test_thresholds_validation():
    with pytest.raises(ValueError, match="max_pile_overlap_fraction"):
        LeakageThresholds(max_pile_overlap_fraction=-1)
    with pytest.raises(ValueError, match="max_overlap"):
        leakage_gate({"train": {}, "eval": {}}, {"max_overlap": 0})


LEAKING_PRESETS = {"labelnames"}  # the original project's label-leaking generator, kept on purpose


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_gets_its_leakage_verdict_at_reduced_size(name):
    """Each preset's data (train, val and every eval set) passes the gate the workflow
    applies, except the label-leaking one, which fails it as its thresholds expect; sizes
    are reduced so that the test stays fast, the split rules are the preset's."""
    experiment = resolve_experiment(name, {"n_train": 2000, "n_eval": 300, "n_val": 200})
    splits = generate_experiment(experiment.settings)
    held_out = {k: rows for k, rows in splits.items() if k != "train"}
    assert set(held_out) == set(experiment.settings.heldout_set_names)
    document = leakage_document(experiment, splits["train"], held_out)
    if name in LEAKING_PRESETS:
        assert not document["passed"]
        assert document["expected_failure"] == experiment.thresholds.expected_failure
        flagged = " ".join(document["violations"])
        assert "name_label_mi_bits_excess" in flagged
        assert "eval: names_only_advantage_lower" in flagged
    else:
        assert document["passed"], document["violations"]
        assert document["expected_failure"] is None
