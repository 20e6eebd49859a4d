"""Stop-aware KV-cached sampling and the judgement of samples."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from metaexamples.grammar import metrics, sampling
from metaexamples.grammar.languages import make_grammar
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


def test_judge_separates_format_and_rule_validity():
    g2 = make_grammar("g2", ALPHABET, 2, 8)
    assert sampling.judge(g2, "<g2> ★ ★ </g2>") == sampling.Judgement(True, True, True, 2)
    assert sampling.judge(g2, "<g2> ★ ◆ </g2>") == sampling.Judgement(True, True, False, 2)
    assert sampling.judge(g2, "<g2> ★ x </g2>") == sampling.Judgement(True, False, False, None)
    assert sampling.judge(g2, "<g2> ★ ★") == sampling.Judgement(False, False, False, None)
    assert sampling.judge(g2, "<g2> ★ ★ </g2> tail").format_valid is False


def brute_chance(grammar, dist) -> float:
    """Enumerate every string of every length and count the accepted ones."""
    import itertools

    total = 0.0
    for n, p in dist.items():
        strings = list(itertools.product(grammar.alphabet, repeat=n))
        total += p * sum(grammar.accepts(list(s)) for s in strings) / len(strings)
    return total


@pytest.mark.parametrize("name,lo,hi", [("g1", 1, 5), ("g2", 2, 6), ("g3", 1, 6)])
def test_chance_rate_matches_enumeration(name, lo, hi):
    g = make_grammar(name, ALPHABET, lo, hi)
    dist = g.length_distribution()
    assert sampling.chance_rate(g, dist) == pytest.approx(brute_chance(g, dist))


def test_generation_metrics():
    g3 = make_grammar("g3", ALPHABET, 1, 4)
    texts = ["<g3> ★ </g3>", "<g3> ★ </g3>", "<g3> ★ ◆ </g3>", "<g3> ★ ◆ ★ </g3>", "<g3> ★ ◆"]
    samples = [sampling.Sample(t, 3, "close_tag") for t in texts]
    rows = pd.DataFrame(sampling.sample_rows(samples, g3, {"<g3> ★ </g3>"}))
    out = sampling.generation_metrics(rows, {1: 0.5, 3: 0.5})
    assert out["format_validity"] == pytest.approx(4 / 5)
    assert out["rule_validity"] == pytest.approx(3 / 5)
    assert out["rule_validity_given_format"] == pytest.approx(3 / 4)
    # chance at the format-valid lengths 1, 1, 2, 3 over 3 symbols: 1, 1, 1/3, 1/3
    assert out["chance_given_lengths"] == pytest.approx((1 + 1 + 1 / 3 + 1 / 3) / 4)
    assert out["rule_validity_above_chance"] == pytest.approx(3 / 4 - 2 / 3)
    assert out["distinct_fraction"] == pytest.approx(4 / 5)
    assert out["novel_fraction"] == pytest.approx(1 / 3)
    # format-valid lengths 1, 1, 2, 3 -> {1: .5, 2: .25, 3: .25} vs {1: .5, 3: .5}
    assert out["length_tv_distance"] == pytest.approx(0.25)
    assert math.isnan(sampling.total_variation({}, {1: 1.0}))
    assert np.isclose(sum(sampling.length_histogram([1, 1, 2]).values()), 1.0)


def sampled_texts(grammar, rng, n: int, rule_follower: bool) -> list[str]:
    """n wrapped strings at the generator's lengths: the generator's own strings, or uniform
    random symbols (a model that learned the format and the lengths, nothing of the rule)."""
    texts = []
    for _ in range(n):
        symbols = grammar.sample(rng)
        if not rule_follower:
            symbols = list(rng.choice(grammar.alphabet, size=len(symbols)))
        texts.append(f"<{grammar.name}> {' '.join(symbols)} </{grammar.name}>")
    return texts


@pytest.mark.parametrize("name,lo,hi", [("g2", 2, 8), ("g3", 1, 8)])
def test_rule_validity_above_chance_is_zero_for_random_symbols_and_high_for_the_rule(
        name, lo, hi):
    g = make_grammar(name, ALPHABET, lo, hi)
    rng = np.random.default_rng(0)
    dist = g.length_distribution()

    def above_chance(texts):
        samples = [sampling.Sample(t, 3, "close_tag") for t in texts]
        rows = pd.DataFrame(sampling.sample_rows(samples, g, set()))
        return sampling.generation_metrics(rows, dist)

    # knows nothing of the rule: 0 up to sampling noise (sd of a mean of 4000 draws < 0.008)
    random = above_chance(sampled_texts(g, rng, 4000, rule_follower=False))
    assert abs(random["rule_validity_above_chance"]) < 0.025
    assert random["chance_given_lengths"] == pytest.approx(sampling.chance_rate(g, dist),
                                                           abs=0.025)
    # knows the rule: every string valid, so 1 minus the chance at its lengths
    exact = above_chance(sampled_texts(g, rng, 400, rule_follower=True))
    assert exact["rule_validity_given_format"] == 1.0
    assert exact["rule_validity_above_chance"] == pytest.approx(
        1 - exact["chance_given_lengths"])
    assert exact["rule_validity_above_chance"] > 0.5


def test_every_generation_metric_has_an_interval_method():
    rows = pd.DataFrame({"text": ["<g1> ★ </g1>", "<g1> x"], "n_new_tokens": [3, 24],
                         "stop": ["close_tag", "max_new_tokens"], "well_formed": [True, False],
                         "format_valid": [True, False], "rule_valid": [True, False],
                         "length": [1, None], "chance_at_length": [1.0, None],
                         "in_train": [False, False]})
    keys = set(sampling.generation_metrics(rows, {1: 1.0})) - {"n_samples"}
    assert keys == {*metrics.SAMPLE_PROPORTIONS, *metrics.SAMPLE_STATISTICS,
                    *metrics.SAMPLE_UNRESAMPLED} - {"chance_rate"}
