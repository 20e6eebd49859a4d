"""The chunked output projection + cross-entropy gives the model's own loss and gradients."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma2Config, Gemma2ForCausalLM

from metaexamples.training.encoding import IGNORE_INDEX
from metaexamples.training.loss import chunked_causal_lm_loss, summed_nll, supports_chunked_loss


def _batch(vocab: int) -> dict[str, torch.Tensor]:
    """Three rows: a masked prompt (Nim-like), a right-padded row, a fully labelled row."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (3, 40), generator=g)
    labels, mask = ids.clone(), torch.ones_like(ids)
    labels[0, :25] = IGNORE_INDEX
    mask[1, 28:], labels[1, 28:] = 0, IGNORE_INDEX
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("fixture", ["tied_tiny_model_dir", "tiny_model_dir", "tiny_neox_dir"])
@pytest.mark.parametrize("chunk_tokens", [7, 4096])  # many chunks, one chunk
def test_same_loss_and_gradients_as_the_plain_path(fixture, chunk_tokens, request):
    model = AutoModelForCausalLM.from_pretrained(request.getfixturevalue(fixture)).train()
    twin = copy.deepcopy(model)
    batch = _batch(model.config.vocab_size)
    plain = model(**batch).loss
    plain.backward()
    chunked = chunked_causal_lm_loss(twin, batch, chunk_tokens=chunk_tokens)
    chunked.backward()
    assert chunked.item() == pytest.approx(plain.item(), abs=1e-5)
    expected, got = _grads(model), _grads(twin)
    assert expected.keys() == got.keys()
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_bf16_autocast_stays_within_bf16_rounding(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).train()
    twin = copy.deepcopy(model)
    batch = _batch(model.config.vocab_size)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = model(**batch).loss
        chunked = chunked_causal_lm_loss(twin, batch, chunk_tokens=16)
    plain.backward()
    chunked.backward()
    assert chunked.dtype == torch.float32
    assert chunked.item() == pytest.approx(plain.item(), rel=1e-2)
    head, twin_head = model.get_output_embeddings().weight, twin.get_output_embeddings().weight
    cosine = torch.nn.functional.cosine_similarity(head.grad.flatten(), twin_head.grad.flatten(),
                                                   dim=0)
    assert cosine > 0.99


def test_a_batch_without_labels_gives_zero_not_nan(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).train()
    batch = _batch(model.config.vocab_size)
    batch["labels"] = torch.full_like(batch["labels"], IGNORE_INDEX)
    loss = chunked_causal_lm_loss(model, batch)
    loss.backward()
    assert loss.item() == 0.0


def test_models_that_transform_their_logits_keep_the_plain_path(tiny_model_dir):
    assert supports_chunked_loss(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    config = Gemma2Config(vocab_size=64, hidden_size=16, intermediate_size=32, head_dim=8,
                          num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                          final_logit_softcapping=30.0)
    assert not supports_chunked_loss(Gemma2ForCausalLM(config))


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_neox_dir"])
def test_evaluation_nll_matches_full_logits(fixture, request):
    model = AutoModelForCausalLM.from_pretrained(request.getfixturevalue(fixture)).eval()
    batch = _batch(model.config.vocab_size)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    expected = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX,
        reduction="sum")
    total, count = summed_nll(model, batch, chunk_tokens=7)
    assert count == int((labels != IGNORE_INDEX).sum())
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
