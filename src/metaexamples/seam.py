"""The prompt/continuation seam: the prompt's tokens must be a prefix of prompt + continuation.

Prompt masking in training and teacher-forced scoring both take the first
``len(tokenize(prompt))`` tokens of the full sequence as the prompt. That is only right when
tokenising the concatenation does not merge the prompt's last characters with the
continuation's first ones: a prompt ending in a space loses it to the continuation (BPE
writes " take" as one token), so the prompt's part would cut a token in two.
`continuation_ids` is the one check every family makes; it imports nothing heavy, so data
generation can run it without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SeamError(ValueError):
    """The prompt's tokens are not a prefix of prompt + continuation, or nothing follows."""


def encode_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` without special tokens.

    Accepts a `tokenizers.Tokenizer` (whose `encode` returns an Encoding) or a Hugging Face
    tokenizer such as `transformers.PreTrainedTokenizerFast` (whose `encode` returns ids).
    """
    encoded = tokenizer.encode(text, add_special_tokens=False)
    return [int(i) for i in getattr(encoded, "ids", encoded)]


def continuation_ids(
    prefix_ids: Sequence[int],
    full_ids: Sequence[int],
    *,
    where: str,
    prefix_text: str | None = None,
    continuation_text: str | None = None,
) -> tuple[int, ...]:
    """The ids of `full_ids` after `prefix_ids`, which must be its prefix.

    Raises `SeamError` naming `where` (and, when given, the texts around the seam) when
    `prefix_ids` is not a prefix of `full_ids` or when nothing follows it.

    >>> continuation_ids([1, 2], [1, 2, 3], where="row 1")
    (3,)
    """
    n = len(prefix_ids)
    if tuple(full_ids[:n]) != tuple(prefix_ids):
        at = _first_difference(prefix_ids, full_ids)
        texts = ""
        if prefix_text is not None and continuation_text is not None:
            texts = (f"; prompt ends {prefix_text[-20:]!r}, "
                     f"continuation starts {continuation_text[:20]!r}")
        raise SeamError(
            f"{where}: the prompt's tokens are not a prefix of the tokens of prompt + "
            f"continuation (they differ at token {at} of {n}){texts}"
        )
    if len(full_ids) == n:
        what = "" if continuation_text is None else f" {continuation_text!r}"
        raise SeamError(f"{where}: the continuation{what} adds no token after the prompt")
    return tuple(full_ids[n:])


def _first_difference(prefix_ids: Sequence[int], full_ids: Sequence[int]) -> int:
    """The first position where the two differ (the shorter's length if one extends the other)."""
    pairs = zip(prefix_ids, full_ids, strict=False)
    return next((i for i, (a, b) in enumerate(pairs) if a != b), len(full_ids))


def check_seam(tokenizer: Any, prompt: str, answer: str, example: str = "example") -> int:
    """Assert the seam of one example is clean; return the number of prompt tokens.

    Raises `SeamError` naming `example` as `continuation_ids` does.
    """
    prompt_ids = encode_ids(tokenizer, prompt)
    continuation_ids(prompt_ids, encode_ids(tokenizer, prompt + answer), where=example,
                     prefix_text=prompt, continuation_text=answer)
    return len(prompt_ids)
