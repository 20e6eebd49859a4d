"""The one-job evaluation: scoring and sampling one model (or the oracle) on one grammar."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from metaexamples import stats
from metaexamples.config import DataConfig, EvaluationConfig, GrammarConfig
from metaexamples.grammar import evaluation, metrics
from metaexamples.grammar.data import generate
from metaexamples.grammar.documents import example_text, symbols_text
from metaexamples.grammar.languages import make_grammar

ALPHABET = ["■", "¥", "†"]
FOREIGN = ["¿"]
QUICK = json.dumps({"evaluation": {"bootstrap_resamples": 20, "batch_size": 4, "samples": 5,
                                   "sample_batch_size": 2, "max_new_tokens": 6,
                                   "exact_max_strings": 3}})


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def make_data_dir(root, grammar="g3"):
    """A tiny grammar data directory: manifest, train/val/test, tokens, held-out text."""
    g = make_grammar(grammar, tuple(ALPHABET), 1, 4)
    data = root / "data" / grammar
    data.mkdir(parents=True)

    def row(symbols, kind=None, base=None):
        text = example_text(grammar, symbols)
        if kind == "unclosed_tag":
            text = f"<{grammar}>" + symbols_text(symbols)
        return {"text": text, "symbols": symbols, "length": len(symbols), "valid": kind is None,
                "negative_type": kind, "logp_true": None if kind else g.logp(symbols),
                "pair_text": base["text"] if base else None}

    for split, strings in {"val": [["■"], ["¥", "¥"]],
                           "test": [["†"], ["■", "¥", "■"], ["¥", "†", "¥"]]}.items():
        rows = [row(s) for s in strings]
        base = rows[-1]
        rows += [row(["■", "¥", "†"], "minimal_edit", base),
                 row(["¥", "¿", "¥"], "out_of_alphabet", base),
                 row([], "empty", base),
                 row(base["symbols"], "unclosed_tag", base)]
        _write(data / f"{split}.jsonl", rows)
    _write(data / "train.jsonl", [row(["■", "■"]), row(["†", "■", "†"])])
    manifest = {"grammar": grammar, "alphabet": ALPHABET, "min_length": 1, "max_length": 4,
                "length_distribution": {str(k): v for k, v in g.length_distribution().items()}}
    (data / "manifest.json").write_text(json.dumps(manifest))
    tokens = root / "data" / "tokens.json"
    tokens.write_text(json.dumps({"symbols": ALPHABET, "foreign_symbols": FOREIGN}))
    heldout = root / "data" / "heldout.jsonl"
    _write(heldout, [{"text": "Natural text about rivers and hills. " * 5},
                     {"text": "Another short held-out document."}])
    return data, tokens, heldout


def run_cli(*argv) -> int:
    from metaexamples.cli import main

    return main([str(a) for a in argv])


def test_evaluate_cli_scores_and_samples_in_one_job(tmp_path, tiny_model_dir):
    data, tokens, heldout = make_data_dir(tmp_path)
    argv = ["evaluate", "--model-dir", tiny_model_dir, "--data-dir", data, "--tokens", tokens,
            "--canonical-heldout", heldout, "--settings", QUICK, "--seed", 1, "--threads", 1]
    assert run_cli(*argv, "--out-dir", tmp_path / "a") == 0
    assert run_cli(*argv, "--out-dir", tmp_path / "b") == 0
    out = tmp_path / "a"
    for name in ("scores.jsonl", "samples.jsonl"):  # deterministic
        assert (out / name).read_text() == (tmp_path / "b" / name).read_text()
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"exact", "val", "test", "canonical"}
    assert len([r for r in rows if r["split"] == "exact"]) == 6  # lengths 1 and 2: 3 each
    assert len([r for r in rows if r["split"] == "test"]) == 7
    ppl = json.loads((out / "perplexity_metrics.json").read_text())
    test = ppl["splits"]["test"]
    assert {"excess_nll", "auroc", "minimal_pair_accuracy", "auroc_unclosed_tag",
            "n_unclosed_tag", "excess_nll_len1"} <= set(test)
    assert test["n_empty"] == 1
    assert ppl["negative_types"]["test"]["empty"]["interval"].startswith("n < 20")
    # lengths 1, 2 exact (at most 3 strings), 3 from its two test strings, 4 from none:
    # the KL is undefined, never renormalised over the others
    assert ppl["exact_lengths"] == [1, 2]
    assert ppl["excess_nll_missing_lengths"]["test"] == [4]
    assert test["excess_nll"] is None and test["n_valid_len1"] == 3
    assert ppl["canonical"]["canonical_documents"] == 2
    lo, hi = ppl["intervals"]["test.auroc"]
    assert lo <= test["auroc"] <= hi
    gen = json.loads((out / "generation_metrics.json").read_text())
    assert len((out / "samples.jsonl").read_text().splitlines()) == 5
    g = make_grammar("g3", tuple(ALPHABET), 1, 4)
    from metaexamples.grammar import judging

    assert gen["metrics"]["chance_rate"] == pytest.approx(
        judging.chance_rate(g, g.length_distribution()))
    assert gen["settings"]["top_p"] == 1.0
    lo, hi = gen["intervals"]["format_validity"]  # Wilson: never a zero-width interval
    assert lo <= gen["metrics"]["format_validity"] <= hi and hi > lo


@pytest.mark.parametrize("breakage,message", [
    ("missing_split", "test.jsonl: file not found"),
    ("empty_split", "val.jsonl: file is empty"),
    ("foreign_symbol", "test.jsonl:1: symbol(s) ['✿']"),
    ("no_weights", "model directory has no weights"),
])
def test_evaluate_bad_input_names_the_file(tmp_path, tiny_model_dir, caplog, breakage,
                                           message):
    data, tokens, heldout = make_data_dir(tmp_path)
    model_dir = tiny_model_dir
    if breakage == "missing_split":
        (data / "test.jsonl").unlink()
    elif breakage == "empty_split":
        (data / "val.jsonl").write_text("")
    elif breakage == "foreign_symbol":
        _write(data / "test.jsonl", [{"text": "<g3> ✿ </g3>", "symbols": ["✿"], "valid": True,
                                      "negative_type": None, "logp_true": -3.0,
                                      "pair_text": None}])
    else:
        model_dir = tmp_path / "empty-model"
        shutil.copytree(tiny_model_dir, model_dir,
                        ignore=shutil.ignore_patterns("*.safetensors"))
    rc = run_cli("evaluate", "--model-dir", model_dir, "--data-dir", data, "--tokens", tokens,
                 "--canonical-heldout", heldout, "--settings", QUICK,
                 "--out-dir", tmp_path / "eval")
    assert rc == 1
    assert message in caplog.text
    assert not (tmp_path / "eval" / "scores.jsonl").exists()


# -- the oracle through the same code: the upper bound of every metric ---------------------

SYMBOLS = ("¡", "■", "¥", "―", "†")  # one OLMo token each after a space
DATA = DataConfig(n_train=200, n_val=20, n_test=60, negatives_per_type=20, meta_documents=1)


@pytest.mark.parametrize("name", ["g1", "g2", "g3"])
def test_oracle_reaches_every_upper_bound(name, tmp_path, tiny_model_dir):
    data = tmp_path / name
    cfg = GrammarConfig(min_length=2 if name == "g2" else 1, max_length=8)
    generate(name, cfg, DATA, SYMBOLS, ("¿", "·"), ["Some prose. More prose."], data)
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"symbols": list(SYMBOLS), "foreign_symbols": ["¿", "·"]}))
    eval_cfg = EvaluationConfig(samples=64, sample_batch_size=32, max_new_tokens=16,
                                bootstrap_resamples=20)
    out = evaluation.evaluate(tiny_model_dir, data, tokens, tmp_path / "none.jsonl",
                              ("val", "test"), seed=0, cfg=eval_cfg, out_dir=tmp_path / "eval",
                              oracle=True)
    ppl, gen = out["perplexity"], out["generation"]
    for split in ("val", "test"):
        m = ppl["splits"][split]
        assert abs(m["excess_nll"]) <= 1e-4
        kinds = ppl["negative_types"][split]
        assert kinds and all(k["pooled"] for k in kinds.values())
        assert m["auroc"] == 1.0 and m["pair_accuracy"] == 1.0
        for kind in kinds:
            assert m[f"auroc_{kind}"] == 1.0 and m[f"pair_accuracy_{kind}"] == 1.0, kind
    test = ppl["splits"]["test"]
    for kind in ppl["negative_types"]["test"]:  # 1 from finitely many negatives is no point
        expected = stats.auroc_interval(1.0, int(test["n_valid"]), int(test[f"n_{kind}"]))
        assert ppl["intervals"][f"test.auroc_{kind}"] == [expected.low, expected.high], kind
        assert expected.low < 1.0
    pooled = stats.auroc_interval(1.0, int(test["n_valid"]), int(test["n_invalid"]))
    assert ppl["intervals"]["test.auroc"] == [pooled.low, pooled.high]  # not [1, 1]
    assert ppl["intervals"]["test.pair_accuracy"][0] < 1.0
    assert gen["metrics"]["format_validity"] == 1.0
    assert gen["metrics"]["rule_validity"] == 1.0
    assert ppl["canonical"] == {} and "oracle" in ppl["canonical_note"]
    assert not math.isnan(ppl["splits"]["test"]["excess_nll_string_mean"])


def _canonical_documents(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Held-out documents shaped like the default's 100: 20-220 tokens, about 7.6 nats a
    token, longer documents a little easier."""
    tokens = np.clip(np.round(rng.gamma(4.0, 24.0, n)), 20, 220)
    per_token = 7.6 - 0.004 * (tokens - 90) + rng.normal(0.0, 0.55, n)
    return pd.DataFrame({"n_tokens": tokens, "logprob": -per_token * tokens})


def test_canonical_perplexity_interval_covers():
    """The bootstrap over documents of a ratio of sums (the per-document percentile
    bootstrap covered 94.3-94.8 % with the default's real documents as the population)."""
    rng = np.random.default_rng(16)
    population = _canonical_documents(rng, 1_000_000)
    truth = math.exp(-population["logprob"].sum() / population["n_tokens"].sum())
    trials, hits = 2000, 0
    for _ in range(trials):
        docs = _canonical_documents(rng, 100)
        point = metrics.canonical_metrics(docs)
        low, high = evaluation.bootstrap_intervals(point, docs, metrics.canonical_metrics,
                                                   list(range(100)), rng, 200)[
            "canonical_perplexity"]
        hits += low <= truth <= high
    assert 0.93 <= hits / trials <= 0.97
