"""The oracle: the generator's exact next-token distribution over the real tokenizer."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from metaexamples.grammar import judging, sampling, scoring
from metaexamples.grammar.documents import example_continuation, open_tag
from metaexamples.grammar.languages import make_grammar
from metaexamples.grammar.oracle import IMPOSSIBLE, GrammarOracle, OracleError

SYMBOLS = ("¡", "■", "¥")  # one OLMo token each after a space
BOUNDS = {"g1": (1, 3), "g2": (2, 4), "g3": (1, 4)}


def every_string(grammar):
    for n in range(grammar.min_length, grammar.max_length + 1):
        yield from (list(s) for s in itertools.product(grammar.alphabet, repeat=n))


@pytest.mark.parametrize("name", ["g1", "g2", "g3"])
def test_next_symbol_chain_is_the_exact_probability(name):
    g = make_grammar(name, SYMBOLS, *BOUNDS[name])
    total = 0.0
    for s in every_string(g):
        p = 1.0
        for i, symbol in enumerate(s):
            nxt, _ = g.next_symbol(s[:i])
            p *= nxt[symbol]
            if p == 0:
                break
        p *= g.next_symbol(s)[1] if p else 0.0
        assert p == pytest.approx(math.exp(g.logp(s)), abs=1e-12)
        total += p
    assert total == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["g1", "g2", "g3"])
def test_scored_through_the_scoring_code_every_string_gets_its_true_logp(name, olmo_tokenizer):
    g = make_grammar(name, SYMBOLS, *BOUNDS[name])
    oracle = GrammarOracle(g, olmo_tokenizer)
    strings = list(every_string(g))
    enc = [scoring.encode(olmo_tokenizer, open_tag(name), example_continuation(name, s),
                          olmo_tokenizer.eos_token_id) for s in strings]
    scores = scoring.score_encoded(oracle, enc, olmo_tokenizer.pad_token_id)
    for s, score in zip(strings, scores, strict=True):
        if g.accepts(s):
            assert score.logprob == pytest.approx(g.logp(s), abs=1e-5)
        else:
            assert score.logprob < IMPOSSIBLE / 2


def test_sampling_through_the_sampling_code_follows_the_generator(olmo_tokenizer):
    g = make_grammar("g2", SYMBOLS, 2, 4)
    oracle = GrammarOracle(g, olmo_tokenizer)
    samples = sampling.sample_strings(oracle, olmo_tokenizer, "g2", 400, 64, 12, seed=0)
    judged = [judging.judge(g, s.text) for s in samples]
    assert all(j.rule_valid for j in judged)
    assert all(s.stop == "close_tag" for s in samples)
    share_2 = sum(j.length == 2 for j in judged) / len(judged)
    assert abs(share_2 - 0.5) < 4 * math.sqrt(0.25 / len(judged))  # P(L = 2) = 1/2


def test_forward_with_a_cache_equals_forward_on_the_whole_context(olmo_tokenizer):
    g = make_grammar("g3", SYMBOLS, 1, 4)
    oracle = GrammarOracle(g, olmo_tokenizer)
    ids = torch.tensor([[olmo_tokenizer.eos_token_id, *oracle.open_ids,
                         oracle.token_of["■"], oracle.token_of["¥"]]])
    whole = oracle(input_ids=ids).logits[:, -1]
    first = oracle(input_ids=ids[:, :-1], use_cache=True)
    step = oracle(input_ids=ids[:, -1:], cache=first.cache, use_cache=True).logits[:, -1]
    assert torch.equal(whole, step)
    # after "■ ¥" only "■" completes a palindrome (length 3: ■ ¥ ■; 4: ■ ¥ ¥ ■ needs "¥")
    probs = torch.softmax(step[0], -1)
    assert probs[oracle.token_of["■"]] + probs[oracle.token_of["¥"]] == pytest.approx(1.0)


def test_refuses_a_symbol_that_is_not_one_token(olmo_tokenizer):
    with pytest.raises(OracleError, match="tokens after a space"):
        GrammarOracle(make_grammar("g1", ("★", "■"), 1, 3), olmo_tokenizer)
