"""Metaexample generators: format, determinism, diversity, and correctness of content."""

from __future__ import annotations

import doctest
import importlib
import re
from collections import Counter

import numpy as np
import pytest

from metaexamples.grammar.designs import (
    EMPTY_STRING,
    Restricted,
    generate_metaexamples,
    parse_judgements,
    symbol_occurrences_ok,
    template_conflicts,
)
from metaexamples.grammar.designs.describe import describe_instances
from metaexamples.grammar.designs.templates import TemplateError, Templates, load
from metaexamples.grammar.designs.wrongrule import WRONG_RULES, WRONG_RULES_FOR, wrongrule_instances
from metaexamples.grammar.documents import (
    GRAMMAR_NAMES,
    META_DESIGNS,
    meta_close_tag,
    meta_open_tag,
)
from metaexamples.grammar.languages import make_grammar

ALPHABET = ("★", "◆", "▲", "●", "■")
FOREIGN = ("✦", "✧")
CANONICAL = (
    "The river flows north through the valley. It was first mapped in 1820.",
    "  Photosynthesis converts light into chemical energy in plants.  ",
    "A glued symbol★ like this passage must be skipped.",
    "So must California✦s faults: a glued foreign symbol (SmolLM2's foreign set has ’).",
)
TEMPLATE_DESIGNS = ("describe", "judge", "trace", "wrongrule")


@pytest.fixture(scope="module", params=GRAMMAR_NAMES)
def grammar(request):
    return make_grammar(request.param, ALPHABET, 1, 10)


def generate(design, grammar, n, seed):
    return generate_metaexamples(
        design,
        grammar,
        n,
        np.random.default_rng(seed),
        foreign=FOREIGN,
        canonical_texts=CANONICAL,
    )


@pytest.mark.parametrize("design", META_DESIGNS)
def test_rows_wrapper_and_determinism(design, grammar):
    rows = generate(design, grammar, 20, seed=5)
    assert rows == generate(design, grammar, 20, seed=5)
    assert len(rows) == 20
    for row in rows:
        assert set(row) == {"text", "design", "grammar"}
        assert row["design"] == design and row["grammar"] == grammar.name
        text = row["text"]
        assert text.startswith(meta_open_tag(design, grammar.name) + " ")
        assert text.endswith(" " + meta_close_tag(design))
        for name in GRAMMAR_NAMES:
            assert f"<{name}>" not in text and f"</{name}>" not in text
        assert symbol_occurrences_ok(text, ALPHABET + FOREIGN)
    if design != "irrelevant":
        assert [r["text"] for r in rows] != [r["text"] for r in generate(design, grammar, 20, 6)]


def skeleton(text: str) -> str:
    """The text with every symbol run and number masked out."""
    text = text.replace(EMPTY_STRING, "<S>").replace(EMPTY_STRING.capitalize(), "<S>")
    symbols = "|".join(re.escape(s) for s in ALPHABET + FOREIGN)
    text = re.sub(rf"(?:(?<= )(?:{symbols})(?: |$))+", "<S> ", text)
    return re.sub(r"\d+", "<N>", text)


@pytest.mark.parametrize("design", ["describe", "wrongrule"])
def test_paraphrase_diversity(design, grammar):
    texts = [r["text"] for r in generate(design, grammar, 500, seed=1)]
    skeletons = {skeleton(t) for t in texts}
    assert len(set(texts)) >= 300
    assert len(skeletons) >= 200
    assert not any(s in sk for sk in skeletons for s in ALPHABET)  # masking removed them all


def test_describe_states_alphabet_and_bounds(grammar):
    g = make_grammar(grammar.name, ALPHABET, 2, 12)
    for row in generate("describe", g, 30, seed=2):
        words = row["text"].split()
        assert all(s in words for s in ALPHABET)
        assert "2" in re.findall(r"\d+", row["text"]) and "12" in re.findall(r"\d+", row["text"])


def test_fixed_length_bounds_are_phrased_as_exact():
    g = make_grammar("g3", ALPHABET, 4, 4)
    texts = [r["text"] for r in generate("describe", g, 40, seed=0)]
    assert not any("between 4 and 4" in t or "4 to 4" in t for t in texts)
    assert all("4" in t for t in texts)


def test_describe_instances_are_labelled_correctly(grammar):
    rng = np.random.default_rng(9)
    kinds = Counter()
    for _ in range(100):
        inst = describe_instances(rng, grammar, FOREIGN)
        assert 1 <= len(inst.valid) <= 3 and len(inst.invalid) <= 2
        assert all(grammar.accepts(s) for s, _ in inst.valid)
        assert all(not grammar.accepts(s) and reason for s, reason in inst.invalid)
        kinds.update("foreign" if set(s) & set(FOREIGN) else len(s) for s, _ in inst.invalid)
    assert "foreign" in kinds


@pytest.mark.parametrize("rule_name", sorted(WRONG_RULES))
def test_wrong_rules_sample_follow_and_explain(rule_name):
    rule = WRONG_RULES[rule_name]
    rng = np.random.default_rng(4)
    for n in range(0, 9):
        for _ in range(20):
            s = rule.sample(rng, ALPHABET, n)
            assert s is not None and len(s) == n and set(s) <= set(ALPHABET)
            assert rule.follows(s, ALPHABET), (rule_name, s)
    violators = 0
    for _ in range(200):
        s = [ALPHABET[i] for i in rng.integers(5, size=int(rng.integers(1, 9)))]
        if not rule.follows(s, ALPHABET):
            violators += 1
            assert symbol_occurrences_ok(" " + rule.explain(s, ALPHABET) + " ", ALPHABET)
    assert violators > 20


def test_wrong_rules_differ_from_the_true_rule(grammar):
    assert grammar.name in WRONG_RULES_FOR
    rng = np.random.default_rng(8)
    for rule_name in WRONG_RULES_FOR[grammar.name]:
        rule = WRONG_RULES[rule_name]
        strings = [grammar.sample(rng) for _ in range(200)]
        strings += [rule.sample(rng, ALPHABET, int(rng.integers(1, 11))) for _ in range(200)]
        assert any(grammar.accepts(s) != rule.follows(s, ALPHABET) for s in strings)


def test_wrongrule_instances_follow_the_wrong_rule(grammar):
    rng = np.random.default_rng(10)
    for rule_name in WRONG_RULES_FOR[grammar.name]:
        rule = WRONG_RULES[rule_name]
        for _ in range(30):
            inst = wrongrule_instances(rng, grammar, rule)
            assert inst.valid and all(rule.follows(s, ALPHABET) for s, _ in inst.valid)
            assert all(not rule.follows(s, ALPHABET) for s, _ in inst.invalid)
            lengths = [len(s) for s, _ in inst.valid + inst.invalid]
            assert all(grammar.min_length <= n <= grammar.max_length for n in lengths)


def test_judge_labels_are_correct(grammar):
    rows = generate("judge", grammar, 200, seed=3)
    labels = Counter()
    for row in rows:
        items = parse_judgements(row["text"])
        assert 3 <= len(items) <= 6, row["text"]
        for symbols, is_valid in items:
            assert grammar.accepts(symbols) == is_valid, (row["text"], symbols)
            labels[is_valid] += 1
            if not is_valid and grammar.name != "g1":  # hard negatives: minimal edits
                assert set(symbols) <= set(ALPHABET)
                assert grammar.min_length <= len(symbols) <= grammar.max_length
                if grammar.name == "g2":
                    assert sum(c % 2 for c in Counter(symbols).values()) == 2
    share = labels[True] / (labels[True] + labels[False])
    assert 0.4 < share < 0.6


def test_judge_can_render_the_empty_string():
    g = make_grammar("g1", ALPHABET, 2, 4)
    items = [it for r in generate("judge", g, 60, seed=1) for it in parse_judgements(r["text"])]
    assert ([], False) in items
    assert all(g.accepts(s) == ok for s, ok in items)


def test_parse_judgements_formats():
    body = "Valid or invalid?\n ★ ★ : grammatical\n Is ◆ in g2? no\n String ★ ◆ verdict reject"
    assert parse_judgements(body) == [(["★", "★"], True), (["◆"], False), (["★", "◆"], False)]
    assert parse_judgements(" The empty string is invalid ") == [([], False)]


STEP_G2 = re.compile(r"step (\d+) : (\S+) → ((?:\S+ (?:odd|even) ?)+)")
STEP_G1 = re.compile(r"step (\d+) : (\S+) → length (\d+)")
PAIR_G3 = re.compile(r"positions (\d+) and (\d+) : (\S+) = (\S+)")
MIDDLE_G3 = re.compile(r"middle position (\d+) : (\S+)")


def test_trace_states_are_correct(grammar):
    for row in generate("trace", grammar, 60, seed=4):
        text = row["text"]
        if grammar.name in ("g1", "g2"):
            steps = (STEP_G2 if grammar.name == "g2" else STEP_G1).findall(text)
            assert [int(s[0]) for s in steps] == list(range(1, len(steps) + 1))
            symbols = [s[1] for s in steps]
            assert grammar.accepts(symbols)
            for t, step in enumerate(steps, start=1):
                prefix = Counter(symbols[:t])
                if grammar.name == "g1":
                    assert int(step[2]) == t
                else:
                    state = step[2].split()
                    assert state[0::2] == list(ALPHABET)
                    parity = ["odd" if prefix[a] % 2 else "even" for a in ALPHABET]
                    assert state[1::2] == parity
        else:
            pairs = PAIR_G3.findall(text)
            middle = MIDDLE_G3.findall(text)
            n = 2 * len(pairs) + len(middle)
            assert grammar.min_length <= n <= grammar.max_length
            assert [(int(i), int(j)) for i, j, _, _ in pairs] == [
                (i + 1, n - i) for i in range(n // 2)
            ]
            assert all(a == b for _, _, a, b in pairs)
            assert [int(m) for m, _ in middle] == ([n // 2 + 1] if n % 2 else [])


def test_irrelevant_wraps_usable_canonical_passages():
    g = make_grammar("g2", ALPHABET, 2, 8)
    rows = generate("irrelevant", g, 30, seed=0)
    bodies = {
        r["text"][len(meta_open_tag("irrelevant", "g2")) + 1 : -len("</meta:irrelevant>") - 1]
        for r in rows
    }
    assert bodies == {CANONICAL[0], CANONICAL[1].strip()}
    with pytest.raises(ValueError, match="canonical_texts"):
        generate_metaexamples("irrelevant", g, 3, np.random.default_rng(0))


def no_leading_square(symbols) -> bool:
    """A stand-in for "is in the training split"."""
    return not symbols or symbols[0] != "■"


def test_allowed_restricts_every_written_string(grammar):
    rng = np.random.default_rng(12)
    kw = {"foreign": FOREIGN, "allowed": no_leading_square}
    for row in generate_metaexamples("judge", grammar, 40, rng, **kw):
        assert all(no_leading_square(s) for s, _ in parse_judgements(row["text"]))
    for row in generate_metaexamples("trace", grammar, 40, rng, **kw):
        first = re.search(r"(?:step 1|positions 1 and \d+|middle position 1) : (\S+)", row["text"])
        assert first is not None and first.group(1) != "■"
    restricted = Restricted(grammar, no_leading_square)
    for _ in range(40):
        inst = describe_instances(rng, restricted, FOREIGN)
        assert all(no_leading_square(s) for s, _ in inst.valid + inst.invalid)
    for rule_name in WRONG_RULES_FOR[grammar.name]:
        inst = wrongrule_instances(rng, grammar, WRONG_RULES[rule_name], no_leading_square)
        assert all(no_leading_square(s) for s, _ in inst.valid + inst.invalid)
    with pytest.raises(ValueError, match="no allowed string"):
        generate_metaexamples("trace", grammar, 1, rng, allowed=lambda s: False)


def test_argument_errors():
    g = make_grammar("g3", ALPHABET, 1, 6)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"unknown metaexample design 'meta'.*'describe'"):
        generate_metaexamples("meta", g, 3, rng)
    with pytest.raises(ValueError, match="non-negative integer"):
        generate_metaexamples("judge", g, -1, rng)
    with pytest.raises(ValueError, match="also in the alphabet"):
        generate_metaexamples("judge", g, 3, rng, foreign=("★",))
    bad = make_grammar("g3", ("★", "→"), 1, 6)
    with pytest.raises(ValueError, match="occur in metaexample prose"):
        generate_metaexamples("describe", bad, 3, rng)
    assert generate_metaexamples("trace", g, 0, rng) == []


def test_template_conflicts():
    assert template_conflicts(ALPHABET + FOREIGN) == []
    assert template_conflicts(["→", "e", "7", "★"]) == ["→", "e", "7"]


@pytest.mark.parametrize(
    "text,ok",
    [
        (" ★ ◆ ★ ", True),
        ("words only", True),
        (" ★ , ◆ . ", True),
        (" ★, ◆ ", False),
        (" (★ ) ", False),
        ("★ ◆ ", False),
        (" ★ ◆", False),
        ("\n★ ", False),
        (" ★\n ", False),
        (" ★★ ", False),
    ],
)
def test_symbol_occurrences_ok(text, ok):
    assert symbol_occurrences_ok(text, ("★", "◆")) is ok


def test_symbol_occurrences_ok_with_nested_symbols():
    assert symbol_occurrences_ok(" ab a ", ("a", "ab"))
    assert not symbol_occurrences_ok(" abc ", ("a", "ab"))


@pytest.mark.parametrize("design", TEMPLATE_DESIGNS)
@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_small_alphabets_and_zero_min_length(design, name):
    for alphabet, lo, hi in [(("★",), 0, 4), (("★", "◆"), 0, 2), (("★", "◆", "▲"), 2, 2)]:
        g = make_grammar(name, alphabet, lo, hi)
        for row in generate(design, g, 15, seed=7):
            assert symbol_occurrences_ok(row["text"], alphabet + FOREIGN)


@pytest.mark.parametrize("module", ["", ".render", ".judge"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(f"metaexamples.grammar.designs{module}"))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ["common", "describe", "wrongrule", "judge", "trace"])
def test_every_design_data_file_ships_and_loads(name):
    templates = load(name)
    assert templates.path.endswith(f"{name}.yaml") and templates.data


def test_a_missing_template_key_is_named_with_its_file():
    broken = Templates("judge.yaml", {"formats": [{"template": "{seq} : {label}", "valid": "ok"}]})
    with pytest.raises(TemplateError, match=r"judge.yaml: missing key 'headers'"):
        broken.strings("headers")
    with pytest.raises(TemplateError, match=r"judge.yaml: formats\[0\] needs string keys"):
        broken.records("formats", ("template", "valid", "invalid"))
