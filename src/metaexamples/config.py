"""The experiment configuration: one frozen dataclass per section, validated once.

The dataclass defaults are the configuration's defaults; `config.yaml` shows them and
`workflow/schemas/config.schema.yaml` repeats them (tests/test_config.py fails when the
three disagree). `load_config` / `Config.from_dict` reject unknown keys, wrong types and
inconsistent values with a `ConfigError` that names the key and the allowed values. The
workflow calls them before any job runs, after the JSON schema; these checks add what a
schema cannot say (min <= max, known condition names, a grammar non-empty within its
bounds, heads dividing the hidden size, a local corpus that exists).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metaexamples.config_files import ConfigError, build, merge_config, plain, read_config_file
from metaexamples.grammar.documents import GRAMMAR_NAMES, META_DESIGNS
from metaexamples.grammar.languages import make_grammar
from metaexamples.models import PRESETS
from metaexamples.nim.experiments import EXPERIMENT_NAME_RE
from metaexamples.training.settings import RunSettings

CANONICAL_OFFLINE = "olmo-offline"
ALPHABET_RANKINGS = ("rarity", "prefer-non-ascii", "ascii-fallback")
PRECISIONS = ("auto", "fp32", "bf16")
CONDITION_DESIGNS = ("none", *META_DESIGNS)
# A run fails when its metaexamples miss their token budget by more than this (relative);
# the shortest possible metaexample (wrapper tags, one short sentence, end-of-text) has at
# least MIN_METAEXAMPLE_TOKENS tokens (15 with the OLMo tokenizer). training/mixing.py.
META_TOLERANCE = 0.25
MIN_METAEXAMPLE_TOKENS = 12


@dataclass(frozen=True)
class TinyArch:
    """Shape of the randomly initialised `tiny-*` presets."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 512
    # Tied, Adam drives the rare symbol rows into one vector as output rows (cosine 0.99
    # after 200 steps) and the model cannot tell its symbols apart (config.yaml).
    tie_word_embeddings: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, bool):
                _positive(value, f"model.tiny.{f.name}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"model.tiny.num_heads: {self.num_heads} does not divide "
                f"model.tiny.hidden_size ({self.hidden_size})"
            )


@dataclass(frozen=True)
class ModelConfig:
    name: str = "tiny-olmo"
    init_seed: int = 0
    tiny: TinyArch = field(default_factory=TinyArch)

    def __post_init__(self) -> None:
        _check_model_name(self.name, "model.name")

    @property
    def is_preset(self) -> bool:
        return self.name in PRESETS


@dataclass(frozen=True)
class CanonicalConfig:
    source: str = CANONICAL_OFFLINE
    heldout_documents: int = 100
    min_chars: int = 100
    max_documents: int = 200_000

    def __post_init__(self) -> None:
        src = self.source
        if not (src == CANONICAL_OFFLINE or src.startswith("hf:") or src.endswith(".jsonl")):
            raise ConfigError(
                f"canonical.source: {src!r} is not one of '{CANONICAL_OFFLINE}', "
                "'hf:<dataset>:<config>' or a path ending in .jsonl"
            )
        if src.startswith("hf:") and len(src.split(":")) != 3:
            raise ConfigError(f"canonical.source: {src!r} must look like hf:<dataset>:<config>")
        if self.local_file is not None and not self.local_file.is_file():
            raise ConfigError(f"canonical.source: {src!r}: no such file")
        _positive(self.heldout_documents, "canonical.heldout_documents")
        _positive(self.max_documents, "canonical.max_documents")
        _non_negative(self.min_chars, "canonical.min_chars")

    @property
    def local_file(self) -> Path | None:
        """The local .jsonl corpus, when the source is one (relative to the working dir)."""
        src = self.source
        return None if src == CANONICAL_OFFLINE or src.startswith("hf:") else Path(src)


@dataclass(frozen=True)
class AlphabetConfig:
    size: int = 5
    ranking: str = "rarity"
    screen_undertrained: bool = True

    def __post_init__(self) -> None:
        if self.size < 2:
            raise ConfigError(f"alphabet.size: {self.size} must be at least 2")
        _choice(self.ranking, ALPHABET_RANKINGS, "alphabet.ranking")


@dataclass(frozen=True)
class GrammarConfig:
    min_length: int = 1
    max_length: int = 12


# Each grammar's own defaults, under whatever `grammars` gives (as Snakemake merges a
# --configfile over config.yaml); g2 has only even lengths, so its shortest string is 2 long.
GRAMMAR_DEFAULTS: dict[str, GrammarConfig] = {
    "g1": GrammarConfig(1, 12),
    "g2": GrammarConfig(2, 12),
    "g3": GrammarConfig(1, 12),
}


@dataclass(frozen=True)
class DataConfig:
    seed: int = 0
    n_train: int = 4000
    n_val: int = 100
    n_test: int = 200
    negatives_per_type: int = 50
    meta_documents: int = 500
    val_percent: int = 10
    test_percent: int = 10

    def __post_init__(self) -> None:
        for key in ("n_train", "n_val", "n_test", "negatives_per_type", "meta_documents"):
            _positive(getattr(self, key), f"data.{key}")
        for key in ("val_percent", "test_percent"):
            if not 0 < getattr(self, key) < 50:
                raise ConfigError(f"data.{key}: {getattr(self, key)} must be in (0, 50)")


@dataclass(frozen=True)
class ConditionConfig:
    design: str = "none"
    percent: float = 0.0


# Predefined conditions: no metaexamples, or `describe` metaexamples at that share of the
# synthetic token budget.
PREDEFINED_CONDITIONS: dict[str, ConditionConfig] = {
    "examples": ConditionConfig("none", 0.0),
    "meta_1pct": ConditionConfig("describe", 1.0),
    "meta_5pct": ConditionConfig("describe", 5.0),
    "meta_10pct": ConditionConfig("describe", 10.0),
}
# The other designs and a control at 10 %, defined for use in experiment.conditions.
DEFAULT_CONDITIONS: dict[str, ConditionConfig] = {
    f"{design}_10pct": ConditionConfig(design, 10.0)
    for design in ("judge", "trace", "wrongrule", "irrelevant")
}


@dataclass(frozen=True)
class ExperimentConfig:
    grammars: tuple[str, ...] = GRAMMAR_NAMES
    conditions: tuple[str, ...] = ("examples", "meta_10pct")
    seeds: tuple[int, ...] = (0,)
    # [condition, reference] pairs compared besides every condition against `examples`
    contrasts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TrainingConfig:
    # one number for every grammar, or grammar -> steps (`steps_for`; why: config.yaml)
    max_steps: int | dict[str, int] = field(
        default_factory=lambda: {"g1": 150, "g2": 100, "g3": 400})
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-3
    weight_decay: float = 0.0
    warmup_steps: int = 10
    max_grad_norm: float = 1.0
    max_seq_length: int = 128
    eval_steps: int = 50
    save_steps: int = 100
    synthetic_mix_ratio: float = 0.9
    eval_documents: int = 16
    precision: str = "auto"
    gradient_checkpointing: bool = False
    compile: bool = False
    gpus: int = 0
    l2sp_weight: float = 0.0
    # AdamW's betas. 0.95, not torch's 0.999: at 0.999 the second moments average over ~1000
    # steps, so the first steps' large gradients keep the step size small long after; 600
    # steps at 0.999 taught the tiny model less of g3 than 400 at 0.95 (docs/default.md).
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95

    def __post_init__(self) -> None:
        _check_max_steps(self.max_steps)
        for key in ("batch_size", "gradient_accumulation_steps", "max_seq_length",
                    "eval_steps", "save_steps", "eval_documents"):
            _positive(getattr(self, key), f"training.{key}")
        if not 0.0 < self.synthetic_mix_ratio < 1.0:
            raise ConfigError(
                f"training.synthetic_mix_ratio: {self.synthetic_mix_ratio} must be in (0, 1)"
            )
        _positive(self.learning_rate, "training.learning_rate")
        _positive(self.max_grad_norm, "training.max_grad_norm")
        for key in ("weight_decay", "warmup_steps", "gpus", "l2sp_weight"):
            _non_negative(getattr(self, key), f"training.{key}")
        _pull_below_one(self.l2sp_weight, self.learning_rate, "training")
        _choice(self.precision, PRECISIONS, "training.precision")
        for key in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"training.{key}: {getattr(self, key)} must be in [0, 1)")

    def steps_for(self, grammar: str | None) -> int:
        """The number of steps `grammar`'s runs train for."""
        if isinstance(self.max_steps, int):
            return self.max_steps
        if grammar is None:
            raise ConfigError(f"training.max_steps: {self.max_steps} is per grammar; name the "
                              "run's grammar (CLI: --grammar) or give one number (--max-steps)")
        if grammar not in self.max_steps:
            raise ConfigError(f"training.max_steps: no entry for {grammar!r} in "
                              f"{self.max_steps}; give one per grammar run, or one number")
        return self.max_steps[grammar]

    def run_settings(self, grammar: str | None) -> RunSettings:
        """These settings as one run of `grammar` trains with them."""
        return RunSettings(
            max_steps=self.steps_for(grammar), learning_rate=self.learning_rate,
            batch_size=self.batch_size, adam_betas=(self.adam_beta1, self.adam_beta2),
            warmup_steps=self.warmup_steps, weight_decay=self.weight_decay,
            max_grad_norm=self.max_grad_norm,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            log_steps=min(10, self.eval_steps), eval_steps=self.eval_steps,
            save_steps=self.save_steps, l2sp_weight=self.l2sp_weight, precision=self.precision,
            gradient_checkpointing=self.gradient_checkpointing, compile=self.compile,
            max_seq_length=self.max_seq_length, synthetic_mix_ratio=self.synthetic_mix_ratio,
            eval_documents=self.eval_documents,
        )


def _check_max_steps(max_steps: int | dict[str, int]) -> None:
    """A positive integer, or one per grammar (a union, so `build` left the types to us)."""
    per_grammar = max_steps if isinstance(max_steps, dict) else {None: max_steps}
    for grammar, steps in per_grammar.items():
        key = "training.max_steps" + (f".{grammar}" if grammar else "")
        if grammar:
            _choice(grammar, GRAMMAR_NAMES, "training.max_steps")
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise ConfigError(f"{key}: expected an integer, got {steps!r}")
        _positive(steps, key)


def _check_seeds(seeds: tuple[int, ...], key: str) -> None:
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{key}: {list(seeds)} must be distinct integers >= 0, at least one")


def _pull_below_one(l2sp_weight: float, learning_rate: float, section: str) -> None:
    """The decoupled L2-SP pull moves θ by lr·λ of θ − θ₀: at 1 or more it overshoots θ₀."""
    if l2sp_weight * learning_rate >= 1:
        raise ConfigError(f"{section}.l2sp_weight: {l2sp_weight} times learning_rate "
                          f"{learning_rate} must be below 1")


@dataclass(frozen=True)
class EvaluationConfig:
    batch_size: int = 64
    samples: int = 200
    max_new_tokens: int = 24
    sample_batch_size: int = 64
    bootstrap_resamples: int = 1000
    # lengths with at most this many valid strings are scored exactly, every string
    exact_max_strings: int = 256
    # learning speed: synthetic tokens until the val excess NLL first falls to this
    speed_threshold_nats: float = 5.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _positive(getattr(self, f.name), f"evaluation.{f.name}")


@dataclass(frozen=True)
class NimTrainingConfig:
    model: str = "tiny-neox"
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 2e-3
    warmup_fraction: float = 0.1
    l2sp_weight: float = 5.0  # see config.yaml: fraction of θ − θ₀ removed per unit lr
    save_every_epochs: int = 1
    eval_batch_size: int = 64
    seeds: tuple[int, ...] = (0,)  # one run each; intervals across them in the summary
    gpus: int = 0  # per training/evaluation job: 0 (CPU) or 1 (the trainer is one process)
    # AdamW's betas: torch's defaults, with which every Nim result so far was measured.
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999

    def __post_init__(self) -> None:
        _check_model_name(self.model, "nim.training.model")
        for key in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"nim.training.{key}: {getattr(self, key)} must be in [0, 1)")
        _check_seeds(self.seeds, "nim.training.seeds")
        if self.gpus not in (0, 1):
            raise ConfigError(f"nim.training.gpus: {self.gpus} must be 0 or 1")
        for key in ("epochs", "batch_size", "save_every_epochs", "eval_batch_size",
                    "learning_rate"):
            _positive(getattr(self, key), f"nim.training.{key}")
        _non_negative(self.l2sp_weight, "nim.training.l2sp_weight")
        _pull_below_one(self.l2sp_weight, self.learning_rate, "nim.training")
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise ConfigError(
                f"nim.training.warmup_fraction: {self.warmup_fraction} must be in [0, 1]"
            )

    def run_settings(self, examples: int) -> RunSettings:
        """These settings for a run on `examples` training examples: `epochs` passes in
        batches of `batch_size`, an evaluation every epoch, the schedule decaying to 0."""
        per_epoch = math.ceil(examples / self.batch_size)
        steps = self.epochs * per_epoch
        return RunSettings(
            max_steps=steps, learning_rate=self.learning_rate, batch_size=self.batch_size,
            adam_betas=(self.adam_beta1, self.adam_beta2),
            warmup_steps=round(self.warmup_fraction * steps), min_lr_ratio=0.0,
            log_steps=max(1, min(10, per_epoch)), eval_steps=per_epoch,
            save_steps=per_epoch * self.save_every_epochs, l2sp_weight=self.l2sp_weight,
            epochs=self.epochs,
        )


@dataclass(frozen=True)
class NimConfig:
    # name -> generator overrides, or false: not run
    experiments: dict[str, dict[str, Any] | bool] = field(default_factory=lambda: {"tiny": {}})
    training: NimTrainingConfig = field(default_factory=NimTrainingConfig)

    def __post_init__(self) -> None:
        from metaexamples.nim.experiments import ExperimentError, resolve_experiment

        for name, entry in self.active_experiments.items():
            if not isinstance(entry, dict):
                raise ConfigError(
                    f"nim.experiments.{name}: expected a mapping of settings (or false: not "
                    f"run), got {entry!r}"
                )
            try:
                resolve_experiment(name, entry)
            except ExperimentError as err:
                where = f"nim.experiments.{name}" + (f".{err.key}" if err.key else "")
                raise ConfigError(f"{where}: {err.detail}") from err


    @property
    def active_experiments(self) -> dict[str, dict[str, Any]]:
        """The experiments to run: every entry but those set to false (a layered config
        switches off an experiment of the one below it that way)."""
        return {name: e for name, e in self.experiments.items() if e is not False}


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    canonical: CanonicalConfig = field(default_factory=CanonicalConfig)
    alphabet: AlphabetConfig = field(default_factory=AlphabetConfig)
    grammars: dict[str, GrammarConfig] = field(default_factory=lambda: dict(GRAMMAR_DEFAULTS))
    data: DataConfig = field(default_factory=DataConfig)
    conditions: dict[str, ConditionConfig] = field(default_factory=lambda: dict(DEFAULT_CONDITIONS))
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    nim: NimConfig = field(default_factory=NimConfig)

    def __post_init__(self) -> None:
        for name, g in self.grammars.items():
            _choice(name, GRAMMAR_NAMES, f"grammars.{name}")
            _check_grammar(name, g, self.alphabet.size)
        for name, cond in self.conditions.items():
            _check_name(name, f"conditions.{name}")
            _choice(cond.design, CONDITION_DESIGNS, f"conditions.{name}.design")
            if not 0.0 <= cond.percent <= 100.0:
                raise ConfigError(
                    f"conditions.{name}.percent: {cond.percent} must be between 0 and 100"
                )
            if (cond.design == "none") != (cond.percent == 0):
                raise ConfigError(
                    f"conditions.{name}: design 'none' goes with percent 0 and only with it"
                )
        for g in self.experiment.grammars:
            _choice(g, GRAMMAR_NAMES, "experiment.grammars")
        steps = [self.training.steps_for(g) for g in self.experiment.grammars]
        known = self.all_conditions
        for c in self.experiment.conditions:
            _check_name(c, "experiment.conditions")
            _choice(c, tuple(known), "experiment.conditions")
            for n in steps:
                _check_meta_budget(c, known[c], self.training, n)
        for i, pair in enumerate(self.experiment.contrasts):
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ConfigError(f"experiment.contrasts[{i}]: {list(pair)} must be two "
                                  "different conditions: [condition, reference]")
            for c in pair:
                _choice(c, tuple(self.experiment.conditions), f"experiment.contrasts[{i}]")
        for key in ("grammars", "conditions", "seeds"):
            values = getattr(self.experiment, key)
            if not values:
                raise ConfigError(f"experiment.{key}: give at least one")
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ConfigError(f"experiment.{key}: {twice} listed more than once")
        if self.model.is_preset and self.model.name.startswith("tiny"):
            limit = self.model.tiny.max_position_embeddings
            if self.training.max_seq_length > limit:
                raise ConfigError(
                    f"training.max_seq_length: {self.training.max_seq_length} is above the "
                    f"model's maximum (model.tiny.max_position_embeddings = {limit})"
                )
        _check_alphabet_size(self.alphabet, self.model.name)

    @property
    def all_conditions(self) -> dict[str, ConditionConfig]:
        """Predefined conditions, overridden or extended by the config's own."""
        return {**PREDEFINED_CONDITIONS, **self.conditions}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Config:
        """The config `data` describes; keys it leaves out take their defaults."""
        data = dict(data or {})
        if isinstance(data.get("grammars"), Mapping):  # every grammar has its own defaults
            defaults = {name: dataclasses.asdict(g) for name, g in GRAMMAR_DEFAULTS.items()}
            given = {str(name): entry for name, entry in data["grammars"].items()}
            data["grammars"] = merge_config(defaults, given)
        return build(cls, data, "")

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))


def model_slug(name: str) -> str:
    """A file-name-safe form of a model name: 'allenai/OLMo-1B-hf' -> 'allenai--OLMo-1B-hf'."""
    return name.replace("/", "--")


def load_config(path: str | Path, *overrides: str | Path) -> Config:
    """The config in `path`, with each of `overrides` merged over it in turn, the way
    `snakemake --configfile` merges its files over the Snakefile's config.yaml."""
    data: dict[str, Any] = {}
    for p in (path, *overrides):
        data = merge_config(data, read_config_file(p))
    return Config.from_dict(data)


def section_from_dict(cls: type, data: dict[str, Any] | None, key: str) -> Any:
    """Build one section dataclass (e.g. a CLI's `--settings` JSON) with the same checks."""
    return build(cls, data or {}, key)


def _choice(value: str, allowed: tuple[str, ...], key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {list(allowed)}")


def _check_name(name: str, key: str) -> None:
    if not EXPERIMENT_NAME_RE.match(name):
        raise ConfigError(
            f"{key}: condition name {name!r} must be letters, digits, '_' or '-' "
            "(it names run folders and is matched as a wildcard)"
        )


def _check_grammar(name: str, settings: GrammarConfig, alphabet_size: int) -> None:
    """Bounds that give the grammar at least one valid string, with the alphabet's size."""
    key = f"grammars.{name}"
    if settings.min_length < 1:
        raise ConfigError(f"{key}.min_length: {settings.min_length} must be >= 1")
    placeholder = tuple(f"s{i}" for i in range(alphabet_size))
    try:  # the grammar checks its own bounds (min <= max, a non-empty language)
        make_grammar(name, placeholder, settings.min_length, settings.max_length)
    except ValueError as err:
        raise ConfigError(f"{key}: min_length, max_length: {err}") from err


def _check_meta_budget(name: str, cond: ConditionConfig, training: TrainingConfig,
                       steps: int) -> None:
    """Reject a condition whose metaexample budget is certain to be missed (the run would
    fail before training): smaller than the shortest metaexample allows, even cut."""
    if cond.percent == 0:
        return
    tokens = (steps * training.batch_size * training.gradient_accumulation_steps
              * training.max_seq_length * max(1, training.gpus))
    budget = round(round(training.synthetic_mix_ratio * tokens) * cond.percent / 100)
    if budget * (1 + META_TOLERANCE) < MIN_METAEXAMPLE_TOKENS:
        raise ConfigError(
            f"experiment.conditions: {name!r} gives its metaexamples {budget} tokens "
            f"({cond.percent:g} % of training.synthetic_mix_ratio x {tokens} tokens), fewer "
            f"than one metaexample needs ({MIN_METAEXAMPLE_TOKENS}); raise training.max_steps, "
            "batch_size, max_seq_length or synthetic_mix_ratio"
        )


def _check_alphabet_size(alphabet: AlphabetConfig, model_name: str) -> None:
    """A preset's tokenizer supplies a known number of symbols per ranking."""
    preset = PRESETS.get(model_name)
    limit = preset.max_alphabet.get(alphabet.ranking) if preset else None
    if limit is not None and alphabet.size > limit:
        raise ConfigError(
            f"alphabet.size: {alphabet.size} is more symbols than the tokenizer of "
            f"{model_name!r} supplies with alphabet.ranking {alphabet.ranking!r} (at most {limit})"
        )


def _positive(value: float, key: str) -> None:
    if value <= 0:
        raise ConfigError(f"{key}: {value} must be positive")


def _non_negative(value: float, key: str) -> None:
    if value < 0:
        raise ConfigError(f"{key}: {value} must be >= 0")


def _check_model_name(name: str, key: str) -> None:
    if name in PRESETS or "/" in name:
        return
    raise ConfigError(
        f"{key}: {name!r} is neither a preset {list(PRESETS)} "
        "nor a hub id or local path (which contain '/')"
    )
