"""Generate one grammar's train/val/test splits and metaexamples (data/{grammar}/)."""

from __future__ import annotations

import argparse
from pathlib import Path

from metaexamples.commands import add_config_arguments, load_sections
from metaexamples.config import DataConfig, GrammarConfig
from metaexamples.io import DataFileError, read_json, read_jsonl


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--grammar", required=True, choices=("g1", "g2", "g3"))
    parser.add_argument("--tokens", type=Path, default=Path("data/tokens.json"))
    parser.add_argument("--canonical", type=Path, default=Path("data/canonical/train.jsonl"),
                        help="canonical corpus (source of the 'irrelevant' control)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="default: data/{grammar}")


def run(args: argparse.Namespace) -> None:
    from metaexamples.grammar import data
    key = f"grammars.{args.grammar}"
    sections = load_sections(args, {key: GrammarConfig, "data": DataConfig})
    tokens = read_json(args.tokens)
    if not isinstance(tokens, dict) or not tokens.get("symbols"):
        raise DataFileError(f"{args.tokens}: no 'symbols' list")
    canonical = [r["text"] for r in read_jsonl(args.canonical, required=("text",))]
    data.generate(
        args.grammar, sections[key], sections["data"], tokens["symbols"],
        tokens.get("foreign_symbols", []), canonical,
        args.out_dir or Path("data") / args.grammar,
    )
