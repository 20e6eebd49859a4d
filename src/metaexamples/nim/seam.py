"""The prompt/answer seam: the prompt's tokens must be a prefix of prompt + answer.

Prompt masking in training marks the first ``len(tokenize(prompt))`` tokens of the full
sequence as prompt. That is only right when tokenising the concatenation does not merge the
prompt's last characters with the answer's first ones: a prompt ending in a space loses it
to the answer (BPE writes " take" as one token), so the masked prefix would cut a token in
two. `check_seam` proves the seam clean for one example.
"""

from __future__ import annotations

from typing import Any


def encode_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` without special tokens.

    Accepts a `tokenizers.Tokenizer` (whose `encode` returns an Encoding) or a Hugging Face
    tokenizer such as `transformers.PreTrainedTokenizerFast` (whose `encode` returns ids).
    """
    encoded = tokenizer.encode(text, add_special_tokens=False)
    return [int(i) for i in getattr(encoded, "ids", encoded)]


def check_seam(tokenizer: Any, prompt: str, answer: str, example: str = "example") -> int:
    """Assert the seam is clean; return the number of prompt tokens.

    Raises ValueError naming `example` when the prompt's tokens are not a prefix of the
    tokens of ``prompt + answer`` or when the answer adds no token.
    """
    prompt_ids = encode_ids(tokenizer, prompt)
    full_ids = encode_ids(tokenizer, prompt + answer)
    n = len(prompt_ids)
    if full_ids[:n] != prompt_ids:
        pairs = zip(prompt_ids, full_ids, strict=False)
        at = next((i for i, (a, b) in enumerate(pairs) if a != b), len(full_ids))
        raise ValueError(
            f"{example}: the prompt's tokens are not a prefix of prompt + answer "
            f"(they differ at token {at} of {n}); prompt ends {prompt[-20:]!r}, "
            f"answer starts {answer[:20]!r}"
        )
    if len(full_ids) == n:
        raise ValueError(f"{example}: the answer {answer!r} adds no token after the prompt")
    return n
