"""The training stream: token budgets, packing, determinism, running out of canonical text."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from metaexamples.canonical import offline_documents
from metaexamples.grammar.documents import example_text, meta_text
from metaexamples.training.mixing import Pool, build_stream, token_budgets

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


@pytest.mark.parametrize(("ratio", "meta_percent"), [(0.1, 0.0), (0.1, 10.0), (0.05, 5.0),
                                                      (0.3, 10.0), (0.5, 1.0)])
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


def test_small_meta_budgets_round_to_whole_documents(olmo_tokenizer, canonical_texts,
                                                     example_texts, meta_texts, caplog):
    # config.yaml's size: 40 steps x 4 x 128 tokens; 1 % of a 10 % synthetic budget is
    # 20 tokens, less than one metaexample, which is still drawn (it fits the budget) and
    # the overshoot is reported
    with caplog.at_level(logging.WARNING, logger="metaexamples.training.mixing"):
        s = _stream(olmo_tokenizer, canonical_texts, example_texts, meta_texts,
                    n_sequences=160, meta_percent=1.0)
    assert s.manifest["pools"]["meta"]["documents"] == 1
    assert abs(s.manifest["achieved_synthetic_share"] - 0.1) <= 0.01
    assert "meta.jsonl: 1 metaexample document(s)" in caplog.text
    assert "against a target of 1.0 %" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="metaexamples.training.mixing"):  # on target
        _stream(olmo_tokenizer, canonical_texts, example_texts, meta_texts,
                n_sequences=160, meta_percent=50.0)
    assert "metaexample" not in caplog.text
    # a run so short that no metaexample fits its whole synthetic budget gets none, says so,
    # and keeps the synthetic share
    with caplog.at_level(logging.WARNING, logger="metaexamples.training.mixing"):
        tiny = _stream(olmo_tokenizer, canonical_texts, example_texts, meta_texts,
                       n_sequences=4, seq_len=64, meta_percent=10.0)
    assert tiny.manifest["pools"]["meta"]["documents"] == 0
    assert "meta.jsonl: no metaexample fits" in caplog.text
    longest = max(len(ids) + 1 for ids in olmo_tokenizer(example_texts)["input_ids"])
    # whole documents: off by at most half an example document
    assert abs(tiny.manifest["achieved_synthetic_share"] - 0.1) <= longest / 2 / 256
