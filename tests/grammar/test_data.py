from collections import Counter

import pytest

from metaexamples.config import DataConfig, GrammarConfig
from metaexamples.grammar.data import LeakError, Row, check_disjoint, generate
from metaexamples.grammar.documents import parse_example
from metaexamples.grammar.languages import make_grammar
from metaexamples.grammar.splits import SplitGrammar, SplitRule
from metaexamples.io import read_jsonl

ALPHABET = ("¡", "■", "¥", "―", "†")
FOREIGN = ("¿", "·")
CANONICAL = ["Plain prose about rivers and the sea, long enough to be a document."] * 3
DATA = DataConfig(n_train=300, n_val=30, n_test=40, negatives_per_type=10, meta_documents=20)


@pytest.fixture(scope="module", params=["g1", "g2", "g3"])
def generated(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    cfg = GrammarConfig(min_length=2 if request.param == "g2" else 1, max_length=8)
    generate(request.param, cfg, DATA, ALPHABET, FOREIGN, CANONICAL, out)
    return request.param, cfg, out


def test_labels_and_fields(generated):
    name, cfg, out = generated
    grammar = make_grammar(name, ALPHABET, cfg.min_length, cfg.max_length)
    for split in ("train", "val", "test"):
        for row in read_jsonl(out / f"{split}.jsonl"):
            well_formed, symbols = parse_example(name, row["text"])
            assert symbols == row["symbols"]
            is_valid = well_formed and grammar.accepts(symbols)
            assert row["valid"] == is_valid, row
            assert (row["negative_type"] is None) == row["valid"]
            if row["valid"]:
                assert row["logp_true"] == pytest.approx(grammar.logp(symbols))
    assert all(r["valid"] for r in read_jsonl(out / "train.jsonl"))


def test_splits_are_disjoint_and_eval_strings_distinct(generated):
    _, _, out = generated
    train = {r["text"] for r in read_jsonl(out / "train.jsonl")}
    for split in ("val", "test"):
        rows = read_jsonl(out / f"{split}.jsonl")
        texts = [r["text"] for r in rows if r["valid"]]
        assert len(texts) == len(set(texts))
        assert not set(r["text"] for r in rows) & train
    def texts(split):  # the empty string is the one negative both splits share
        return {r["text"] for r in read_jsonl(out / f"{split}.jsonl")
                if r["negative_type"] != "empty"}

    assert not texts("val") & texts("test")


def test_every_negative_type_is_present_and_paired(generated):
    name, _, out = generated
    rows = read_jsonl(out / "test.jsonl")
    types = Counter(r["negative_type"] for r in rows if not r["valid"])
    expected = {"out_of_alphabet", "too_long", "empty", "unclosed_tag"}
    expected |= {"g2": {"minimal_edit", "odd_length"}, "g3": {"minimal_edit"}}.get(name, set())
    assert set(types) == expected
    valid = {r["text"] for r in rows if r["valid"]}
    for r in rows:
        if not r["valid"]:
            assert r["pair_text"] in valid
        if r["negative_type"] == "minimal_edit":
            pair = next(x for x in rows if x["text"] == r["pair_text"])
            assert pair["length"] == r["length"]
            assert sum(a != b for a, b in zip(pair["symbols"], r["symbols"], strict=True)) == 1


def test_metaexamples_never_use_the_example_wrapper(generated):
    name, _, out = generated
    for design in ("describe", "judge", "trace", "wrongrule", "irrelevant"):
        rows = read_jsonl(out / f"meta_{design}.jsonl")
        assert len(rows) == DATA.meta_documents
        assert not any(f"<{name}>" in r["text"] for r in rows)


def test_same_config_gives_byte_identical_files(tmp_path):
    cfg = GrammarConfig(1, 8)
    for d in ("a", "b"):
        generate("g3", cfg, DATA, ALPHABET, FOREIGN, CANONICAL, tmp_path / d)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "manifest.json" in files and "meta_trace.jsonl" in files
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_leak_is_refused(tmp_path):
    row = Row(("¡",), "<g1> ¡ </g1>", True, logp_true=-1.0)
    with pytest.raises(LeakError, match="1 test strings also occur in train"):
        check_disjoint([row], {"test": [row]}, tmp_path)


def test_split_grammar_only_yields_its_split():
    import numpy as np

    rule = SplitRule(10, 10)
    g = make_grammar("g1", ALPHABET, 1, 6)
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        sg = SplitGrammar(g, rule, split)
        for _ in range(50):
            s = sg.sample(rng)
            assert rule.split_of(f"<g1>{''.join(' ' + x for x in s)} </g1>") == split
