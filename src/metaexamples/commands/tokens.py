"""Select the synthetic alphabet from the model's tokenizer (data/tokens.json + audit)."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from metaexamples.io import write_json, write_text

RESERVE = 3  # extra qualifying symbols, used only for out-of-alphabet negatives


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-id", required=True,
                        help="model directory (or hub id) whose tokenizer to scan")
    parser.add_argument("--size", type=int, default=5)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--prefer-non-ascii", action="store_true",
                       help="rank non-ASCII symbols before ASCII ones")
    group.add_argument("--ascii-fallback", action="store_true",
                       help="use ASCII punctuation only")
    parser.add_argument("--no-screen-undertrained", action="store_true",
                        help="skip the embedding-norm screen for pretrained models")
    parser.add_argument("--out", type=Path, default=Path("data/tokens.json"))
    parser.add_argument("--audit", type=Path, default=Path("data/tokens_audit.tsv"))


def ranking_of(args: argparse.Namespace) -> str:
    if args.prefer_non_ascii:
        return "prefer-non-ascii"
    return "ascii-fallback" if args.ascii_fallback else "rarity"


def run(args: argparse.Namespace) -> None:
    from metaexamples.grammar.alphabet import audit_rows, select_alphabet
    from metaexamples.models import load_tokenizer, model_info
    tokenizer = load_tokenizer(args.model_id)
    info = model_info(args.model_id)
    norms = None
    if info.get("pretrained", True) and not args.no_screen_undertrained:
        from metaexamples.models import load_model

        emb = load_model(args.model_id).get_input_embeddings().weight.detach()
        norms = emb.norm(dim=1)[: len(tokenizer)].numpy()
    ranking = ranking_of(args)
    selection = select_alphabet(tokenizer, args.size + RESERVE, ranking, norms)
    chosen, reserve = selection.symbols[: args.size], selection.symbols[args.size :]
    write_json(args.out, {
        "symbols": [c.symbol for c in chosen],
        "ids_alone": [c.id_alone for c in chosen],
        "ids_in_context": [c.id_in_context for c in chosen],
        "scores": [c.rarity for c in chosen],
        "foreign_symbols": [c.symbol for c in reserve],
        "tokenizer": info.get("tokenizer") or getattr(tokenizer, "name_or_path", ""),
        "model": info.get("name", str(args.model_id)),
        "ranking": ranking,
        "embedding_screen": norms is not None,
        "context": "' ' + symbol, after <gK>, between symbols and before ' </gK>'",
    })
    rows = audit_rows(selection)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(args.audit, buf.getvalue())
