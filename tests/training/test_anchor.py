"""The type-based L2-SP anchor: which parameters it spares, and the exact decoupled pull."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from metaexamples.config import ConfigError, NimTrainingConfig
from metaexamples.training.anchor import (
    L2SPAnchor,
    anchor_exclusions,
    anchored_names,
    is_norm_module,
)
from metaexamples.training.prompted import train_prompt_completion


def test_gpt_neox_layer_norms_are_excluded_by_type(tiny_neox_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_neox_dir)
    excluded = anchor_exclusions(model, exclude_biases=False)
    norm_params = {f"{m}.{p}" for m, mod in model.named_modules() if isinstance(mod, nn.LayerNorm)
                   for p, _ in mod.named_parameters(recurse=False)}
    assert norm_params and norm_params == excluded
    # the original project's substring list ("LayerNorm.weight", "bias") missed exactly these:
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


def _nim_run(model_dir, out, weight: float) -> dict:
    rows = [(f"Nim with {n} coins, take 1 to 3. Your move:", f" take {n % 4 or 1} coins")
            for n in range(5, 25)]
    cfg = NimTrainingConfig(epochs=3, batch_size=4, learning_rate=2e-3, l2sp_weight=weight)
    return train_prompt_completion(model_dir, [p for p, _ in rows], [a for _, a in rows],
                                   cfg.run_settings(len(rows)), seed=0, out_dir=out,
                                   checkpoint_root=out.parent / "checkpoints")


def test_an_anchored_run_ends_closer_to_its_start(tiny_neox_dir, tmp_path, restore_threads):
    # 15 steps, Σ lr ≈ 0.016: λ = 20 alone would shrink a drift present from step 0 by
    # 1 − exp(−20·0.016) ≈ 27 % and one accumulated evenly by about half that; the same
    # seed and data unanchored must end at least 8 % farther from θ₀.
    torch.set_num_threads(1)
    free = _nim_run(tiny_neox_dir, tmp_path / "free", 0.0)
    anchored = _nim_run(tiny_neox_dir, tmp_path / "anchored", 20.0)
    assert free["anchor_weight"] == 0.0 and anchored["anchor_weight"] == 20.0
    assert 0 < anchored["anchor_distance"] < 0.92 * free["anchor_distance"]
    # the reported figure is ‖θ − θ₀‖ over the anchored tensors, norms and biases aside
    final = AutoModelForCausalLM.from_pretrained(tmp_path / "anchored" / "final")
    base = AutoModelForCausalLM.from_pretrained(tiny_neox_dir)
    names = anchored_names(base)
    assert len(names) == anchored["anchor_tensors"]
    assert not set(names) & set(anchored["anchor_excluded"])
    trained = dict(final.named_parameters())
    expected = sum(float(((trained[n] - p).detach() ** 2).sum())
                   for n, p in base.named_parameters() if n in names) ** 0.5
    assert anchored["anchor_distance"] == pytest.approx(expected, rel=1e-5)


def test_a_pull_that_would_overshoot_is_a_config_error():
    with pytest.raises(ConfigError, match=r"nim.training.l2sp_weight: 500.0 times learning_rate"):
        NimTrainingConfig(learning_rate=2e-3, l2sp_weight=500.0)
