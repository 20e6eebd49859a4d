"""The L2-SP anchor toward the initial weights θ₀, and the drift ‖θ − θ₀‖ both entries report.

A decoupled pull applied after the optimizer step, ``θ ← θ − lr·λ·(θ − θ₀)``: λ (the
`l2sp_weight`) is the fraction of θ − θ₀ removed per unit of learning rate per step, like
AdamW's decoupled weight decay (which pulls toward 0 instead). Over a run the pull alone
scales a drift by ``Π_t (1 − lr_t·λ) ≈ exp(−λ·Σ_t lr_t)``. Which parameters it spares is
decided by the type of the module that owns them (normalisation layers of any
architecture), not by name; the drift is measured over the same anchored parameters.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
from torch import nn

from metaexamples.models import load_model

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


def anchored_names(model: nn.Module, exclude_biases: bool = True) -> list[str]:
    """Trainable parameters the anchor pulls (and the drift is measured on), in model order."""
    excluded = anchor_exclusions(model, exclude_biases)
    return [n for n, p in model.named_parameters() if p.requires_grad and n not in excluded]


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
        self.names = anchored_names(model, exclude_biases)
        named = dict(model.named_parameters())
        self.params = [named[n] for n in self.names]
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


@torch.no_grad()
def drift(model: nn.Module, initial: nn.Module, names: list[str]) -> float:
    """‖θ − θ₀‖ over the parameters `names` of `model` (θ) and `initial` (θ₀)."""
    now, then = dict(model.named_parameters()), dict(initial.named_parameters())
    total = 0.0
    for n in names:
        delta = now[n].detach().float().cpu() - then[n].detach().float().cpu()
        total += float((delta**2).sum())
    return math.sqrt(total)


def drift_metrics(
    model: nn.Module, base_dir: Path, weight: float, exclude_biases: bool = True
) -> dict[str, object]:
    """What ``train_metrics.json`` says about the anchor: λ, ‖θ − θ₀‖ over the anchored
    parameters (norms and biases aside) and which parameters were left out. θ₀ is read
    back from `base_dir` (on the CPU, once, at the end), so that a run without a pull
    keeps no copy of θ₀ while it trains; the loader maps checkpoint names to parameters."""
    names = anchored_names(model, exclude_biases)
    initial = load_model(base_dir)
    distance = drift(model, initial, names)
    del initial
    return {
        "anchor_weight": weight,
        "anchor_distance": distance,
        "anchor_tensors": len(names),
        "anchor_excluded": sorted(anchor_exclusions(model, exclude_biases)),
    }
