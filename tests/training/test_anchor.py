"""The type-based L2-SP anchor: which parameters it spares, and the exact decoupled pull."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from metaexamples.training.anchor import L2SPAnchor, anchor_exclusions, is_norm_module


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
