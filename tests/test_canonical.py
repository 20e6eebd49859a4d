import json

import pytest

from metaexamples.canonical import build_corpus, jsonl_documents, offline_documents
from metaexamples.io import DataFileError, read_jsonl


def test_offline_corpus_is_real_text_and_disjoint(arrow_dir, tmp_path):
    manifest = build_corpus(offline_documents(arrow_dir), tmp_path, heldout=50, min_chars=100,
                            source="olmo-offline")
    train = read_jsonl(tmp_path / "train.jsonl")
    heldout = read_jsonl(tmp_path / "heldout.jsonl")
    assert len(heldout) == 50
    assert not {r["text"] for r in train} & {r["text"] for r in heldout}
    assert manifest["splits"]["train"]["characters"] > 1_000_000
    assert {"boolq", "sciq"} <= set(manifest["splits"]["train"]["by_source"])
    assert all(len(r["text"]) >= 100 for r in train)
    assert len({r["text"] for r in train}) == len(train)  # BoolQ repeats passages: deduplicated


def test_corpus_is_deterministic(arrow_dir, tmp_path):
    for d in ("a", "b"):
        build_corpus(offline_documents(arrow_dir), tmp_path / d, heldout=20, min_chars=100,
                     source="olmo-offline")
    for name in ("train.jsonl", "heldout.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_too_small_corpus_is_an_error(tmp_path):
    src = tmp_path / "tiny.jsonl"
    src.write_text(json.dumps({"text": "x" * 500}) + "\n")
    with pytest.raises(DataFileError, match="gave 1 documents"):
        build_corpus(jsonl_documents(src), tmp_path / "out", heldout=5, min_chars=100,
                     source=str(src))
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_corrupt_jsonl_names_the_line(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "fine"}\n{"text": "trunc')
    with pytest.raises(DataFileError, match=r"bad.jsonl:2: not valid JSON"):
        list(jsonl_documents(src))
