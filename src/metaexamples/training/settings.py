"""One training job's settings, whichever family it belongs to: `RunSettings`.

The config resolves them once, when it is validated at plan time
(`config.TrainingConfig.run_settings` for a grammar run, `config.NimTrainingConfig.run_settings`
for a Nim run); the workflow hands them to the job as JSON (`to_json`), and the job rebuilds
them (`from_json`) and takes them as given: every check lives in the config, which names the
key a user wrote.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunSettings:
    """Everything `lifecycle.TrainingRun` and `loop.train_loop` read."""

    max_steps: int  # optimizer steps
    learning_rate: float
    batch_size: int  # sequences (grammar) or examples (Nim) per micro-batch and process
    adam_betas: tuple[float, float]
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # cosine decays to learning_rate * min_lr_ratio
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    log_steps: int = 10
    eval_steps: int = 0  # 0: evaluate only at the end
    save_steps: int = 0  # 0: never call the save hook
    l2sp_weight: float = 0.0
    precision: str = "auto"  # auto | bf16 | fp32
    gradient_checkpointing: bool = False
    compile: bool = False
    chunked_loss: bool = True  # `loss.causal_lm_loss` where the model and launch allow it
    fused_optimizer: bool = True  # False: torch's per-tensor AdamW (bench/train_cpu_peak.py)
    # the data: grammar runs pack a stream, Nim runs pass over their examples `epochs` times
    max_seq_length: int | None = None  # packed length; Nim: longest example (None: the model's)
    epochs: int = 0
    synthetic_mix_ratio: float = 0.0  # the synthetic share of a packed stream's tokens
    eval_documents: int = 0  # held-out canonical documents scored at every evaluation

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSettings:
        """Rebuild settings that `to_dict` wrote; a missing or unknown key is an error.

        >>> s = RunSettings(max_steps=3, learning_rate=0.1, batch_size=2, adam_betas=(0.9, 0.95))
        >>> RunSettings.from_json(s.to_json()) == s
        True
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"run settings: unknown keys {unknown}")
        try:
            settings = cls(**data)
        except TypeError as err:  # a required key is missing
            raise ValueError(f"run settings: {err}") from err
        return dataclasses.replace(settings, adam_betas=tuple(settings.adam_betas))

    @classmethod
    def from_json(cls, text: str) -> RunSettings:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"--settings: not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"--settings: expected a JSON object, got {text[:60]!r}")
        return cls.from_dict(data)
