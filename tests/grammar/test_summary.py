"""Summary tables, per-condition intervals and plots from synthetic run directories."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from metaexamples.cli import main
from metaexamples.grammar import plots, summary

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


def make_run(root, grammar, condition, seed, auroc, rule, train=True):
    run = root / "runs" / grammar / condition / (f"seed{seed}" if seed is not None else "")
    (run / "eval").mkdir(parents=True, exist_ok=True)
    record = ppl_record(grammar, auroc, oracle=condition == "oracle")
    (run / "eval" / "perplexity_metrics.json").write_text(json.dumps(record))
    (run / "eval" / "generation_metrics.json").write_text(json.dumps(gen_record(grammar, rule)))
    if train:
        facts = {"steps": 40, "tokens_seen": 5120, "achieved_synthetic_share": 0.1,
                 "wall_time_s": 12.5, "tokens_per_s": 410.0, "stream": {"tokens": 99}}
        (run / "train_metrics.json").write_text(json.dumps(facts))
        pd.DataFrame({"step": [10, 20, 30], "train_loss": [9.0, 8.0, 7.5],
                      "eval_loss_val": [9.5, 8.5, 8.0]}).to_csv(run / "train_log.csv",
                                                                 index=False)
    return run


@pytest.fixture()
def runs(tmp_path):
    out = {"baseline": make_run(tmp_path, "g2", "baseline", None, 0.5, 0.0, train=False),
           "oracle": make_run(tmp_path, "g2", "oracle", None, 1.0, 1.0, train=False)}
    out["runs"] = [
        make_run(tmp_path, "g2", "examples", 0, 0.70, 0.30),
        make_run(tmp_path, "g2", "examples", 1, 0.80, 0.50),
        make_run(tmp_path, "g2", "meta_5pct", 0, 0.90, 0.60),
    ]
    return out


def test_parse_run_dir_rejects_other_layouts(tmp_path):
    with pytest.raises(ValueError, match="seed<N>"):
        summary.parse_run_dir(tmp_path / "g1" / "examples")


def test_grammar_summary_rows_and_facts(runs):
    frame = summary.grammar_summary("g2", runs["runs"], runs["baseline"], runs["oracle"])
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
    assert "val.auroc_ci_low" not in frame.columns and "auroc_minimal_edit" in frame.columns
    base = frame[frame["condition"] == "baseline"].iloc[0]
    assert base["steps"] == 0
    oracle = frame[frame["condition"] == "oracle"].iloc[0]
    assert oracle["model"] == "oracle" and math.isnan(oracle["canonical_perplexity"])


def test_missing_train_metrics_names_the_file(runs):
    (runs["runs"][0] / "train_metrics.json").unlink()
    with pytest.raises(ValueError, match="train_metrics.json: file not found"):
        summary.grammar_summary("g2", runs["runs"], None)


def test_train_metrics_are_read_by_their_one_key(runs):
    path = runs["runs"][0] / "train_metrics.json"
    facts = json.loads(path.read_text())
    del facts["achieved_synthetic_share"]
    facts["synthetic_share"] = 0.1  # a near-miss name is not guessed at
    path.write_text(json.dumps(facts))
    with pytest.raises(ValueError, match=r"train_metrics.json: missing key\(s\) "
                                         r"\['achieved_synthetic_share'\]"):
        summary.grammar_summary("g2", runs["runs"], None)


def _row(table, condition, metric):
    return table[(table["condition"] == condition) & (table["metric"] == metric)].iloc[0]


def test_by_condition_t_across_seeds_or_the_runs_own_interval(runs):
    frame = summary.grammar_summary("g2", runs["runs"], runs["baseline"], runs["oracle"])
    table = summary.by_condition(frame)
    row = _row(table, "examples", "auroc")
    assert row["interval"] == "t" and row["n"] == 2 and row["n_seeds"] == 2
    assert row["mean"] == pytest.approx(0.75)
    # two seeds: half-width t(0.975, 1) * sd / sqrt(2) = 12.706 * 0.0707 / 1.414
    assert row["ci_high"] - row["mean"] == pytest.approx(12.706 * 0.05, rel=1e-3)
    row = _row(table, "meta_5pct", "auroc")
    assert row["interval"] == "cluster_bootstrap" and row["n"] == 100
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.85, 0.95))
    row = _row(table, "meta_5pct", "rule_validity")
    assert row["interval"] == "wilson" and row["n"] == 50
    row = _row(table, "meta_5pct", "auroc_empty")  # a cell of one: no interval, says why
    assert row["interval"] == "none" and math.isnan(row["ci_low"]) and row["n"] == 1
    assert "n_empty = 1 < 20" in row["note"]
    row = _row(table, "meta_5pct", "steps")
    assert row["interval"] == "none" and math.isnan(row["ci_low"])
    assert _row(table, "oracle", "auroc")["mean"] == 1.0
    assert "oracle" in _row(table, "oracle", "canonical_perplexity")["note"]
    assert "n_empty" not in set(table["metric"])


def test_bounds_check_places_each_condition_between_baseline_and_oracle():
    nan = math.nan

    def row(condition, metric, mean, lo=nan, hi=nan):
        return {"grammar": "g2", "condition": condition, "metric": metric, "mean": mean,
                "ci_low": lo, "ci_high": hi}

    table = pd.DataFrame([
        row("baseline", "auroc", 0.5, 0.45, 0.55), row("oracle", "auroc", 1.0),
        row("a", "auroc", 0.8, 0.7, 0.9),       # between the bounds
        row("b", "auroc", 0.45, 0.40, 0.50),    # overlaps the baseline's interval: within
        row("c", "auroc", 0.3, 0.25, 0.35),     # wholly below the baseline
        row("baseline", "excess_nll", 100.0), row("oracle", "excess_nll", 0.0, -1e-5, 1e-5),
        row("a", "excess_nll", 3.0, 2.9, 3.1),  # lower is better: within
        row("b", "excess_nll", -0.5, -0.6, -0.4),  # better than the exact distribution
        row("a", "steps", 200.0),               # not a bounded metric
        row("a", "minimal_pair_accuracy", nan),  # no value
    ])
    assert summary.bounds_check(table) == [
        "", "", "within", "within", "worse than baseline", "", "", "within", "beyond oracle",
        "", ""]


def test_summarize_cli_and_plots(runs, tmp_path):
    g2 = tmp_path / "results" / "g2" / "summary.csv"
    argv = ["summarize", "--grammar", "g2", "--baseline", str(runs["baseline"]),
            "--oracle", str(runs["oracle"]), "--runs", *map(str, runs["runs"]), "--out", str(g2)]
    assert main(argv) == 0
    total = tmp_path / "results" / "summary.csv"
    by_cond = tmp_path / "results" / "summary_by_condition.csv"
    assert main(["summarize", "--combine", str(g2), "--out", str(total), "--by-condition",
                 str(by_cond)]) == 0
    assert len(pd.read_csv(total)) == 5
    table = pd.read_csv(by_cond)
    assert set(table["condition"]) == {"baseline", "examples", "meta_5pct", "oracle"}
    assert summary.BY_CONDITION_COLUMNS == list(table.columns)

    out = tmp_path / "results" / "g2" / "plots"
    assert main(["plot", "--summary", str(g2), "--runs", *map(str, runs["runs"]),
                 "--out-dir", str(out)]) == 0
    for name in ("metrics_by_condition.png", "loss_curves.png", "by_negative_type.png"):
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
