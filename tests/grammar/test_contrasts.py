"""Contrasts between conditions: paired over seeds, or two models at one seed."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from metaexamples import stats
from metaexamples.grammar import contrasts
from metaexamples.grammar.languages import make_grammar

ALPHABET = ("a", "b", "c")


def _summary(values: dict[str, list[float]], metric: str = "rule_validity_above_chance",
             extra: dict[str, dict[str, list[float]]] | None = None) -> pd.DataFrame:
    rows = [{"grammar": "g3", "condition": "oracle", "seed": None, metric: 0.8}]
    for condition, per_seed in values.items():
        for seed, v in enumerate(per_seed):
            row = {"grammar": "g3", "condition": condition, "seed": seed, metric: v}
            for other, table in (extra or {}).items():
                row[other] = table[condition][seed]
            rows.append(row)
    return pd.DataFrame(rows)


def test_seed_contrast_is_the_paired_t_of_the_oriented_differences():
    frame = _summary({"examples": [0.20, 0.30, 0.10], "meta_10pct": [0.25, 0.32, 0.18]},
                     extra={"excess_nll": {"examples": [5.0, 4.0, 6.0],
                                           "meta_10pct": [4.5, 4.2, 5.0]}})
    table = contrasts.grammar_contrasts(frame, [("meta_10pct", "examples")])
    rule = table[table["metric"] == "rule_validity_above_chance"].iloc[0]
    expected = stats.paired_t([0.05, 0.02, 0.08])
    assert rule["scope"] == "condition" and rule["n"] == 3
    assert rule["estimate"] == pytest.approx(0.05)
    assert (rule["ci_low"], rule["ci_high"]) == pytest.approx(
        (expected.interval.low, expected.interval.high))
    nll = table[table["metric"] == "excess_nll"].iloc[0]
    assert nll["estimate"] == pytest.approx((0.5 - 0.2 + 1.0) / 3)  # lower is better: ref - cond
    assert list(table.columns[:13]) == ["grammar", "condition", "reference", "metric", "scope",
                                        "n", "estimate", "ci_low", "ci_high", "p_value",
                                        "p_holm", "verdict", "mde"]


def test_a_seed_without_a_value_is_named_not_dropped_silently():
    frame = _summary({"examples": [0.2, 0.3, math.nan], "meta_10pct": [0.25, 0.32, 0.18]})
    row = contrasts.grammar_contrasts(frame, [("meta_10pct", "examples")]).iloc[0]
    assert row["n"] == 2 and "not seed 2" in row["note"]


def test_holm_verdicts_and_minimum_detectable_effects():
    table = pd.DataFrame({
        "grammar": "g3", "condition": "meta_10pct", "reference": "examples",
        "metric": ["a", "b", "c"], "scope": "condition", "n": 5,
        "estimate": [0.3, -0.3, 0.01], "ci_low": 0.0, "ci_high": 0.0,
        "p_value": [0.001, 0.002, 0.6], "p_holm": math.nan, "verdict": "", "mde": math.nan,
        "se": [0.05, 0.05, 0.05], "method": "paired_t", "note": ""})
    out = contrasts.adjust(table)
    assert out["p_holm"].tolist() == pytest.approx([0.003, 0.004, 0.6])
    assert out["verdict"].tolist() == ["better", "worse", "no detectable difference"]
    sd = 0.05 * math.sqrt(5)
    assert out["mde"].iloc[0] == pytest.approx(stats.mde_t(sd, 5, 0.05 / 3))
    assert stats.t_power(out["mde"].iloc[0], sd, 5, 0.05 / 3) == pytest.approx(0.8)


def test_paired_cluster_bootstrap_of_two_models_covers():
    """One seed: pair accuracy of two models on the same ~65 pairs of 200 clusters; the
    truth is the difference of the two models' pair accuracy over the whole population."""
    rng = np.random.default_rng(11)
    trials, hits = 2000, 0
    # per cluster: a difficulty shared by both models, each model's own noise
    p_a, p_b = 0.70, 0.62

    def correct(difficulty, p, noise):
        from statistics import NormalDist

        return (difficulty + noise < NormalDist().inv_cdf(p) * math.sqrt(2)).astype(float)

    big = rng.normal(size=400_000)
    truth = (correct(big, p_a, rng.normal(size=big.size)).mean()
             - correct(big, p_b, rng.normal(size=big.size)).mean())
    for _ in range(trials):
        difficulty = rng.normal(size=65)
        a = correct(difficulty, p_a, rng.normal(size=65))
        b = correct(difficulty, p_b, rng.normal(size=65))
        test = contrasts._paired_bootstrap(lambda idx, x: float(x[idx].mean()), (a,), (b,),
                                           list(range(65)), 1.0, 200, rng, "paired")
        hits += test.interval.covers(truth)
    assert 0.93 <= hits / trials <= 0.97


# -- one seed, from files: what the default main job does ----------------------------------


def _write_run(tmp_path, name: str, shift: float, rng: np.random.Generator) -> contrasts.RunData:
    g = make_grammar("g3", ALPHABET, 1, 6)
    rows = []
    for n in (1, 2, 3, 4):  # the exact lengths (at most 9 strings)
        for s in g.strings_of_length(n):
            rows.append({"split": "exact", "text": " ".join(s), "length": n, "valid": True,
                         "negative_type": None, "logp_true": g.logp(s), "pair_text": None,
                         "cluster": " ".join(s), "logprob": g.logp(s) - shift * n,
                         "n_tokens": n + 1, "pair_logprob": None})
    for i in range(60):
        n = 5 + i % 2
        lp_true = -math.log(6) - math.log(g.count(n))
        lp = lp_true - shift * n - rng.gamma(2.0, 0.3)
        text = f"v{i}"
        rows.append({"split": "test", "text": text, "length": n, "valid": True,
                     "negative_type": None, "logp_true": lp_true, "pair_text": None,
                     "cluster": text, "logprob": lp, "n_tokens": n + 1, "pair_logprob": None})
        rows.append({"split": "test", "text": f"n{i}", "length": n, "valid": False,
                     "negative_type": "minimal_edit", "logp_true": None, "pair_text": text,
                     "cluster": text, "logprob": lp - rng.normal(1.0 - shift, 1.0),
                     "n_tokens": n + 1, "pair_logprob": lp})
    for doc in range(10):
        rows.append({"split": "canonical", "doc": doc, "logprob": -50.0 - shift * 10 - doc,
                     "n_tokens": 20})
    scores = tmp_path / f"{name}_scores.jsonl"
    scores.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    samples = tmp_path / f"{name}_samples.jsonl"
    lines = []
    for _ in range(100):
        fmt = rng.random() < 0.9 - shift
        length = int(rng.integers(1, 7))
        lines.append({"format_valid": bool(fmt), "rule_valid": bool(fmt and rng.random() < 0.5),
                      "chance_at_length": 1 / 3 ** (length // 2), "length": length})
    samples.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    curve = tmp_path / f"{name}_curve.json"
    texts = [r["text"] for r in rows if r["split"] in ("exact", "test") and r["valid"]]
    lengths = [r["length"] for r in rows if r["split"] in ("exact", "test") and r["valid"]]
    curve.write_text(json.dumps({
        "grammar": "g3", "texts": texts, "lengths": lengths,
        "exact": [n <= 4 for n in lengths],
        "length_distribution": {str(n): 1 / 6 for n in range(1, 7)},
        "steps": [0, 10, 20], "synthetic_tokens": [0, 1000, 2000],
        "excess_nll": [50.0, 5.0, 2.0],
        "excess": [[50.0] * len(texts), [5.0 + shift] * len(texts),
                   (2.0 + shift + rng.normal(0, 0.1, len(texts))).tolist()]}))
    return contrasts.RunData(scores, samples, curve)


def test_one_seed_contrasts_compare_two_models_by_the_right_method(tmp_path):
    rng = np.random.default_rng(12)
    runs = {("meta_10pct", 0): _write_run(tmp_path, "meta", 0.0, rng),
            ("examples", 0): _write_run(tmp_path, "ex", 0.2, rng)}
    frame = _summary({"examples": [0.1], "meta_10pct": [0.2]},
                     extra={m: {"examples": [1.0], "meta_10pct": [1.0]}
                            for m in ("excess_nll", "auroc", "minimal_pair_accuracy",
                                      "canonical_perplexity", "format_validity",
                                      "rule_validity", "curve_mean_excess_nll",
                                      "tokens_to_threshold")})
    manifest = {"length_distribution": {str(n): 1 / 6 for n in range(1, 7)}}
    table = contrasts.grammar_contrasts(frame, [("meta_10pct", "examples")], runs, manifest,
                                        resamples=200).set_index("metric")
    assert set(table["scope"]) == {"models"}
    methods = table["method"].to_dict()
    assert methods["excess_nll"] == "stratified_t"
    assert methods["format_validity"] == "newcombe"
    assert methods["auroc"] == "paired_cluster_bootstrap"
    assert methods["canonical_perplexity"] == "paired_bootstrap"
    assert methods["rule_validity_above_chance"] == "independent_bootstrap"
    # meta (shift 0) has lower excess everywhere: positive = better; exact part 0.2 * n
    assert table.at["excess_nll", "estimate"] > 0
    assert table.at["canonical_perplexity", "estimate"] > 0
    assert table.at["curve_mean_excess_nll", "estimate"] == pytest.approx(0.2, abs=0.05)
    assert np.isnan(table.at["tokens_to_threshold", "p_value"])
    assert "no within-run interval" in table.at["tokens_to_threshold", "note"]
    assert table.at["excess_nll", "n"] == 60  # the resampled unit: held-out valid strings
