"""Batched teacher-forced scoring against a plain one-string-at-a-time reference."""

from __future__ import annotations

import json
import math

import pytest
import torch

from metaexamples.grammar import scoring
from metaexamples.grammar.documents import (
    example_continuation,
    example_text,
    open_tag,
    symbols_text,
)
from metaexamples.io import DataFileError
from metaexamples.models import load_model, load_tokenizer
from metaexamples.seam import SeamError

SYMBOLS = ["★", "◆", "▲"]


@pytest.fixture(scope="module")
def model_and_tok(tiny_model_dir):
    torch.manual_seed(0)
    return load_model(tiny_model_dir).eval(), load_tokenizer(tiny_model_dir)


def reference_logprob(model, ids: list[int], n_prefix: int) -> float:
    """Sum of log p(token_t | tokens_<t) for t >= n_prefix, one sequence, no padding."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    return float(sum(logp[t - 1, ids[t]] for t in range(n_prefix, len(ids))))


def grammar_strings() -> list[list[str]]:
    return [[], ["★"], ["★", "◆", "◆", "★"], SYMBOLS * 4, ["▲"] * 7, ["◆", "★"]]


def test_encode_prefix_boundary(olmo_tokenizer):
    enc = scoring.encode(olmo_tokenizer, "<g1>", " ★ </g1>", olmo_tokenizer.eos_token_id)
    head = olmo_tokenizer.encode("<g1>", add_special_tokens=False)
    assert enc.ids[0] == olmo_tokenizer.eos_token_id
    assert list(enc.ids[1 : enc.n_prefix]) == head
    assert olmo_tokenizer.decode(list(enc.ids[enc.n_prefix :])) == " ★ </g1>"


def test_encode_refuses_a_merged_boundary(olmo_tokenizer):
    # "ab" + "c": if the prefix's last token merges with the continuation, refuse.
    with pytest.raises(SeamError, match=r"not a prefix.*differ at token"):
        scoring.encode(olmo_tokenizer, "hel", "lo world", None)


def test_batched_scores_match_reference(model_and_tok):
    model, tok = model_and_tok
    seqs = [
        scoring.encode(tok, open_tag("g2"), example_continuation("g2", s), tok.eos_token_id)
        for s in grammar_strings()
    ]
    seqs.append(scoring.encode(tok, open_tag("g2"), symbols_text(["★", "◆"]), tok.eos_token_id))
    batched = scoring.score_encoded(model, seqs, tok.pad_token_id, batch_size=3)
    for enc, got in zip(seqs, batched, strict=True):
        want = reference_logprob(model, list(enc.ids), enc.n_prefix)
        assert got.n_tokens == enc.n_scored
        assert got.logprob == pytest.approx(want, abs=1e-5)
        assert got.perplexity == pytest.approx(math.exp(-want / enc.n_scored), rel=1e-5)


def test_generic_logits_path_matches_reference(model_and_tok, monkeypatch):
    model, tok = model_and_tok
    monkeypatch.setattr(scoring, "_plain_head", lambda model: None)  # e.g. soft-capped logits
    seqs = [scoring.encode(tok, "<g3>", example_continuation("g3", s), tok.eos_token_id)
            for s in grammar_strings()]
    for enc, got in zip(seqs, scoring.score_encoded(model, seqs, tok.pad_token_id), strict=True):
        assert got.logprob == pytest.approx(reference_logprob(model, list(enc.ids),
                                                              enc.n_prefix), abs=1e-5)


def test_normalise_is_exact_on_peaked_logits_whose_tail_underflows():
    # an oracle-like or sharply trained distribution: a few tokens near 0, the rest far below
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(6, 1000, generator=gen) * 5 - 300.0
    z[:, :4] = torch.randn(6, 4, generator=gen)
    targets = torch.tensor([0, 1, 2, 3, 500, 999])  # likely tokens and two in the far tail
    reference = torch.log_softmax(z.double(), dim=-1).gather(-1, targets[:, None]).squeeze(-1)
    got = scoring._normalise_(z.clone(), targets)
    assert torch.allclose(got, reference, rtol=0, atol=1e-6)


def test_batch_size_does_not_change_scores(model_and_tok):
    model, tok = model_and_tok
    seqs = [scoring.encode(tok, "<g1>", example_continuation("g1", s), tok.eos_token_id)
            for s in grammar_strings()]
    one = scoring.score_encoded(model, seqs, tok.pad_token_id, batch_size=1)
    many = scoring.score_encoded(model, seqs, tok.pad_token_id, batch_size=64)
    for a, b in zip(one, many, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-5)


def test_document_scoring_truncates_and_matches_reference(model_and_tok):
    model, tok = model_and_tok
    docs = ["The quick brown fox jumps over the lazy dog. " * 20, "A short one."]
    seqs = [scoring.encode_document(tok, d, tok.eos_token_id, max_length=40) for d in docs]
    assert len(seqs[0].ids) == 40
    scores = scoring.score_encoded(model, seqs, tok.pad_token_id, max_batch_tokens=50)
    for enc, got in zip(seqs, scores, strict=True):
        assert got.logprob == pytest.approx(reference_logprob(model, list(enc.ids), 1), abs=1e-5)
    ppl = scoring.corpus_perplexity(scores)
    total = sum(s.n_tokens for s in scores)
    assert ppl["tokens"] == total
    assert ppl["perplexity"] == pytest.approx(math.exp(-sum(s.logprob for s in scores) / total))


def test_length_sorted_batches_respect_limits():
    lengths = [5, 50, 7, 48, 6, 49]
    batches = scoring.length_sorted_batches(lengths, batch_size=4, max_batch_tokens=100)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) <= 4
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100


def _row(symbols, valid=True, negative_type=None, pair=None, text=None):
    return {"text": text or example_text("g1", symbols), "symbols": symbols, "length":
            len(symbols), "valid": valid, "negative_type": negative_type,
            "logp_true": -3.0 if valid else None, "pair_text": pair}


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_load_eval_split_checks_symbols_and_emptiness(tmp_path):
    good = _write(tmp_path / "test.jsonl", [_row(["★"]), _row(["✿"], False, "out_of_alphabet")])
    assert len(scoring.load_eval_split(good, "g1", {"★", "✿"})) == 2
    with pytest.raises(DataFileError, match="test.jsonl:2: symbol"):
        scoring.load_eval_split(good, "g1", {"★"})
    empty = tmp_path / "val.jsonl"
    empty.write_text("")
    with pytest.raises(DataFileError, match="val.jsonl: file is empty"):
        scoring.load_eval_split(empty, "g1", {"★"})
    with pytest.raises(DataFileError, match="missing.jsonl: file not found"):
        scoring.load_eval_split(tmp_path / "missing.jsonl", "g1", {"★"})


def test_score_table_pairs_negatives_with_their_valid_string(model_and_tok):
    model, tok = model_and_tok
    valid = _row(["★", "◆"])
    neg = _row(["★", "★", "★", "★", "★", "★"], False, "too_long", pair=valid["text"])
    unclosed = _row(["★", "◆"], False, "unclosed_tag", pair=valid["text"],
                    text="<g1>" + symbols_text(["★", "◆"]))
    rows = [valid, neg, unclosed]
    scores = scoring.score_encoded(model, scoring.encode_eval_rows(tok, "g1", rows),
                                   tok.pad_token_id)
    table = scoring.score_table(rows, scores, "test")
    assert table[1]["pair_logprob"] == table[0]["logprob"]
    assert table[2]["pair_logprob"] == table[0]["logprob"]
    assert table[0]["excess_nll"] == pytest.approx(-3.0 - table[0]["logprob"])
    # the unclosed string ends with end-of-text where its partner has the closing tag
    assert table[2]["n_tokens"] == table[0]["n_tokens"] - len(
        tok.encode(" </g1>", add_special_tokens=False)) + 1
    assert [r["cluster"] for r in table] == [valid["text"]] * 3
