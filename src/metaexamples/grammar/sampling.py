"""Sampling strings from a model after the opening tag, and judging them.

Sampling with top-p below 1 and no terminator leaves almost no sample a well-formed
string, so every prompt is ``[EOS] <gK>`` (identical, so the
batch needs no padding), sampling uses the full distribution at temperature 1, and each
sequence stops as soon as its decoded continuation contains the closing tag (or it emits
EOS, or reaches `max_new_tokens`). Finished sequences are dropped from the batch and
from the KV cache, so compute goes only to unfinished ones. A `torch.Generator` makes
the draw reproducible.

Judging a sample (`judge`) separates
- format validity: the wrapper is well formed and every symbol is in the alphabet;
- rule validity: the string is in the language (so also format-valid);
and `chance_rate` gives the rule-validity a random well-formed string would have (at the
generator's length law; `chance_given_lengths` at the samples' own lengths).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from metaexamples.grammar.documents import close_tag, open_tag, parse_example
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


# -- judging samples --------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    well_formed: bool
    format_valid: bool
    rule_valid: bool
    length: int | None  # number of symbols when format-valid


def judge(grammar_obj, text: str) -> Judgement:
    """Format and rule validity of one sampled text under `grammar_obj` (a `Grammar`)."""
    well_formed, symbols = parse_example(grammar_obj.name, text)
    alphabet = set(grammar_obj.alphabet)
    format_valid = well_formed and all(s in alphabet for s in symbols)
    rule_valid = format_valid and grammar_obj.accepts(symbols)
    return Judgement(well_formed, format_valid, rule_valid, len(symbols) if format_valid else None)


def chance_at_length(grammar_obj, length: int) -> float:
    """P(valid) for a uniform random string of `length` alphabet symbols (0 out of bounds).

    >>> from metaexamples.grammar.languages import make_grammar
    >>> g3 = make_grammar("g3", ("a", "b"), 1, 3)
    >>> [chance_at_length(g3, n) for n in (1, 2, 3, 4)]
    [1.0, 0.5, 0.5, 0.0]
    """
    if not grammar_obj.min_length <= length <= grammar_obj.max_length:
        return 0.0
    return grammar_obj.count(length) / len(grammar_obj.alphabet) ** length


def chance_rate(grammar_obj, length_distribution: dict[int, float]) -> float:
    """P(valid) for a uniform random string over the alphabet with length ~ the given law.

    sum_L P(L) * count(L) / k^L.

    >>> from metaexamples.grammar.languages import make_grammar
    >>> g3 = make_grammar("g3", ("a", "b"), 1, 3)
    >>> round(chance_rate(g3, {1: 1 / 3, 2: 1 / 3, 3: 1 / 3}), 4)  # (1 + 1/2 + 1/2) / 3
    0.6667
    """
    return float(sum(p * chance_at_length(grammar_obj, int(n))
                     for n, p in length_distribution.items()))


def length_histogram(lengths: Iterable[int]) -> dict[int, float]:
    counts = Counter(lengths)
    total = sum(counts.values())
    return {n: c / total for n, c in sorted(counts.items())} if total else {}


def total_variation(p: dict[int, float], q: dict[int, float]) -> float:
    """Total variation distance between two distributions over lengths.

    >>> total_variation({1: 0.5, 2: 0.5}, {2: 1.0})
    0.5
    """
    if not p or not q:
        return math.nan
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


def sample_rows(samples: Sequence[Sample], grammar_obj, train_texts: set[str]) -> list[dict]:
    """One JSON-ready row per sample with its judgement."""
    rows = []
    for i, s in enumerate(samples):
        j = judge(grammar_obj, s.text)
        rows.append({
            "index": i,
            "text": s.text,
            "n_new_tokens": s.n_new_tokens,
            "stop": s.stop,
            "well_formed": j.well_formed,
            "format_valid": j.format_valid,
            "rule_valid": j.rule_valid,
            "length": j.length,
            "chance_at_length": (chance_at_length(grammar_obj, j.length)
                                 if j.format_valid else None),
            "in_train": s.text in train_texts,
        })
    return rows


def generation_metrics(rows, length_distribution: dict[int, float]) -> dict[str, float]:
    """Validity, diversity and length statistics of judged samples.

    `rows`: a DataFrame or dict of arrays with the columns of `sample_rows`.
    `novel_fraction` is among rule-valid samples (an invalid sample is trivially novel);
    the length histogram is over format-valid samples. `chance_given_lengths` is the rule
    validity that uniform random symbols would have at the lengths of the format-valid
    samples, so `rule_validity_above_chance` (rule validity given format minus it) is 0 for
    a model that learned the format and its own length law but nothing of the rule.
    """
    fmt = np.asarray(rows["format_valid"], dtype=bool)
    rule = np.asarray(rows["rule_valid"], dtype=bool)
    n, n_fmt, n_rule = len(fmt), int(fmt.sum()), int(rule.sum())
    if n == 0:
        return {"n_samples": 0.0}
    texts = np.asarray(rows["text"], dtype=object)
    in_train = np.asarray(rows["in_train"], dtype=bool)
    stops = np.asarray(rows["stop"], dtype=object)
    lengths = [int(x) for x in np.asarray(rows["length"], dtype=object)[fmt]]
    given_format = n_rule / n_fmt if n_fmt else math.nan
    chance = (float(np.asarray(rows["chance_at_length"], dtype=object)[fmt].astype(float).mean())
              if n_fmt else math.nan)
    return {
        "n_samples": float(n),
        "well_formed_rate": float(np.asarray(rows["well_formed"], dtype=bool).mean()),
        "format_validity": n_fmt / n,
        "rule_validity": n_rule / n,
        "rule_validity_given_format": given_format,
        "chance_given_lengths": chance,
        "rule_validity_above_chance": given_format - chance,
        "distinct_fraction": len(set(texts)) / n,
        "novel_fraction": float((~in_train[rule]).mean()) if n_rule else math.nan,
        "closed_rate": float((stops == "close_tag").mean()),
        "mean_new_tokens": float(np.asarray(rows["n_new_tokens"], dtype=float).mean()),
        "length_tv_distance": total_variation(length_histogram(lengths), length_distribution),
    }
