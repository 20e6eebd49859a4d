"""Summary tables, per-condition intervals and plots from synthetic run files."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from metaexamples.cli import main
from metaexamples.grammar import aggregate, plots, summary

TYPES = {"minimal_edit": 50.0, "out_of_alphabet": 50.0, "empty": 1.0}  # type: n


def ppl_record(grammar: str, auroc: float, oracle: bool = False) -> dict:
    split = {"excess_nll": 2.0 - auroc, "auroc": auroc, "minimal_pair_accuracy": auroc - 0.1,
             "auroc_minimal_edit": auroc - 0.05, "n_valid": 100.0, "n_invalid": 101.0,
             "pair_accuracy": auroc, "excess_nll_len1": 1.0, "n_valid_len1": 3.0}
    for t, n in TYPES.items():
        split[f"auroc_{t}"] = auroc
        split[f"pair_accuracy_{t}"] = auroc - 0.1
        split[f"n_{t}"] = n
    intervals = {f"test.{k}": [v - 0.05, v + 0.05] for k, v in split.items()
                 if not k.startswith("n_")}
    intervals["val.auroc"] = [0.0, 1.0]
    intervals["canonical_perplexity"] = [90.0, 110.0]
    return {"grammar": grammar, "splits": {"test": split, "val": split}, "oracle": oracle,
            "canonical": {} if oracle else {"canonical_perplexity": 100.0 + auroc,
                                            "canonical_documents": 5.0},
            "excess_nll_missing_lengths": {"test": [2, 4]}, "intervals": intervals}


def gen_record(grammar: str, rule: float) -> dict:
    metrics = {"format_validity": 0.9, "rule_validity": rule,
               "rule_validity_given_format": rule / 0.9, "chance_rate": 0.1,
               "n_samples": 50.0, "length_tv_distance": None}
    return {"grammar": grammar, "metrics": metrics,
            "intervals": {"rule_validity": [rule - 0.1, rule + 0.1]}}


def curve_record(grammar: str, shift: float) -> dict:
    return {"grammar": grammar, "texts": ["a", "b", "c"], "lengths": [2, 4, 4],
            "exact": [True, False, False], "length_distribution": {"2": 0.5, "4": 0.5},
            "steps": [0, 10, 20], "synthetic_tokens": [0.0, 100.0, 200.0],
            "excess_nll": [], "excess": [[90.0, 90.0, 90.0], [8.0 + shift] * 3,
                                         [2.0 + shift, 3.0 + shift, 1.0 + shift]]}


def make_run(root, grammar, condition, seed, auroc, rule, train=True) -> summary.RunFiles:
    run = root / "runs" / grammar / condition / (f"seed{seed}" if seed is not None else "")
    (run / "eval").mkdir(parents=True, exist_ok=True)
    record = ppl_record(grammar, auroc, oracle=condition == "oracle")
    record["model"] = "tiny-olmo"
    (run / "eval" / "perplexity_metrics.json").write_text(json.dumps(record))
    (run / "eval" / "generation_metrics.json").write_text(json.dumps(gen_record(grammar, rule)))
    files = summary.RunFiles(condition, seed, run / "eval" / "perplexity_metrics.json",
                             run / "eval" / "generation_metrics.json")
    if train:
        facts = {"steps": 40, "tokens_seen": 5120, "achieved_synthetic_share": 0.1,
                 "wall_time_s": 12.5, "tokens_per_s": 410.0, "stream": {"tokens": 99}}
        (run / "train_metrics.json").write_text(json.dumps(facts))
        pd.DataFrame({"step": [10, 20, 30], "train_loss": [9.0, 8.0, 7.5],
                      "eval_loss_val": [9.5, 8.5, 8.0]}).to_csv(run / "train_log.csv",
                                                                 index=False)
        (run / "learning_curve.json").write_text(json.dumps(curve_record(grammar, 1 - auroc)))
        files = summary.RunFiles(condition, seed, files.perplexity, files.generation,
                                 run / "train_metrics.json", run / "learning_curve.json")
    return files


@pytest.fixture()
def runs(tmp_path):
    return [
        make_run(tmp_path, "g2", "baseline", None, 0.5, 0.0, train=False),
        make_run(tmp_path, "g2", "oracle", None, 1.0, 1.0, train=False),
        make_run(tmp_path, "g2", "examples", 0, 0.70, 0.30),
        make_run(tmp_path, "g2", "examples", 1, 0.80, 0.50),
        make_run(tmp_path, "g2", "meta_5pct", 0, 0.90, 0.60),
    ]


def test_grammar_summary_rows_and_facts(runs):
    frame = summary.grammar_summary("g2", runs, 5.0)
    assert list(frame["condition"]) == ["baseline", "examples", "examples", "meta_5pct",
                                        "oracle"]
    assert list(frame.columns[:9]) == ["grammar", "condition", "seed", "model", "steps",
                                       "tokens_seen", "synthetic_share", "train_wall_seconds",
                                       "train_tokens_per_s"]
    ex = frame[frame["condition"] == "examples"].iloc[0]
    assert ex["synthetic_share"] == 0.1 and ex["tokens_seen"] == 5120 and ex["steps"] == 40
    assert ex["train_wall_seconds"] == 12.5 and ex["train_tokens_per_s"] == 410.0
    assert ex["auroc"] == 0.7 and ex["auroc_ci_low"] == pytest.approx(0.65)
    assert ex["rule_validity_ci_high"] == pytest.approx(0.4)
    assert ex["excess_nll_missing_lengths"] == "2 4" and ex["n_empty"] == 1
    assert ex["model"] == "tiny-olmo"
    # the curve: exact length 2 (weight 0.5) + held-out length 4 (mean of two strings)
    # at 100 tokens: 8.3 ; at 200: 0.5 * 2.3 + 0.5 * 2.3 = 2.3 -> mean over [100, 200] 5.3
    assert ex["curve_mean_excess_nll"] == pytest.approx(5.3)
    assert ex["tokens_to_threshold"] == pytest.approx(100 + 100 * (8.3 - 5.0) / (8.3 - 2.3))
    assert "val.auroc_ci_low" not in frame.columns and "auroc_minimal_edit" in frame.columns
    base = frame[frame["condition"] == "baseline"].iloc[0]
    assert base["steps"] == 0
    oracle = frame[frame["condition"] == "oracle"].iloc[0]
    assert oracle["model"] == "oracle" and math.isnan(oracle["canonical_perplexity"])


def test_missing_train_metrics_names_the_file(runs):
    runs[2].train.unlink()
    with pytest.raises(ValueError, match="train_metrics.json: file not found"):
        summary.grammar_summary("g2", runs, 5.0)


def test_train_metrics_are_read_by_their_one_key(runs):
    path = runs[2].train
    facts = json.loads(path.read_text())
    del facts["achieved_synthetic_share"]
    facts["synthetic_share"] = 0.1  # a near-miss name is not guessed at
    path.write_text(json.dumps(facts))
    with pytest.raises(ValueError, match=r"train_metrics.json: missing key\(s\) "
                                         r"\['achieved_synthetic_share'\]"):
        summary.grammar_summary("g2", runs, 5.0)


def _row(table, condition, metric):
    return table[(table["condition"] == condition) & (table["metric"] == metric)].iloc[0]


def test_by_condition_one_kind_of_interval_per_column(runs):
    frame = summary.grammar_summary("g2", runs, 5.0)
    table = aggregate.by_condition(frame)
    row = _row(table, "examples", "auroc")
    assert row["scope"] == "seeds" and row["interval"] == "t" and row["n"] == 2
    assert row["mean"] == pytest.approx(0.75) and math.isnan(row["run_ci_low"])
    # two seeds: half-width t(0.975, 1) * sd / sqrt(2) = 12.706 * 0.0707 / 1.414
    assert row["seeds_ci_high"] - row["mean"] == pytest.approx(12.706 * 0.05, rel=1e-3)
    assert row["seed_values"] == "0.7;0.8" and row["seeds"] == "0;1"
    assert row["seeds_learned"] == "2 of 2"  # both runs' intervals above the baseline's
    row = _row(table, "meta_5pct", "auroc")
    assert (row["scope"], row["interval"], row["n"]) == ("run", "wilson_worst_case_clustered", 100)
    assert (row["run_ci_low"], row["run_ci_high"]) == pytest.approx((0.85, 0.95))
    assert math.isnan(row["seeds_ci_low"])
    row = _row(table, "meta_5pct", "rule_validity")
    assert row["interval"] == "agresti_coull" and row["n"] == 50
    row = _row(table, "meta_5pct", "auroc_empty")  # a cell of one: no interval, says why
    assert row["interval"] == "none" and math.isnan(row["run_ci_low"]) and row["n"] == 1
    assert "n_empty = 1 < 20" in row["note"]
    row = _row(table, "meta_5pct", "steps")
    assert row["interval"] == "none" and math.isnan(row["run_ci_low"])
    assert _row(table, "oracle", "auroc")["mean"] == 1.0
    assert "oracle" in _row(table, "oracle", "canonical_perplexity")["note"]
    assert "n_empty" not in set(table["metric"])


def test_a_seed_without_a_value_is_named():
    frame = pd.DataFrame({"grammar": "g1", "condition": "examples", "seed": [0, 1, 2],
                          "auroc": [0.7, math.nan, 0.8]})
    row = _row(aggregate.by_condition(frame), "examples", "auroc")
    assert row["n_seeds"] == 2 and "no value for seed(s) 1" in row["note"]
    assert row["seed_values"] == "0.7;nan;0.8"


def test_seeds_that_disagree_in_kind_are_counted():
    frame = pd.DataFrame({
        "grammar": "g3", "condition": "examples", "seed": [0, 1, 2],
        "rule_validity_above_chance": [0.2, 0.01, 0.25],
        "rule_validity_above_chance_ci_low": [0.15, -0.02, 0.2],
        "rule_validity_above_chance_ci_high": [0.25, 0.04, 0.3]})
    row = _row(aggregate.by_condition(frame), "examples", "rule_validity_above_chance")
    assert row["seeds_learned"] == "2 of 3"


def test_bounds_check_places_each_condition_between_baseline_and_oracle():
    nan = math.nan

    def row(condition, metric, mean, lo=nan, hi=nan, scope="run"):
        return {"grammar": "g2", "condition": condition, "metric": metric, "mean": mean,
                "scope": scope, "run_ci_low": lo if scope == "run" else nan,
                "run_ci_high": hi if scope == "run" else nan,
                "seeds_ci_low": lo if scope == "seeds" else nan,
                "seeds_ci_high": hi if scope == "seeds" else nan}

    table = pd.DataFrame([
        row("baseline", "auroc", 0.5, 0.45, 0.55), row("oracle", "auroc", 1.0),
        row("a", "auroc", 0.8, 0.7, 0.9),       # between the bounds
        row("b", "auroc", 0.45, 0.40, 0.50, "seeds"),  # overlaps the baseline's: within
        row("c", "auroc", 0.3, 0.25, 0.35),     # wholly below the baseline
        row("baseline", "excess_nll", 100.0), row("oracle", "excess_nll", 0.0, -1e-5, 1e-5),
        row("a", "excess_nll", 3.0, 2.9, 3.1),  # lower is better: within
        row("b", "excess_nll", -0.5, -0.6, -0.4),  # better than the exact distribution
        row("b", "excess_nll_noise", -0.1, -0.3, 0.1),  # not a bounded metric
        row("a", "steps", 200.0),               # not a bounded metric
        row("a", "minimal_pair_accuracy", nan),  # no value
        row("oracle", "rule_validity_above_chance", 0.875),
        row("a", "rule_validity_above_chance", 0.99, 0.98, 1.0),  # the oracle is no bound
    ])
    assert aggregate.bounds_check(table) == [
        "", "", "within", "within", "worse than baseline", "", "", "within", "beyond oracle",
        "", "", "", "", ""]


def test_summarize_cli_and_plots(runs, tmp_path):
    g2 = tmp_path / "results" / "g2" / "summary.csv"
    argv = ["summarize", "--grammar", "g2", "--out", str(g2)]
    for f in runs:
        if f.train is None:
            argv += ["--reference", f.condition, str(f.perplexity), str(f.generation)]
        else:
            argv += ["--run", f.condition, str(f.seed), str(f.perplexity), str(f.generation),
                     str(f.train), str(f.curve)]
    assert main(argv) == 0
    total = tmp_path / "results" / "summary.csv"
    by_cond = tmp_path / "results" / "summary_by_condition.csv"
    assert main(["summarize", "--combine", str(g2), "--out", str(total), "--by-condition",
                 str(by_cond)]) == 0
    assert len(pd.read_csv(total)) == 5
    table = pd.read_csv(by_cond)
    assert set(table["condition"]) == {"baseline", "examples", "meta_5pct", "oracle"}
    assert aggregate.COLUMNS == list(table.columns)

    out = tmp_path / "results" / "g2" / "plots"
    argv = ["plot", "--summary", str(g2), "--out-dir", str(out)]
    for f in runs:
        if f.train is not None:
            argv += ["--run", f.condition, str(f.seed), str(f.train.parent / "train_log.csv"),
                     str(f.curve)]
    assert main(argv) == 0
    for name in ("metrics_by_condition.png", "loss_curves.png", "by_negative_type.png",
                 "learning_curves.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    frame = pd.read_csv(g2)
    assert plots.negative_types(frame, "auroc_") == (["minimal_edit", "out_of_alphabet"],
                                                     ["empty"])


def test_summarize_needs_one_mode(tmp_path):
    assert main(["summarize", "--out", str(tmp_path / "x.csv")]) == 1


def test_loss_plot_survives_missing_or_odd_logs(tmp_path):
    odd = pd.DataFrame({"iteration": [1, 2], "loss": [3.0, 2.0]})
    path = plots.plot_loss_curves({("examples", 0): odd}, "g1", tmp_path / "a.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert plots.read_train_log(tmp_path / "missing.csv") is None
    path = plots.plot_loss_curves({}, "g1", tmp_path / "b.png")
    assert path.is_file()
