"""The L2-SP anchor toward the initial weights θ₀ (used by Nim fine-tuning).

A decoupled pull applied after the optimizer step, ``θ ← θ − lr·λ·(θ − θ₀)``; which
parameters it spares is decided by the type of the module that owns them (normalisation
layers of any architecture), not by name.
"""

from __future__ import annotations

import re

import torch
from torch import nn

# Normalisation layers: torch's own, plus architecture-specific classes that do not derive
# from them (transformers' LlamaRMSNorm, OlmoLayerNorm, T5LayerNorm, Qwen2RMSNorm, ...),
# recognised by their class name.
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm, nn.RMSNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._NormBase,
)
_NORM_CLASS = re.compile(r"(Layer|RMS|Group|Batch|Instance)Norm")


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
