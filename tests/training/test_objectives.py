"""Prompt masking on the token boundary, padding masks, and the type-based L2-SP anchor."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from metaexamples.training.objectives import (
    IGNORE_INDEX,
    Encoded,
    L2SPAnchor,
    anchor_exclusions,
    encode_prompt_completion,
    encode_prompt_completions,
    is_norm_module,
    pad_batch,
)

PROMPT = "Leo and Sultan play Nim with 9 coins; each takes 1 to 3. What should Leo do?"


def test_labels_mask_exactly_the_prompt_tokens(olmo_tokenizer):
    enc = encode_prompt_completion(olmo_tokenizer, PROMPT, " take 1 coin", 256, name="row 1")
    n_prompt = len(olmo_tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    n_answer = len(olmo_tokenizer(" take 1 coin", add_special_tokens=False)["input_ids"])
    assert enc.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert enc.labels[n_prompt:] == enc.input_ids[n_prompt:]
    assert len(enc.input_ids) == n_prompt + n_answer + 1  # + EOS
    assert enc.input_ids[-1] == olmo_tokenizer.eos_token_id
    assert sum(label != IGNORE_INDEX for label in enc.labels) == n_answer + 1


def test_a_merging_seam_is_rejected_naming_the_example(olmo_tokenizer):
    # A trailing space in the prompt merges with the answer's first word (" take").
    with pytest.raises(ValueError, match=r"train.jsonl:7.*not a prefix"):
        encode_prompt_completion(olmo_tokenizer, PROMPT + " ", "take 1 coin", 256,
                                 name="train.jsonl:7")
    with pytest.raises(ValueError, match="adds no token"):
        encode_prompt_completion(olmo_tokenizer, PROMPT, "", 256, name="row 2")


def test_too_long_example_is_named(olmo_tokenizer):
    with pytest.raises(ValueError, match="row 3: .* more than the maximum of 8"):
        encode_prompt_completion(olmo_tokenizer, PROMPT, " take 1 coin", 8, name="row 3")


def test_batched_encoding_matches_single(olmo_tokenizer):
    prompts, answers = [PROMPT, PROMPT.replace("9", "17")], [" take 1 coin", " take 2 coins"]
    batched = encode_prompt_completions(olmo_tokenizer, prompts, answers, 256)
    single = [encode_prompt_completion(olmo_tokenizer, p, a, 256)
              for p, a in zip(prompts, answers, strict=True)]
    assert batched == single


@pytest.mark.parametrize("pad_id", [1, 0])
def test_padding_is_masked_in_attention_and_labels(pad_id):
    # pad id 0 equals a real token id of the first row: masks must come from lengths
    examples = [Encoded([0, 6, 7, 0], [IGNORE_INDEX, 6, 7, 0]), Encoded([5, 8], [IGNORE_INDEX, 8])]
    batch = pad_batch(examples, pad_id)
    assert batch["input_ids"].tolist() == [[0, 6, 7, 0], [5, 8, pad_id, pad_id]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, 7, 0],
                                        [IGNORE_INDEX, 8, IGNORE_INDEX, IGNORE_INDEX]]
    assert int((batch["labels"] != IGNORE_INDEX).sum()) == 4


def test_padding_without_a_pad_token_is_an_error():
    with pytest.raises(ValueError, match="no pad token"):
        pad_batch([Encoded([1], [1])], None)


def test_padded_positions_do_not_change_the_loss(tiny_neox_dir, neox_tokenizer_json):
    from metaexamples.models import load_tokenizer

    tok = load_tokenizer(tiny_neox_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_neox_dir).eval()
    short = encode_prompt_completion(tok, "Nim: 5 coins.", " take 1 coin", 64)
    long = encode_prompt_completion(tok, PROMPT, " take 3 coins", 64)
    alone = model(**pad_batch([short], tok.pad_token_id)).loss
    padded = pad_batch([short, long], tok.pad_token_id)
    logits = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
    labels = padded["labels"][0, 1:]
    row = nn.functional.cross_entropy(logits[0, :-1], labels, ignore_index=IGNORE_INDEX)
    assert row.item() == pytest.approx(alone.item(), abs=1e-4)


def test_gpt_neox_layer_norms_are_excluded_by_type(tiny_neox_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_neox_dir)
    excluded = anchor_exclusions(model, exclude_biases=False)
    norm_params = {f"{m}.{p}" for m, mod in model.named_modules() if isinstance(mod, nn.LayerNorm)
                   for p, _ in mod.named_parameters(recurse=False)}
    assert norm_params and norm_params == excluded
    # the seed's substring list ("LayerNorm.weight", "bias") missed exactly these:
    assert any("input_layernorm.weight" in n for n in excluded)
    assert "gpt_neox.final_layer_norm.weight" in excluded
    with_biases = anchor_exclusions(model, exclude_biases=True)
    assert "gpt_neox.layers.0.attention.query_key_value.bias" in with_biases
    assert "gpt_neox.layers.0.attention.query_key_value.weight" not in with_biases


def test_architecture_specific_norm_classes_are_recognised():
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    model = LlamaForCausalLM(config)
    assert type(model.model.norm).__name__ == "LlamaRMSNorm"
    assert not isinstance(model.model.norm, nn.LayerNorm | nn.RMSNorm)
    assert is_norm_module(model.model.norm)
    excluded = anchor_exclusions(model)
    assert {"model.norm.weight", "model.layers.0.input_layernorm.weight",
            "model.layers.0.post_attention_layernorm.weight"} <= excluded
    assert "model.layers.0.self_attn.q_proj.weight" not in excluded
    assert not is_norm_module(model.model.layers[0].mlp)


def test_pull_moves_parameters_by_exactly_lr_lambda_delta(tiny_neox_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_neox_dir)
    anchor = L2SPAnchor(model, weight=0.5)
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    moved = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # zero gradient: the optimizer itself moves nothing
    lr = 0.1
    anchor.apply(lr)
    for n, p in model.named_parameters():
        if n in anchor.excluded:
            assert torch.equal(p, moved[n]), n
        else:
            expected = moved[n] - lr * 0.5 * (moved[n] - initial[n])
            torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-7)
    assert anchor.distance() < sum(float(((moved[n] - initial[n]) ** 2).sum())
                                   for n in anchor.names) ** 0.5


def test_zero_weight_is_a_no_op(tiny_neox_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_neox_dir)
    anchor = L2SPAnchor(model, weight=0.0)
    head = model.get_output_embeddings().weight
    with torch.no_grad():
        head.add_(1.0)
    before = head.detach().clone()
    anchor.apply(1.0)
    assert torch.equal(head, before)
