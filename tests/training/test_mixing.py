"""The training stream: token budgets, packing, determinism, running out of canonical text."""

from __future__ import annotations

import itertools
import json
import logging

import numpy as np
import pytest
import torch

from metaexamples.canonical import offline_documents
from metaexamples.grammar.documents import example_text, meta_text
from metaexamples.training.mixing import (
    META_TOLERANCE,
    MetaShareError,
    Pool,
    build_stream,
    sentence_cuts,
    token_budgets,
)

from ..conftest import REPO

SYMBOLS = ["¡", "■", "¥", "―", "†"]


@pytest.fixture(scope="module")
def canonical_texts(arrow_dir) -> list[str]:
    return [t for _, t in itertools.islice(offline_documents(arrow_dir), 400) if len(t) > 100]


@pytest.fixture(scope="module")
def example_texts() -> list[str]:
    rng = np.random.default_rng(0)
    return [example_text("g1", list(rng.choice(SYMBOLS, size=rng.integers(1, 13))))
            for _ in range(300)]


@pytest.fixture(scope="module")
def meta_texts() -> list[str]:
    body = f"Every string of g1 uses the symbols {' '.join(SYMBOLS)} and has 1 to 12 of them. "
    return [meta_text("describe", "g1", f"Paraphrase {i}. " + body * 2) for i in range(50)]


def _stream(tok, canonical, examples, meta=None, **kw):
    args = {"synthetic_mix_ratio": 0.1, "meta_percent": 0.0, "n_sequences": 40,
            "seq_len": 128, "seed": 0} | kw
    return build_stream(tok, Pool(canonical, "canonical.jsonl"), Pool(examples, "train.jsonl"),
                        Pool(meta, "meta.jsonl") if meta else None, **args)


def test_token_budgets_add_up():
    b = token_budgets(40_960, 0.1, 0.05)
    assert sum(b.values()) == 40_960
    assert b["examples"] + b["meta"] == 4096
    assert b["meta"] == round(4096 * 0.05)


@pytest.mark.parametrize(("ratio", "meta_percent"), [(0.1, 0.0), (0.1, 10.0), (0.05, 50.0),
                                                      (0.3, 10.0), (0.5, 10.0)])
def test_achieved_share_within_one_point(olmo_tokenizer, canonical_texts, example_texts,
                                         meta_texts, ratio, meta_percent):
    s = _stream(olmo_tokenizer, canonical_texts, example_texts, meta_texts,
                synthetic_mix_ratio=ratio, meta_percent=meta_percent)
    m = s.manifest
    assert s.tokens.shape == (40, 128)
    assert abs(m["achieved_synthetic_share"] - ratio) <= 0.01
    tokens = {name: pool["tokens"] for name, pool in m["pools"].items()}
    assert sum(tokens.values()) == 40 * 128
    assert m["achieved_synthetic_share"] == pytest.approx(
        (tokens["examples"] + tokens.get("meta", 0)) / (40 * 128))
    if meta_percent:
        assert tokens["meta"] > 0 and m["pools"]["meta"]["documents"] >= 1
    else:
        assert "meta" not in m["pools"]


def test_stream_is_packed_documents_separated_by_eos(olmo_tokenizer, canonical_texts,
                                                     example_texts):
    s = _stream(olmo_tokenizer, canonical_texts, example_texts)
    flat = s.tokens.flatten().tolist()
    eos = olmo_tokenizer.eos_token_id
    assert olmo_tokenizer.pad_token_id not in flat  # no padding
    pools = s.manifest["pools"]
    drawn = pools["canonical"]["documents"] + pools["examples"]["documents"]
    # every document is followed by EOS, except the last one, which the cut shortens
    assert flat.count(eos) in (drawn - 1, drawn)
    text = olmo_tokenizer.decode(flat)
    assert "<g1>" in text and "</g1>" in text


def test_deterministic_for_a_seed(olmo_tokenizer, canonical_texts, example_texts, meta_texts):
    a = _stream(olmo_tokenizer, canonical_texts, example_texts, meta_texts, meta_percent=10.0)
    b = _stream(olmo_tokenizer, canonical_texts, example_texts, meta_texts, meta_percent=10.0)
    c = _stream(olmo_tokenizer, canonical_texts, example_texts, meta_texts, meta_percent=10.0,
                seed=1)
    assert a.tokens.equal(b.tokens) and a.manifest == b.manifest
    assert not a.tokens.equal(c.tokens)


def test_running_out_of_canonical_is_recorded_and_logged(olmo_tokenizer, canonical_texts,
                                                         example_texts, caplog):
    with caplog.at_level(logging.WARNING, logger="metaexamples.training.mixing"):
        s = _stream(olmo_tokenizer, canonical_texts[:5], example_texts)
    m = s.manifest
    assert m["canonical_repeated"] is True and m["canonical_epochs"] > 1
    assert m["pools"]["canonical"]["repeated"] is True
    assert "canonical.jsonl ran out" in caplog.text
    fresh = _stream(olmo_tokenizer, canonical_texts, example_texts).manifest
    assert fresh["canonical_repeated"] is False and fresh["canonical_epochs"] < 1


def test_tokenizer_is_called_in_batches(olmo_tokenizer, canonical_texts, example_texts):
    calls = []

    class Counting:
        eos_token_id = olmo_tokenizer.eos_token_id

        def __call__(self, texts, **kw):
            calls.append(len(texts))
            return olmo_tokenizer(texts, **kw)

    s = _stream(Counting(), canonical_texts, example_texts)
    documents = sum(p["documents"] for p in s.manifest["pools"].values())
    assert len(calls) <= 4 < documents


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_ratio_outside_open_interval_is_rejected(olmo_tokenizer, canonical_texts,
                                                 example_texts, ratio):
    with pytest.raises(ValueError, match="synthetic_mix_ratio"):
        _stream(olmo_tokenizer, canonical_texts, example_texts, synthetic_mix_ratio=ratio)


def test_bad_pools_are_named(olmo_tokenizer, canonical_texts, example_texts):
    with pytest.raises(ValueError, match="train.jsonl: the examples pool has no"):
        _stream(olmo_tokenizer, canonical_texts, ["", "  "])
    with pytest.raises(ValueError, match="no metaexample file"):
        _stream(olmo_tokenizer, canonical_texts, example_texts, meta_percent=5.0)


def test_small_meta_budgets_are_met_by_cutting_at_a_sentence(olmo_tokenizer, canonical_texts,
                                                            example_texts, meta_texts):
    # 160 x 128 tokens: 1 % of a 10 % synthetic budget is 20 tokens, less than one whole
    # metaexample; a cut after its first sentence meets it
    s = _stream(olmo_tokenizer, canonical_texts, example_texts, meta_texts,
                n_sequences=160, meta_percent=1.0)
    meta = s.manifest["pools"]["meta"]
    assert meta["documents"] == 1 and meta["cut_documents"] == 1
    assert abs(meta["tokens"] / meta["budget_tokens"] - 1) <= META_TOLERANCE
    assert abs(s.manifest["achieved_synthetic_share"] - 0.1) <= 0.01
    cut = [row for row in s.tokens.tolist() if olmo_tokenizer.eos_token_id in row]
    assert any("Paraphrase" in olmo_tokenizer.decode(r) for r in cut)
    # a large budget takes whole documents, and the cut one closes its wrapper
    big = _stream(olmo_tokenizer, canonical_texts, example_texts, meta_texts,
                  n_sequences=160, meta_percent=50.0)
    assert abs(big.manifest["achieved_meta_share_of_synthetic"] - 0.5) <= 0.5 * META_TOLERANCE
    text = olmo_tokenizer.decode(big.tokens.flatten().tolist())
    assert text.count("<meta:describe g1>") == text.count("</meta:describe>")


def test_a_budget_no_sentence_can_meet_fails_before_training(olmo_tokenizer, canonical_texts,
                                                            example_texts, meta_texts):
    with pytest.raises(MetaShareError, match=r"meta.jsonl: the metaexamples get \d+ tokens "
                                             r"against a budget of 3 .*training.max_steps"):
        _stream(olmo_tokenizer, canonical_texts, example_texts, meta_texts,
                n_sequences=4, seq_len=64, meta_percent=10.0)


def test_sentence_cuts_keep_the_wrapper_and_leave_other_text_whole():
    text = meta_text("judge", "g1", "Valid or invalid?\n ■ ¥ is valid\n ¥ is valid")
    cuts = sentence_cuts(text)
    assert cuts[-1] == text and len(cuts) == 3
    assert all(c.startswith("<meta:judge g1> ") and c.endswith(" </meta:judge>") for c in cuts)
    assert sentence_cuts("plain prose. More prose.") == ["plain prose. More prose."]


def test_default_conditions_train_on_distinct_streams(olmo_tokenizer, canonical_texts,
                                                      example_texts):
    """No two default conditions collapse into the same stream (config.yaml's matrix)."""
    from metaexamples.config import load_config
    from metaexamples.grammar.designs import generate_metaexamples
    from metaexamples.grammar.languages import make_grammar

    cfg = load_config(REPO / "config.yaml")
    t = cfg.training.run_settings("g1")
    grammar = make_grammar("g1", SYMBOLS, 1, 12)
    streams = {}
    for name in cfg.experiment.conditions:
        cond = cfg.all_conditions[name]
        meta = None
        if cond.percent:
            docs = generate_metaexamples(cond.design, grammar, cfg.data.meta_documents,
                                         np.random.default_rng(0),
                                         canonical_texts=canonical_texts)
            meta = [d["text"] for d in docs]
        streams[name] = _stream(
            olmo_tokenizer, canonical_texts, example_texts, meta,
            synthetic_mix_ratio=t.synthetic_mix_ratio, meta_percent=cond.percent,
            n_sequences=t.max_steps * t.batch_size * t.gradient_accumulation_steps,
            seq_len=t.max_seq_length)
    manifests = {n: json.dumps(s.manifest["pools"], sort_keys=True) for n, s in streams.items()}
    assert len(set(manifests.values())) == len(manifests), manifests
    for a, b in itertools.combinations(streams, 2):
        assert not torch.equal(streams[a].tokens, streams[b].tokens), (a, b)


def test_config_rejects_a_matrix_whose_metaexamples_cannot_fit():
    from metaexamples.config import Config, ConfigError

    tiny = {"training": {"max_steps": 2, "batch_size": 1, "max_seq_length": 64,
                         "synthetic_mix_ratio": 0.1},
            "experiment": {"conditions": ["examples", "meta_10pct"]}}
    with pytest.raises(ConfigError, match="experiment.conditions: 'meta_10pct' gives its "
                                          "metaexamples 1 tokens"):
        Config.from_dict(tiny)
    Config.from_dict(tiny | {"experiment": {"conditions": ["examples"]}})  # no metaexamples
    Config.from_dict(tiny | {"training": {"max_steps": 20, "batch_size": 1, "max_seq_length": 64,
                                          "synthetic_mix_ratio": 0.1}})  # 13 tokens: may fit
