"""Sampling strings from a model after the opening tag, and judging them.

Sampling with top-p below 1 and no terminator leaves almost no sample a well-formed
string, so every prompt is ``[EOS] <gK>`` (identical, so the
batch needs no padding), sampling uses the full distribution at temperature 1, and each
sequence stops as soon as its decoded continuation contains the closing tag (or it emits
EOS, or reaches `max_new_tokens`). Finished sequences are dropped from the batch and
from the KV cache, so compute goes only to unfinished ones. A `torch.Generator` makes
the draw reproducible.

The samples are judged, and their rates measured, in `judging`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from metaexamples.grammar.documents import close_tag, open_tag
from metaexamples.models import model_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One generated string: the opening tag plus the decoded continuation."""

    text: str
    n_new_tokens: int
    stop: str  # "close_tag" | "eos" | "max_new_tokens"


def prompt_ids(tokenizer, grammar: str) -> list[int]:
    return [tokenizer.eos_token_id, *tokenizer.encode(open_tag(grammar), add_special_tokens=False)]


def cut_at_close(grammar: str, continuation: str) -> str | None:
    """The continuation up to and including the first closing tag, or None if it has none.

    >>> cut_at_close("g1", " ★ </g1> more")
    ' ★ </g1>'
    """
    tag = close_tag(grammar)
    i = continuation.find(tag)
    return None if i < 0 else continuation[: i + len(tag)]


def categorical(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row from softmax(logits): the full distribution, no top-k/top-p.

    Inverse-CDF sampling (float32 probabilities, float64 cumulative sums, one uniform
    per row, `searchsorted`): exact up to rounding, reproducible with `generator` (a CPU
    generator, so the draw is the same on any device), and much faster on CPU than
    `torch.multinomial` over a 50k vocabulary. A token with probability 0 is never drawn.
    """
    probs = torch.softmax(logits.detach().float(), dim=-1).to("cpu", torch.float64)
    cdf = probs.cumsum(dim=-1)
    u = torch.rand((len(cdf), 1), generator=generator, dtype=torch.float64) * cdf[:, -1:]
    draw = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    return draw.clamp_(max=cdf.shape[-1] - 1)


@torch.inference_mode()
def sample_batch(
    model,
    tokenizer,
    grammar: str,
    batch_size: int,
    max_new_tokens: int,
    generator: torch.Generator,
    temperature: float = 1.0,
) -> list[Sample]:
    """`batch_size` samples from one KV-cached loop; each stops at the closing tag."""
    device = model_device(model)
    prompt = torch.tensor([prompt_ids(tokenizer, grammar)] * batch_size, device=device)
    eos = tokenizer.eos_token_id
    out = model(input_ids=prompt, use_cache=True)
    cache, logits = out.cache, out.logits[:, -1]
    alive = list(range(batch_size))  # original row of each batch position
    tokens: list[list[int]] = [[] for _ in range(batch_size)]
    done: dict[int, Sample] = {}
    for step in range(max_new_tokens):
        nxt = categorical(logits / temperature, generator)
        keep: list[int] = []
        for pos, row in enumerate(alive):
            tok = int(nxt[pos])
            if tok == eos:
                done[row] = Sample(_text(tokenizer, grammar, tokens[row]), step + 1, "eos")
                continue
            tokens[row].append(tok)
            cont = tokenizer.decode(tokens[row])
            cut = cut_at_close(grammar, cont)
            if cut is not None:
                done[row] = Sample(open_tag(grammar) + cut, step + 1, "close_tag")
            else:
                keep.append(pos)
        if not keep or step == max_new_tokens - 1:
            alive = [alive[p] for p in keep]
            break
        keep_t = torch.tensor(keep, device=device)
        if len(keep) < len(alive):
            cache.batch_select_indices(keep_t)  # drop finished rows from the KV cache
        alive = [alive[p] for p in keep]
        out = model(input_ids=nxt.to(device)[keep_t].unsqueeze(-1), cache=cache, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1]
    for row in alive:
        done[row] = Sample(_text(tokenizer, grammar, tokens[row]), len(tokens[row]),
                           "max_new_tokens")
    return [done[r] for r in range(batch_size)]


def _text(tokenizer, grammar: str, ids: Sequence[int]) -> str:
    return open_tag(grammar) + tokenizer.decode(list(ids))


def sample_strings(
    model,
    tokenizer,
    grammar: str,
    n: int,
    batch_size: int,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
) -> list[Sample]:
    """`n` samples in batches, reproducible for a given seed and batch size."""
    generator = torch.Generator().manual_seed(seed)
    samples: list[Sample] = []
    with tqdm(total=n, desc=f"sampling {grammar}", unit="sample", leave=False) as bar:
        while len(samples) < n:
            size = min(batch_size, n - len(samples))
            samples += sample_batch(model, tokenizer, grammar, size, max_new_tokens, generator,
                                    temperature)
            bar.update(size)
    return samples
