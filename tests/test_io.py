import pytest

from metaexamples.io import DataFileError, atomic_path, read_jsonl, stable_hash, write_jsonl


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_replaces_old(tmp_path):
    target = tmp_path / "model"
    for content in ("old", "new"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "w").write_text(content)
    assert (target / "w").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_jsonl_round_trip_and_errors(tmp_path):
    p = tmp_path / "a.jsonl"
    write_jsonl(p, [{"text": "★"}, {"text": "b"}])
    assert read_jsonl(p, required=("text",)) == [{"text": "★"}, {"text": "b"}]
    with pytest.raises(DataFileError, match="missing key"):
        read_jsonl(p, required=("label",))
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(DataFileError, match="e.jsonl: file is empty"):
        read_jsonl(tmp_path / "e.jsonl")


def test_stable_hash_is_fixed():
    # the split of every string depends on this value: it must never change
    assert stable_hash("<g1> a </g1>") == stable_hash("<g1> a </g1>")
    assert stable_hash("abc") == 0xD8BB14D833D59559
