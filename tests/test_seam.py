"""The one prompt/continuation seam check, on id sequences, toy tokenizers and a real one."""

from __future__ import annotations

import pytest

from metaexamples.seam import SeamError, check_seam, continuation_ids, encode_ids


class WholeStringTokenizer:
    """A toy tokenizer that makes one token of any text: every seam merges."""

    def encode(self, text, add_special_tokens=False):
        return [hash(text) % 1000]


class CharTokenizer:
    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


@pytest.mark.parametrize(
    ("prefix", "full", "expected"),
    [
        ([1, 2], [1, 2, 3], (3,)),
        ([], [7], (7,)),
        ([1, 2], [1, 2, 3, 4, 5], (3, 4, 5)),
        ((1, 2), [1, 2, 3], (3,)),  # any sequences of ints
        ([1, 2], (1, 2, 3), (3,)),
    ],
)
def test_continuation_ids_are_what_follows_the_prefix(prefix, full, expected):
    assert continuation_ids(prefix, full, where="row 1") == expected


@pytest.mark.parametrize(
    ("prefix", "full", "at"),
    [
        ([1, 2, 3], [1, 2, 9, 4], 2),  # a merged last token
        ([1, 2, 3], [9, 2, 3, 4], 0),
        ([1, 2, 3], [1, 2], 2),  # the full sequence stops inside the prefix
        ([1, 2, 3], [], 0),
    ],
)
def test_a_mismatch_names_where_and_the_token(prefix, full, at):
    message = rf"^row 7: .*not a prefix.*\(they differ at token {at} of {len(prefix)}\)$"
    with pytest.raises(SeamError, match=message):
        continuation_ids(prefix, full, where="row 7")


def test_a_mismatch_shows_the_texts_around_the_seam():
    prompt, answer = "x" * 30 + "Your move: ", "take 1 coin" + "y" * 30
    with pytest.raises(SeamError) as err:
        continuation_ids([1, 2], [1, 3], where="row 7", prefix_text=prompt,
                         continuation_text=answer)
    assert str(err.value).endswith(
        f"prompt ends {prompt[-20:]!r}, continuation starts {answer[:20]!r}"
    )


@pytest.mark.parametrize("text", [None, ""])
def test_an_empty_continuation_is_refused(text):
    with pytest.raises(SeamError, match=r"^row 2: the continuation .*adds no token"):
        continuation_ids([1, 2], [1, 2], where="row 2", continuation_text=text)


def test_the_error_is_a_value_error():
    assert issubclass(SeamError, ValueError)


def test_check_seam_with_a_clean_toy_tokenizer():
    assert check_seam(CharTokenizer(), "ab", " c") == 2


def test_check_seam_names_the_example():
    with pytest.raises(SeamError, match=r"row 7: .*\(they differ at token 0 of 1\)"):
        check_seam(WholeStringTokenizer(), "abc", " d", example="row 7")


def test_check_seam_rejects_an_empty_answer():
    with pytest.raises(SeamError, match="x: the continuation '' adds no token"):
        check_seam(CharTokenizer(), "abc", "", example="x")


def test_real_tokenizer_catches_a_trailing_space(olmo_tokenizer):
    prompt = "Now it's Leo's turn."
    ids = encode_ids(olmo_tokenizer, prompt)
    full = encode_ids(olmo_tokenizer, prompt + " take 2 coins")
    assert continuation_ids(ids, full, where="x") == tuple(
        encode_ids(olmo_tokenizer, " take 2 coins")
    )
    assert check_seam(olmo_tokenizer, prompt, " take 2 coins") == len(ids)
    seam = r"prompt ends .*turn\. \W, continuation starts \Wtake 2 coins"
    with pytest.raises(SeamError, match=rf"bad example: .*differ at token \d+ of \d+\); {seam}"):
        check_seam(olmo_tokenizer, prompt + " ", "take 2 coins", example="bad example")
