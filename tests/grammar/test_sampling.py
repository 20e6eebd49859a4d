"""Stop-aware KV-cached sampling."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from metaexamples.grammar import sampling
from metaexamples.models import load_model, load_tokenizer

ALPHABET = ("★", "◆", "▲")


@pytest.fixture(scope="module")
def model_and_tok(tiny_model_dir):
    return load_model(tiny_model_dir).eval(), load_tokenizer(tiny_model_dir)


def reference_samples(model, tok, grammar, n, max_new, seed):
    """No cache, no early stop: recompute the whole sequence at every step."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor([sampling.prompt_ids(tok, grammar)] * n)
    with torch.no_grad():
        for _ in range(max_new):
            draw = sampling.categorical(model(input_ids=ids).logits[:, -1], gen)
            ids = torch.cat([ids, draw.unsqueeze(-1)], dim=1)
    return ids[:, -max_new:].tolist()


def test_cached_sampling_matches_full_recompute(model_and_tok):
    model, tok = model_and_tok
    got = sampling.sample_batch(model, tok, "g1", 4, 6, torch.Generator().manual_seed(11))
    want = reference_samples(model, tok, "g1", 4, 6, seed=11)
    assert all(s.stop == "max_new_tokens" for s in got)  # a random model never closes
    assert [s.text for s in got] == ["<g1>" + tok.decode(w) for w in want]


def test_categorical_draws_from_the_full_distribution():
    probs = torch.tensor([0.5, 0.0, 0.3, 0.15, 0.05])
    logits = torch.log(probs).repeat(20000, 1)
    draws = sampling.categorical(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=5).double() / len(draws)
    assert freq[1] == 0  # probability 0 is never drawn
    se = torch.sqrt(probs.double() * (1 - probs.double()) / len(draws))
    assert torch.all((freq - probs.double()).abs() <= 4 * se + 1e-12)  # incl. the 5 % tail
    again = sampling.categorical(logits[:10], torch.Generator().manual_seed(0))
    assert again.tolist() == draws[:10].tolist()


def test_sampling_is_seeded(model_and_tok):
    model, tok = model_and_tok
    a = sampling.sample_strings(model, tok, "g2", 5, 2, 4, seed=3)
    b = sampling.sample_strings(model, tok, "g2", 5, 2, 4, seed=3)
    c = sampling.sample_strings(model, tok, "g2", 5, 2, 4, seed=4)
    assert a == b and a != c and len(a) == 5


class _Cache:
    """Per-row step counters standing in for a KV cache."""

    def __init__(self, rows: list[int], steps: list[int]):
        self.rows, self.steps = rows, steps

    def batch_select_indices(self, keep: torch.Tensor) -> None:
        self.rows = [self.rows[i] for i in keep.tolist()]
        self.steps = [self.steps[i] for i in keep.tolist()]


class ScriptedModel(torch.nn.Module):
    """Row r emits `scripts[r]` token by token (near-certainly), whatever it is fed."""

    def __init__(self, scripts: list[list[int]], vocab: int):
        super().__init__()
        self.scripts, self.vocab = scripts, vocab
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.batch_sizes: list[int] = []

    def forward(self, input_ids, cache=None, use_cache=True, **_):
        if cache is None:
            cache = _Cache(list(range(input_ids.shape[0])), [0] * input_ids.shape[0])
        self.batch_sizes.append(input_ids.shape[0])
        logits = torch.full((input_ids.shape[0], 1, self.vocab), -1e4)
        for pos, (row, step) in enumerate(zip(cache.rows, cache.steps, strict=True)):
            script = self.scripts[row]
            logits[pos, 0, script[min(step, len(script) - 1)]] = 0.0
        cache.steps = [s + 1 for s in cache.steps]
        return SimpleNamespace(logits=logits, cache=cache)


def test_each_row_stops_at_its_closing_tag(olmo_tokenizer):
    tok = olmo_tokenizer
    star = tok.encode(" ★", add_special_tokens=False)
    close = tok.encode(" </g1>", add_special_tokens=False)
    scripts = [star + close + star, star * 2 + close, star * 10, star + [tok.eos_token_id]]
    model = ScriptedModel(scripts, len(tok))
    out = sampling.sample_batch(model, tok, "g1", 4, 12, torch.Generator().manual_seed(0))
    assert out[0] == sampling.Sample("<g1> ★ </g1>", len(star + close), "close_tag")
    assert out[1] == sampling.Sample("<g1> ★ ★ </g1>", len(star * 2 + close), "close_tag")
    assert out[2].stop == "max_new_tokens" and out[2].n_new_tokens == 12
    assert out[3] == sampling.Sample("<g1> ★", len(star) + 1, "eos")
    assert model.batch_sizes[-1] == 1  # finished rows left the batch
