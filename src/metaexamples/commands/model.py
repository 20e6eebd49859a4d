"""Write the base model directory (safetensors + tokenizer) for the configured model."""

from __future__ import annotations

import argparse
from pathlib import Path

from metaexamples.commands import add_config_arguments, load_sections
from metaexamples.config import ModelConfig


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--model", default=None,
                        help="override model.name: a preset or a hub id / local path")
    parser.add_argument("--tokenizer-json", type=Path, default=None,
                        help="tokenizer for the tiny-* presets")
    parser.add_argument("--gguf", type=Path, default=None, help="GGUF file for smollm2-135m")
    parser.add_argument("--out-dir", type=Path, required=True)


def run(args: argparse.Namespace) -> None:
    from metaexamples.models import prepare_model
    cfg: ModelConfig = load_sections(args, {"model": ModelConfig})["model"]
    prepare_model(args.model or cfg.name, args.out_dir, arch=cfg.tiny, init_seed=cfg.init_seed,
                  tokenizer_json=args.tokenizer_json, gguf=args.gguf)
