"""Next-token cross-entropy without the full (tokens × vocabulary) logits.

A causal LM's plain training step materialises the logits of every position, their
float32 copy, the softmax and its gradient: four (tokens × vocabulary) tensors. With a
50 k vocabulary and a small model (tiny-olmo: hidden 64) that projection and its memory
traffic are most of the step on a CPU. `causal_lm_loss` instead runs the base model
(`get_decoder()`) to the final hidden states, keeps only the positions that have a label,
and applies the output projection + cross-entropy chunk by chunk in one autograd Function
that computes the gradients of the hidden states and of the projection while each chunk's
logits are in cache; backward then only scales them. FLOPs are those of the plain path
(no recomputation); peak memory is one chunk's logits. Same loss (mean over labelled
tokens, float32 logits, as transformers' `ForCausalLMLoss`) and gradients to float
rounding: tests/training/test_loss.py checks both against `model(**batch).loss`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from metaexamples.training.encoding import IGNORE_INDEX

CHUNK_TOKENS = 1024  # positions per projection chunk: (1024 × 50 k) float32 logits = 200 MB


class _LinearCrossEntropy(torch.autograd.Function):
    """sum_i CE(hidden_i · Wᵀ + b, target_i), gradients computed during the forward pass."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_tokens):
        fused = not torch.is_autocast_enabled(hidden.device.type)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight, dtype=torch.float32)
        grad_bias = None if bias is None else torch.zeros_like(bias, dtype=torch.float32)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_tokens):
            h = hidden[start : start + chunk_tokens]
            y = targets[start : start + chunk_tokens]
            logits = F.linear(h, weight, bias).float()
            target_logit = logits.gather(1, y[:, None])
            top = logits.amax(dim=1, keepdim=True)
            exp = logits.sub_(top).exp_()  # in place: one (chunk × vocabulary) buffer
            norm = exp.sum(dim=1, keepdim=True)
            total += (top + norm.log() - target_logit).sum()
            # d(sum of CE)/d(logits) = exp / norm − one-hot(y): the 1 / norm goes on the
            # small (chunk × hidden) side of each product, the one-hot is a row lookup.
            exp = exp.to(h.dtype) if fused else exp
            scale = norm.reciprocal().to(h.dtype)
            grad_hidden[start : start + chunk_tokens] = (exp @ weight) * scale - weight[y]
            if fused and grad_weight.dtype == h.dtype:
                grad_weight.addmm_(exp.t(), h * scale)
            else:  # under autocast the product comes in the autocast dtype
                grad_weight += exp.t() @ (h * scale)
            grad_weight.index_add_(0, y, h.to(grad_weight.dtype), alpha=-1.0)
            if grad_bias is not None:
                grad_bias += (exp * scale).sum(0)
                grad_bias.index_add_(0, y, torch.ones_like(y, dtype=grad_bias.dtype),
                                     alpha=-1.0)
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        weight_dtype, bias_dtype = ctx.dtypes
        # in place: the buffers are this call's own, and the weight's is (vocabulary × hidden)
        return (
            grad_hidden.mul_(grad_total.to(grad_hidden.dtype)),
            grad_weight.mul_(grad_total).to(weight_dtype),
            None if grad_bias is None else grad_bias.mul_(grad_total).to(bias_dtype),
            None,
            None,
        )


def supports_chunked_loss(model: nn.Module) -> bool:
    """True for a causal LM whose logits are exactly ``lm_head(decoder(x))``.

    Models that scale or soft-cap their logits (Gemma 2, Cohere) keep the plain path.
    """
    config = getattr(model, "config", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if config is None or not isinstance(head, nn.Linear) or not hasattr(model, "get_decoder"):
        return False
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return False
    return model.get_decoder() is not model


def chunked_causal_lm_loss(
    model: nn.Module, batch: Mapping[str, torch.Tensor], chunk_tokens: int = CHUNK_TOKENS
) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled positions of `batch`
    (``input_ids``, ``labels``, optional ``attention_mask``), as ``model(**batch).loss``."""
    decoder = model.get_decoder()
    hidden = decoder(
        input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"), use_cache=False
    ).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    count = int(keep.sum())
    if count == 0:  # the plain path would return nan (0 / 0)
        return hidden.sum() * 0.0
    head = model.get_output_embeddings()
    total = _LinearCrossEntropy.apply(
        hidden[:, :-1][keep], head.weight, head.bias, targets[keep], chunk_tokens
    )
    return total / count


@torch.no_grad()
def summed_nll(
    model: nn.Module, batch: Mapping[str, torch.Tensor], chunk_tokens: int = CHUNK_TOKENS
) -> tuple[torch.Tensor, int]:
    """Summed next-token NLL (float32) over the labelled positions of `batch`, and their
    number; for evaluation. Chunked like the training loss where the model allows it."""
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    if not supports_chunked_loss(model):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"))
        total = F.cross_entropy(logits.logits[:, :-1].flatten(0, 1).float(), targets.flatten(),
                                ignore_index=IGNORE_INDEX, reduction="sum")
        return total, int(keep.sum())
    hidden = model.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"), use_cache=False
    ).last_hidden_state[:, :-1][keep]
    y = targets[keep]
    head = model.get_output_embeddings()
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    for start in range(0, len(y), chunk_tokens):
        logits = head(hidden[start : start + chunk_tokens]).float()
        target_logit = logits.gather(1, y[start : start + chunk_tokens, None])
        total += (torch.logsumexp(logits, dim=1, keepdim=True) - target_logit).sum()
    return total, len(y)


def causal_lm_loss(model: nn.Module, batch: Mapping[str, torch.Tensor], chunked: bool,
                   chunk_tokens: int = CHUNK_TOKENS) -> torch.Tensor:
    """The training loss of one micro-batch: chunked where `chunked`, else the model's own."""
    if chunked:
        return chunked_causal_lm_loss(model, batch, chunk_tokens)
    return model(**batch).loss
