"""The oracle: a causal LM whose next-token distribution is exactly the generator's.

Every evaluated quantity sits between two bounds computed by the same code: the
untrained model (step 0) and this oracle. It is a `torch.nn.Module` with the
interface the scoring and sampling code use for any Hugging Face causal LM --
``model(input_ids=..., attention_mask=..., cache=..., use_cache=...)`` returning
``.logits`` over the real tokenizer's vocabulary and a ``.cache`` -- so its metrics come
out of the same scoring, sampling and metric functions as a trained model's.

After the opening tag ``<gK>`` a grammar string is, token by token (`documents`): one
token per symbol (" symbol", checked), then the closing tag " </gK>" (several tokens).
The oracle reads the tokens after the last opening tag of the context and puts

- on each symbol token: the generator's P(symbol | symbols so far)
  (`Grammar.next_symbol`, from exact completion counts);
- on the closing tag's first token: P(the string ends here | symbols so far);
- on the tag's remaining tokens, then on end-of-text: probability 1;
- on every other token: ``IMPOSSIBLE`` (a large negative logit: probability 0 in float).

Outside a grammar string (no opening tag, or after an impossible token) it knows
nothing and is uniform over the vocabulary. Its total log-probability of a valid string,
closing tag included, equals ``Grammar.logp`` to float precision, so its excess NLL is 0,
and every invalid string gets at least one impossible token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers import PretrainedConfig
from transformers.modeling_outputs import CausalLMOutputWithPast

from metaexamples.grammar.documents import close_tag, example_text, open_tag
from metaexamples.grammar.languages import Grammar

IMPOSSIBLE = -1.0e4  # a logit whose probability underflows to exactly 0 in float32
NAME = "oracle"


class OracleError(ValueError):
    """The tokenizer does not write this grammar's strings the way the oracle reads them."""


class TokenHistory:
    """The oracle's cache: the token ids seen so far per batch row (it needs no more)."""

    def __init__(self, ids: torch.Tensor) -> None:
        self.ids = ids

    def extend(self, new: torch.Tensor) -> torch.Tensor:
        self.ids = torch.cat([self.ids, new.to(self.ids.device)], dim=1)
        return self.ids

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.ids = self.ids[indices.to(self.ids.device)]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.ids.shape[1])


class GrammarOracle(torch.nn.Module):
    """Next-token log-probabilities of `grammar`'s generator over `tokenizer`'s vocabulary."""

    def __init__(self, grammar: Grammar, tokenizer, max_position_embeddings: int = 2048) -> None:
        super().__init__()
        self.grammar = grammar
        self.vocab_size = len(tokenizer)
        self.eos = tokenizer.eos_token_id
        self.open_ids = tuple(tokenizer.encode(open_tag(grammar.name), add_special_tokens=False))
        self.close_ids = tuple(tokenizer.encode(" " + close_tag(grammar.name),
                                                add_special_tokens=False))
        self.symbol_of = _symbol_tokens(tokenizer, grammar)
        self.token_of = {s: i for i, s in self.symbol_of.items()}
        if self.close_ids[0] in self.symbol_of or self.eos in self.symbol_of:
            raise OracleError(f"{grammar.name}: a symbol shares its token with the closing tag "
                              "or end-of-text")
        self.config = PretrainedConfig(vocab_size=self.vocab_size,
                                       max_position_embeddings=max_position_embeddings)
        self.config.name_or_path = NAME
        self._supports: dict[tuple, tuple[torch.Tensor, torch.Tensor] | None] = {}
        self._check_layout(tokenizer)

    def _check_layout(self, tokenizer) -> None:
        """Refuse a tokenizer that does not write strings as open + symbols + close tokens."""
        symbols = list(self.grammar.alphabet)
        probe = [*symbols, *reversed(symbols)]
        got = tuple(tokenizer.encode(example_text(self.grammar.name, probe),
                                     add_special_tokens=False))
        want = self.open_ids + tuple(self.token_of[s] for s in probe) + self.close_ids
        if got != want:
            raise OracleError(f"{self.grammar.name}: {example_text(self.grammar.name, probe)!r} "
                              f"tokenises as {got}, not tag + one token per symbol + tag")

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def get_output_embeddings(self) -> None:
        return None  # logits are not a projection of a hidden state

    def _support(self, state: tuple) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(token ids, log-probabilities) of the possible next tokens; None: uniform."""
        if state not in self._supports:
            self._supports[state] = self._compute_support(state)
        return self._supports[state]

    def _compute_support(self, state: tuple) -> tuple[torch.Tensor, torch.Tensor] | None:
        kind = state[0]
        if kind == "symbols":
            if self.grammar.prefix_probability(state[1]) <= 0:
                return None  # an impossible symbol was read: no grammar string any more
            nxt, end = self.grammar.next_symbol(state[1])
            pairs = [(self.token_of[s], p) for s, p in nxt.items()] + [(self.close_ids[0], end)]
        elif kind == "closing":
            pairs = [(self.close_ids[state[1]], 1.0)]
        elif kind == "closed":
            pairs = [(self.eos, 1.0)]
        else:
            return None  # outside a grammar string the oracle knows nothing
        ids = torch.tensor([i for i, _ in pairs], dtype=torch.long)
        return ids, torch.tensor([_log(p) for _, p in pairs], dtype=torch.float32)

    def state(self, ids: Sequence[int]) -> tuple:
        """Where the context `ids` leaves the generator: a hashable parser state."""
        start = _last_occurrence(ids, self.open_ids)
        if start < 0:
            return ("outside",)
        symbols: list[str] = []
        closing = 0
        for tok in ids[start + len(self.open_ids):]:
            if closing == len(self.close_ids):
                return ("outside",)  # a token after the finished string
            if closing:
                if tok != self.close_ids[closing]:
                    return ("outside",)
                closing += 1
            elif tok in self.symbol_of:
                symbols.append(self.symbol_of[tok])
            elif tok == self.close_ids[0] and self.grammar.accepts(symbols):
                closing = 1
            else:
                return ("outside",)  # an impossible token: no grammar string any more
        if closing == len(self.close_ids):
            return ("closed",)
        return ("closing", closing) if closing else ("symbols", tuple(symbols))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: TokenHistory | None = None,
        use_cache: bool = False,
        **_: object,
    ) -> CausalLMOutputWithPast:
        """Logits for every position of `input_ids` (appended to `cache` when given).

        Right padding needs no mask: a position's logits depend only on the tokens before it.
        """
        if cache is None and use_cache:
            cache = TokenHistory(input_ids[:, :0])
        full = cache.extend(input_ids) if cache is not None else input_ids
        offset = full.shape[1] - input_ids.shape[1]
        rows = full.tolist()
        logits = torch.full((*input_ids.shape, self.vocab_size), IMPOSSIBLE)
        for b, row in enumerate(rows):
            for t in range(input_ids.shape[1]):
                support = self._support(self.state(row[: offset + t + 1]))
                if support is None:
                    logits[b, t] = 0.0
                else:
                    logits[b, t, support[0]] = support[1]
        return CausalLMOutputWithPast(logits=logits.to(input_ids.device), cache=cache)


def _log(p: float) -> float:
    return math.log(p) if p > 0 else IMPOSSIBLE


def _last_occurrence(ids: Sequence[int], pattern: Sequence[int]) -> int:
    """Start of the last occurrence of `pattern` in `ids`, -1 if none."""
    n = len(pattern)
    for i in range(len(ids) - n, -1, -1):
        if tuple(ids[i : i + n]) == tuple(pattern):
            return i
    return -1


def _symbol_tokens(tokenizer, grammar: Grammar) -> dict[int, str]:
    """token id -> symbol, for " symbol" (the context the data writes), one token each."""
    out: dict[int, str] = {}
    for symbol in grammar.alphabet:
        ids = tokenizer.encode(" " + symbol, add_special_tokens=False)
        if len(ids) != 1:
            raise OracleError(f"{grammar.name}: symbol {symbol!r} is {len(ids)} tokens after a "
                              "space; the oracle needs one (see grammar/alphabet.py)")
        out[ids[0]] = symbol
    return out
