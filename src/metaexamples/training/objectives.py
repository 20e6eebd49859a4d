"""Prompt/completion training data and the decoupled L2-SP anchor (the Nim family's needs).

Three defects of the seed workspace are designed out here (DESIGN.md §3, Nim 2-4):

- Prompt masking is decided on the tokens of the FULL sequence: the prompt's own tokens
  must be a prefix of ``tokenize(prompt + completion)``; if the seam merges characters
  across the boundary, encoding fails with an error naming the example.
- Padding is masked twice over: ``attention_mask`` is 0 and ``labels`` is -100 on every
  padded position, decided from the sequence lengths, never from token ids (so a tokenizer
  whose pad id equals its EOS id is still correct).
- The anchor toward the initial weights is a decoupled pull applied after the optimizer
  step, ``θ ← θ − lr·λ·(θ − θ₀)``, and which parameters it spares is decided by the type of
  the module that owns them (normalisation layers of any architecture), not by name.

    >>> import torch
    >>> batch = pad_batch([Encoded([5, 6, 7], [-100, 6, 7]), Encoded([5, 8], [-100, 8])], 0)
    >>> batch["attention_mask"].tolist(), batch["labels"].tolist()
    ([[1, 1, 1], [1, 1, 0]], [[-100, 6, 7], [-100, 8, -100]])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from metaexamples.nim.seam import check_seam

IGNORE_INDEX = -100

# Normalisation layers: torch's own, plus architecture-specific classes that do not derive
# from them (transformers' LlamaRMSNorm, OlmoLayerNorm, T5LayerNorm, Qwen2RMSNorm, ...),
# recognised by their class name.
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm, nn.RMSNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._NormBase,
)
_NORM_CLASS = re.compile(r"(Layer|RMS|Group|Batch|Instance)Norm")


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]


def encode_prompt_completion(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    completion: str,
    max_len: int,
    *,
    name: str = "example",
    add_eos: bool = True,
) -> Encoded:
    """Tokenise ``prompt + completion`` (+ EOS); labels are -100 on the prompt's tokens.

    No special tokens are added except the trailing EOS (evaluation must tokenise prompts
    the same way: ``add_special_tokens=False``). Raises ValueError naming `name` when the
    prompt's tokens are not a prefix of the full sequence, when the completion adds no
    token, or when the sequence is longer than `max_len`.
    """
    return encode_prompt_completions(
        tokenizer, [prompt], [completion], max_len, names=[name], add_eos=add_eos
    )[0]


def encode_prompt_completions(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    max_len: int,
    *,
    names: Sequence[str] | None = None,
    add_eos: bool = True,
) -> list[Encoded]:
    """`encode_prompt_completion` for many examples, with two batched tokenizer calls."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    names = names or [f"example {i + 1}" for i in range(len(prompts))]
    full_texts = [p + c for p, c in zip(prompts, completions, strict=True)]
    prompt_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full_texts, add_special_tokens=False)["input_ids"]
    eos = [tokenizer.eos_token_id] if add_eos else []
    if add_eos and tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token to end completions with")
    out = []
    for name, prompt, completion, p_ids, f_ids in zip(
        names, prompts, completions, prompt_ids, full_ids, strict=True
    ):
        n = len(p_ids)
        if f_ids[:n] != p_ids or len(f_ids) == n:
            check_seam(tokenizer, prompt, completion, example=name)  # raises, naming the seam
        ids = [*f_ids, *eos]
        if len(ids) > max_len:
            raise ValueError(f"{name}: {len(ids)} tokens, more than the maximum of {max_len}")
        out.append(Encoded(ids, [IGNORE_INDEX] * n + ids[n:]))
    return out


def encode_documents(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_len: int, add_eos: bool = True
) -> list[Encoded]:
    """Plain language-modelling examples (loss on every token), truncated to `max_len`."""
    eos = [tokenizer.eos_token_id] if add_eos else []
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [Encoded(x[:max_len], x[:max_len]) for x in ([*i, *eos] for i in ids) if x]


def pad_batch(examples: Sequence[Encoded], pad_token_id: int | None) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; padding gets attention 0 and label -100."""
    if pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set one before batching")
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        input_ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        attention[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def is_norm_module(module: nn.Module) -> bool:
    """A normalisation layer of any architecture, decided by the module's type."""
    if isinstance(module, NORM_TYPES):
        return True
    return any(_NORM_CLASS.search(cls.__name__) for cls in type(module).__mro__)


def anchor_exclusions(model: nn.Module, exclude_biases: bool = True) -> set[str]:
    """Names of the parameters the anchor leaves alone.

    Every parameter owned by a normalisation module (see `is_norm_module`) and, with
    `exclude_biases`, every module's own ``bias`` parameter.
    """
    excluded: set[str] = set()
    for module_name, module in model.named_modules():
        norm = is_norm_module(module)
        for pname, param in module.named_parameters(recurse=False):
            if norm or (exclude_biases and param is getattr(module, "bias", None)):
                excluded.add(f"{module_name}.{pname}" if module_name else pname)
    return excluded


class L2SPAnchor:
    """Decoupled L2-SP: after each optimizer step pull θ toward its initial value θ₀.

    ``apply(lr)`` does ``θ ← θ − lr·λ·(θ − θ₀)`` on every anchored parameter, outside the
    optimizer, so Adam's preconditioner does not rescale the pull (a coupled penalty
    added to the loss would be).
    """

    def __init__(self, model: nn.Module, weight: float, *, exclude_biases: bool = True) -> None:
        if weight < 0:
            raise ValueError(f"l2sp_weight: {weight} must be >= 0")
        self.weight = weight
        self.excluded = anchor_exclusions(model, exclude_biases)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named if n not in self.excluded]
        self.params = [p for n, p in named if n not in self.excluded]
        self.initial = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def apply(self, lr: float) -> None:
        if self.weight == 0 or not self.params:
            return
        for param, initial in zip(self.params, self.initial, strict=True):
            param.lerp_(initial, lr * self.weight)

    @torch.no_grad()
    def distance(self) -> float:
        """‖θ − θ₀‖ over the anchored parameters."""
        pairs = zip(self.params, self.initial, strict=True)
        return sum(float(((p - p0).float() ** 2).sum()) for p, p0 in pairs) ** 0.5
