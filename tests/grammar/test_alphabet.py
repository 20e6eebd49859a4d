import unicodedata

import numpy as np
import pytest

from metaexamples.grammar.alphabet import (
    AlphabetError,
    check_in_context,
    grapheme_problem,
    scan_vocabulary,
    select_alphabet,
)
from metaexamples.grammar.designs import template_conflicts
from metaexamples.grammar.documents import example_text


@pytest.fixture(scope="module")
def selection(olmo_tokenizer):
    return select_alphabet(olmo_tokenizer, 5)


def test_selected_symbols_are_one_token_in_every_document_context(olmo_tokenizer, selection):
    symbols = [c.symbol for c in selection.symbols]
    ids = {c.symbol: c.id_in_context for c in selection.symbols}
    for grammar in ("g1", "g2", "g3"):
        head = olmo_tokenizer.encode(f"<{grammar}>", add_special_tokens=False)
        tail = olmo_tokenizer.encode(f" </{grammar}>", add_special_tokens=False)
        for a in symbols:
            for b in symbols:
                seq = [a, b, a]
                got = olmo_tokenizer.encode(example_text(grammar, seq), add_special_tokens=False)
                assert got == head + [ids[s] for s in seq] + tail
    for c in selection.symbols:
        assert olmo_tokenizer.decode([c.id_alone]) == c.symbol
        assert grapheme_problem(c.symbol) == ""
        assert unicodedata.category(c.symbol)[0] not in "LNMZC"


def test_rejects_symbols_that_split_in_context(olmo_tokenizer, selection):
    # '★' is one token alone? Whatever it is alone, with a leading space it splits into 3
    # byte-level tokens with the OLMo tokenizer, so it must never be selected.
    assert len(olmo_tokenizer.encode(" ★", add_special_tokens=False)) > 1
    audit = {c.symbol: c for c in selection.audit}
    assert "★" not in {c.symbol for c in selection.symbols}
    for c in selection.audit:
        if c.qualified:
            assert len(olmo_tokenizer.encode(" " + c.symbol, add_special_tokens=False)) == 1
    # every rejection has a reason, and letters/digits/marks are rejected as such
    assert all(c.reason for c in selection.audit if c.symbol not in
               {s.symbol for s in selection.symbols} and not c.qualified)
    assert "unicode category" in audit["a"].reason


def test_grapheme_rules():
    assert grapheme_problem("§") == ""
    assert "Mn" in grapheme_problem("\u0301")  # combining acute accent
    assert grapheme_problem("<") == "tag syntax character"
    assert grapheme_problem("7").startswith("unicode category Nd")
    assert grapheme_problem("é") .startswith("unicode category Ll")
    assert grapheme_problem("ab") == "2 code points"


def test_check_in_context_detects_a_merge(olmo_tokenizer):
    # '-' next to '-' merges into '--'-style tokens in some contexts; a fake id never matches
    assert check_in_context(olmo_tokenizer, "§", -5, "¶", -6).startswith("splits or merges")


def test_rankings(olmo_tokenizer):
    ascii_only = select_alphabet(olmo_tokenizer, 5, "ascii-fallback")
    assert all(c.symbol.isascii() for c in ascii_only.symbols)
    non_ascii = select_alphabet(olmo_tokenizer, 5, "prefer-non-ascii")
    assert not any(c.symbol.isascii() for c in non_ascii.symbols)
    ranked = select_alphabet(olmo_tokenizer, 5, "rarity")
    ids = [c.id_in_context for c in ranked.symbols]
    assert ids == sorted(ids, reverse=True)


def test_too_few_candidates_is_a_clear_error(olmo_tokenizer):
    with pytest.raises(AlphabetError, match=r"only \d+ of \d+ candidate symbols qualify"):
        select_alphabet(olmo_tokenizer, 500)


def test_embedding_screen_drops_undertrained_tokens(olmo_tokenizer, selection):
    norms = np.ones(len(olmo_tokenizer))
    victim = selection.symbols[0]
    norms[victim.id_in_context] = 0.0
    screened = select_alphabet(olmo_tokenizer, 5, embedding_norms=norms)
    assert victim.symbol not in {c.symbol for c in screened.symbols}
    assert "under-trained" in {c.symbol: c for c in screened.audit}[victim.symbol].reason


def test_scan_is_deterministic(olmo_tokenizer):
    a = [(c.symbol, c.reason) for c in scan_vocabulary(olmo_tokenizer)]
    b = [(c.symbol, c.reason) for c in scan_vocabulary(olmo_tokenizer)]
    assert a == b


def test_symbols_of_the_metaexample_prose_are_never_candidates(olmo_tokenizer):
    # SmolLM2's vocabulary ranked '→' among its rarest symbols, and the trace metaexamples
    # write 'step 1 :a→q1': selection must reject such an alphabet, or data generation fails
    audit = {c.symbol: c for c in scan_vocabulary(olmo_tokenizer)}
    prose = [s for s in audit if template_conflicts([s])]
    assert prose  # '=', ':', ';', ... are single tokens in the OLMo vocabulary
    for symbol in prose:
        assert not audit[symbol].qualified
    assert all(not template_conflicts([c.symbol])
               for c in select_alphabet(olmo_tokenizer, 5, "ascii-fallback").symbols)
