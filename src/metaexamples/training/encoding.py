"""Training examples as token ids: prompt/completion pairs, plain documents, padded batches.

Two rules keep the labels right:

- Prompt masking is decided on the tokens of the FULL sequence: the prompt's own tokens
  must be a prefix of ``tokenize(prompt + completion)``; if the seam merges characters
  across the boundary, encoding fails with an error naming the example and the token
  where they differ (`seam.continuation_ids`).
- Padding is masked twice over: ``attention_mask`` is 0 and ``labels`` is -100 on every
  padded position, decided from the sequence lengths, never from token ids (so a tokenizer
  whose pad id equals its EOS id is still correct).

    >>> import torch
    >>> batch = pad_batch([Encoded([5, 6, 7], [-100, 6, 7]), Encoded([5, 8], [-100, 8])], 0)
    >>> batch["attention_mask"].tolist(), batch["labels"].tolist()
    ([[1, 1, 1], [1, 1, 0]], [[-100, 6, 7], [-100, 8, -100]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from metaexamples.seam import continuation_ids

IGNORE_INDEX = -100
EVAL_MAX_TOKENS = 2048  # padded tokens per evaluation batch (bounds the logits' memory)


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]


def encode_prompt_completion(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    completion: str,
    max_len: int,
    *,
    name: str = "example",
    add_eos: bool = True,
) -> Encoded:
    """Tokenise ``prompt + completion`` (+ EOS); labels are -100 on the prompt's tokens.

    No special tokens are added except the trailing EOS (evaluation must tokenise prompts
    the same way: ``add_special_tokens=False``). Raises ValueError naming `name` when the
    prompt's tokens are not a prefix of the full sequence (saying at which token they
    differ), when the completion adds no token, or when the sequence is longer than
    `max_len`.
    """
    return encode_prompt_completions(
        tokenizer, [prompt], [completion], max_len, names=[name], add_eos=add_eos
    )[0]


def encode_prompt_completions(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    max_len: int,
    *,
    names: Sequence[str] | None = None,
    add_eos: bool = True,
) -> list[Encoded]:
    """`encode_prompt_completion` for many examples, with two batched tokenizer calls."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    names = names or [f"example {i + 1}" for i in range(len(prompts))]
    full_texts = [p + c for p, c in zip(prompts, completions, strict=True)]
    prompt_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full_texts, add_special_tokens=False)["input_ids"]
    eos = [tokenizer.eos_token_id] if add_eos else []
    if add_eos and tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token to end completions with")
    out = []
    for name, prompt, completion, p_ids, f_ids in zip(
        names, prompts, completions, prompt_ids, full_ids, strict=True
    ):
        answer = continuation_ids(p_ids, f_ids, where=name, prefix_text=prompt,
                                  continuation_text=completion)
        ids = [*f_ids, *eos]
        if len(ids) > max_len:
            raise ValueError(f"{name}: {len(ids)} tokens, more than the maximum of {max_len}")
        out.append(Encoded(ids, [IGNORE_INDEX] * len(p_ids) + [*answer, *eos]))
    return out


def encode_documents(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_len: int, add_eos: bool = True
) -> list[Encoded]:
    """Plain language-modelling examples (loss on every token), truncated to `max_len`."""
    eos = [tokenizer.eos_token_id] if add_eos else []
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [Encoded(x[:max_len], x[:max_len]) for x in ([*i, *eos] for i in ids) if x]


def pad_batch(examples: Sequence[Encoded], pad_token_id: int | None) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; padding gets attention 0 and label -100."""
    if pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set one before batching")
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        input_ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        attention[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def eval_batches(
    examples: Sequence[Encoded], pad_token_id: int | None, max_tokens: int = EVAL_MAX_TOKENS
) -> list[dict[str, torch.Tensor]]:
    """Padded batches of at most `max_tokens` positions, longest examples first."""
    ordered = sorted(examples, key=lambda e: len(e.input_ids), reverse=True)
    batches, group = [], []
    for e in ordered:
        if group and (len(group) + 1) * len(group[0].input_ids) > max_tokens:
            batches.append(pad_batch(group, pad_token_id))
            group = []
        group.append(e)
    if group:
        batches.append(pad_batch(group, pad_token_id))
    return batches


class PadCollate:
    """Pads prompt/completion examples with the tokenizer's pad id (picklable for workers)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.pad_token_id = tokenizer.pad_token_id

    def __call__(self, examples: list[Encoded]) -> dict[str, torch.Tensor]:
        return pad_batch(examples, self.pad_token_id)
