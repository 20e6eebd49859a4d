"""Evaluation: batched greedy decoding, candidate scoring, checkpoints and the outputs."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
import torch

from metaexamples.io import read_json, read_jsonl
from metaexamples.models import load_model, load_tokenizer
from metaexamples.nim import evaluate as ev
from metaexamples.nim.checkpoints import Checkpoint
from metaexamples.nim.generator import generate_experiment
from metaexamples.nim.settings import settings_from_preset
from metaexamples.seam import SeamError


@pytest.fixture(scope="module")
def tokenizer(tiny_neox_dir):
    return load_tokenizer(tiny_neox_dir)


@pytest.fixture(scope="module")
def stops(tokenizer):
    return ev.stop_token_ids(tokenizer)


@pytest.fixture(scope="module")
def rows():
    """Prompts of different lengths (random terminology, two max_remove values)."""
    settings = settings_from_preset(
        "tiny",
        max_remove=[2, 3],
        randomize_terms=True,
        trace_min=1,
        trace_max=4,
        n_train=5,
        n_eval=9,
    )
    return generate_experiment(settings)["eval"]


@pytest.fixture(scope="module")
def model(tiny_neox_dir):
    """The tiny model in float64 with its weights shaken, so outputs depend on the prompt."""
    net = load_model(tiny_neox_dir, dtype=torch.float64).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
    return net


@torch.inference_mode()
def reference_greedy(model, prompt, max_new_tokens, stops):
    """One prompt, no padding, no cache: the full sequence recomputed every step."""
    ids, out = list(prompt), []
    for _ in range(max_new_tokens):
        token = int(model(torch.tensor([ids])).logits[0, -1].argmax())
        out.append(token)
        ids.append(token)
        if token in stops:
            break
    return out


@torch.inference_mode()
def reference_logprob(model, prompt, continuation):
    ids = torch.tensor([list(prompt) + list(continuation)])
    logprobs = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
    n = len(prompt)
    return sum(float(logprobs[n - 1 + k, t]) for k, t in enumerate(continuation))


def test_encode_rows_matches_answers(tokenizer, rows):
    encoded = ev.encode_rows(tokenizer, rows)
    for row, e in zip(rows, encoded, strict=True):
        assert len(e.candidate_ids) == row["max_remove"] + 1
        assert e.candidate_ids[e.gold_index] == e.answer_ids
        assert tokenizer.decode(list(e.answer_ids)) == row["answer"]
        assert tokenizer.decode(list(e.prompt_ids)) == row["prompt"]


def test_encode_rows_rejects_an_answer_that_is_not_its_candidate(tokenizer, rows):
    bad = [{**rows[0], "answer": " take 9 coins"}]
    with pytest.raises(ValueError, match="not candidate"):
        ev.encode_rows(tokenizer, bad)


def test_encode_rows_rejects_a_merging_seam_naming_the_example(tokenizer, rows):
    bad = [{**rows[0], "prompt": rows[0]["prompt"] + " "}]  # the space merges with " take"
    with pytest.raises(SeamError, match=rf"example {rows[0]['id']}: .*differ at token"):
        ev.encode_rows(tokenizer, bad)


def test_stop_ids_cover_eos_and_newlines(tokenizer, stops):
    assert tokenizer.eos_token_id in stops
    assert tokenizer.pad_token_id in stops
    assert tokenizer.encode("\n", add_special_tokens=False)[0] in stops
    assert tokenizer.encode(" take", add_special_tokens=False)[0] not in stops


def test_batched_greedy_equals_one_at_a_time(model, tokenizer, rows, stops):
    prompts = [e.prompt_ids for e in ev.encode_rows(tokenizer, rows)]
    assert len({len(p) for p in prompts}) > 1  # padding is exercised
    pad = tokenizer.pad_token_id
    batched = ev.greedy_generate(model, prompts, 6, stops, pad, batch_size=4)
    single = [ev.greedy_generate(model, [p], 6, stops, pad, batch_size=1)[0] for p in prompts]
    reference = [reference_greedy(model, p, 6, stops) for p in prompts]
    assert batched == single == reference
    assert len({tuple(g) for g in batched}) > 1  # the outputs depend on the prompt


def test_candidate_logprobs_equal_a_direct_computation(model, tokenizer, rows):
    encoded = ev.encode_rows(tokenizer, rows)
    prompts = [e.prompt_ids for e in encoded]
    candidates = [e.candidate_ids for e in encoded]
    scores = ev.candidate_logprobs(model, prompts, candidates, tokenizer.pad_token_id, 5)
    for e, row_scores in zip(encoded, scores, strict=True):
        expected = [reference_logprob(model, e.prompt_ids, c) for c in e.candidate_ids]
        assert row_scores == pytest.approx(expected, abs=1e-8)


@pytest.fixture(scope="module")
def planted(tiny_neox_dir, tokenizer):
    """A model whose next-token distribution is the same everywhere and favours " 2"."""
    net = load_model(tiny_neox_dir, dtype=torch.float64).eval()
    favourite = tokenizer.encode(" 2", add_special_tokens=False)
    assert len(favourite) == 1
    with torch.no_grad():
        net.gpt_neox.final_layer_norm.weight.zero_()
        net.gpt_neox.final_layer_norm.bias.zero_()
        net.gpt_neox.final_layer_norm.bias[0] = 1.0
        net.get_output_embeddings().weight.zero_()
        net.get_output_embeddings().weight[favourite[0], 0] = 20.0
    return net


def test_rank_classification_picks_the_planted_answer(planted, tokenizer, stops):
    # fixed wording: every candidate has three tokens, so only " 2" tells them apart
    settings = settings_from_preset("tiny", max_remove=[2, 3], n_train=5, n_eval=9)
    rows = generate_experiment(settings)["eval"]
    eval_set = ev.load_eval_set(tokenizer, "eval", rows)
    preds = ev.evaluate_set(planted, tokenizer, eval_set, stops, batch_size=4)
    for row, pred in zip(rows, preds, strict=True):
        assert pred["rank_prediction"] == "2"
        assert pred["rank_correct"] == (row["label_move"] == 2)
        assert pred["candidate_probabilities"][1] > 0.99
        assert sum(pred["candidate_probabilities"]) == pytest.approx(1.0)
        assert pred["predicted"].startswith(" 2 2")  # greedy repeats the favourite token
        assert pred["correct"] is False and pred["predicted_label"] is None


def test_evaluate_set_scores_generations_on_token_ids(model, tokenizer, rows, stops, monkeypatch):
    eval_set = ev.load_eval_set(tokenizer, "eval", rows)
    eos = tokenizer.eos_token_id
    enc = eval_set.encoded
    planned = [
        [*enc[0].answer_ids, eos],  # right, then EOS
        list(enc[1].answer_ids),  # right, but no stop within the budget: still a match
        [*enc[2].answer_ids, *tokenizer.encode(" and", add_special_tokens=False)],  # runs on
        [*enc[3].candidate_ids[(enc[3].gold_index + 1) % len(enc[3].candidate_ids)], eos],
    ] + [[eos]] * (len(rows) - 4)
    monkeypatch.setattr(ev, "greedy_generate", lambda *a, **k: planned)
    preds = ev.evaluate_set(model, tokenizer, eval_set, stops, batch_size=4)
    assert [p["correct"] for p in preds[:4]] == [True, True, False, False]
    assert [p["answer_prefix_match"] for p in preds[:4]] == [True, True, True, False]
    assert preds[0]["predicted"] == rows[0]["answer"]
    assert preds[0]["predicted_label"] == preds[0]["gold_label"]
    assert preds[2]["predicted_label"] is None
    assert preds[3]["predicted_label"] not in (None, preds[3]["gold_label"])
    assert all(p["predicted"] == "" for p in preds[4:])
    labels = ["1", "2", "3", "lose"]
    entry = ev.confusion_entry(7, "step-7", "eval", preds, labels)
    assert sum(map(sum, entry["rank"])) == sum(map(sum, entry["generated"])) == len(rows)
    assert sum(row[-1] for row in entry["generated"]) == len(rows) - 3  # "other"
    line = ev.accuracy_row(7, "step-7", "eval", preds)
    assert line["exact_match"] == pytest.approx(2 / len(rows)) and line["exact_correct"] == 2
    golds = Counter(p["gold_label"] for p in preds)
    assert line["majority_rate"] == max(golds.values()) / len(rows)


def test_evaluate_writes_every_output(tiny_neox_dir, tokenizer, rows, tmp_path):
    checkpoints = [Checkpoint(4, tiny_neox_dir, "step-4"),
                   Checkpoint(0, tiny_neox_dir, "base")]  # fmt: skip
    checkpoints.sort(key=lambda c: c.step)
    datasets = {"eval": rows, "eval_small": rows[:3]}
    table = ev.evaluate(checkpoints, datasets, tokenizer, tmp_path, batch_size=4)
    csv = pd.read_csv(tmp_path / "accuracy_table.csv")
    assert list(csv.columns) == list(ev.ACCURACY_COLUMNS)
    assert list(zip(csv["step"], csv["dataset"], strict=True)) == [
        (0, "eval"), (0, "eval_small"), (4, "eval"), (4, "eval_small")
    ]  # fmt: skip
    assert list(csv["n"]) == [len(rows), 3, len(rows), 3]
    assert len(table) == 4
    preds = read_jsonl(tmp_path / "predictions.jsonl")
    assert len(preds) == 2 * (len(rows) + 3)
    assert {"step", "dataset", "correct", "max_remove", "pile", "names"} <= set(preds[0])
    wrong = read_jsonl(tmp_path / "incorrect_predictions.jsonl", allow_empty=True)
    assert len(wrong) == sum(not p["correct"] for p in preds)
    assert all("prompt" in w for w in wrong)
    confusion = read_json(tmp_path / "confusion.json")
    assert confusion["labels"] == ["1", "2", "3", "lose"]
    assert [sum(map(sum, e["rank"])) for e in confusion["entries"]] == list(csv["n"])
