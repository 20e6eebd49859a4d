"""Teacher-forced scoring: total log-probability of a continuation given a prefix.

Every grammar string is scored conditioned on ``[EOS] + tokens("<gK>")``; the scored
part is the rest of the string *including* the closing tag, so a model is rewarded for
knowing where a string may end::

    prefix       = [EOS] <g2>
    continuation =  ★ ◆ ◆ ★ </g2>        (documents.example_continuation)

An `unclosed_tag` negative is scored with end-of-text in place of the closing tag, so it
and its valid partner differ only in how they end (`encode_eval_rows`).

Batches are right-padded with an attention mask and built from length-sorted sequences,
so little compute goes to padding. The full text is tokenised once and the prefix's
tokens must be a prefix of it (a merge across the boundary would silently shift what is
scored; we refuse instead).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from metaexamples.models import model_device
from metaexamples.seam import continuation_ids

log = logging.getLogger(__name__)


FULL_LOGITS_BATCH_TOKENS = 512  # ~100 MB of float32 logits at a 50k vocabulary


@dataclass(frozen=True)
class Encoded:
    """Token ids of prefix + continuation; positions >= n_prefix are scored."""

    ids: tuple[int, ...]
    n_prefix: int

    @property
    def n_scored(self) -> int:
        return len(self.ids) - self.n_prefix


@dataclass(frozen=True)
class Score:
    """Total log-probability (nats) of the scored tokens and how many there were."""

    logprob: float
    n_tokens: int

    @property
    def nll_per_token(self) -> float:
        return -self.logprob / self.n_tokens if self.n_tokens else math.nan

    @property
    def perplexity(self) -> float:
        """exp(NLL per token); inf past float range (a string the oracle rules out)."""
        if not self.n_tokens:
            return math.nan
        return math.exp(self.nll_per_token) if self.nll_per_token < 700 else math.inf


def encode(tokenizer, prefix: str, continuation: str, bos_id: int | None = None) -> Encoded:
    """Tokenise `prefix` and `prefix + continuation`; check the seam; prepend `bos_id`.

    Raises `seam.SeamError` when the prefix's tokens are not a prefix of the full text's
    or the continuation adds no token.

    With the OLMo tokenizer, ``encode(tok, "<g1>", " ★ </g1>", eos)`` gives
    ``[eos, <, g, 1, >, Ġâ, ĺ, ħ, Ġ</, g, 1, >]`` with ``n_prefix == 5``.
    """
    head = list(tokenizer.encode(prefix, add_special_tokens=False))
    full = list(tokenizer.encode(prefix + continuation, add_special_tokens=False))
    continuation_ids(head, full, where=repr(prefix + continuation), prefix_text=prefix,
                     continuation_text=continuation)
    start = [] if bos_id is None else [bos_id]
    return Encoded(tuple(start + full), len(start) + len(head))


def encode_document(tokenizer, text: str, bos_id: int | None, max_length: int) -> Encoded:
    """A whole document scored after `bos_id`, truncated to `max_length` tokens in all.

    Without a `bos_id` the document's first token is context only.
    """
    ids = ([] if bos_id is None else [bos_id]) + list(
        tokenizer.encode(text, add_special_tokens=False)
    )
    return Encoded(tuple(ids[:max_length]), 1)  # the first token is never predicted


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None = None
) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first).

    A batch holds at most `batch_size` sequences and, when `max_batch_tokens` is given,
    at most that many padded tokens (always at least one sequence).

    >>> length_sorted_batches([3, 9, 4, 8], batch_size=2)
    [[1, 3], [2, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        too_many = len(current) >= batch_size
        too_wide = max_batch_tokens is not None and (len(current) + 1) * width > max_batch_tokens
        if current and (too_many or too_wide):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pad_batch(seqs: Sequence[Encoded], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input ids and attention mask."""
    width = max(len(s.ids) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, : len(s.ids)] = torch.tensor(s.ids, dtype=torch.long)
        mask[row, : len(s.ids)] = 1
    return ids, mask


def target_mask(seqs: Sequence[Encoded], width: int) -> torch.Tensor:
    """(batch, width - 1) bool: True where the token at position t + 1 is scored."""
    mask = torch.zeros((len(seqs), width - 1), dtype=torch.bool)
    for row, s in enumerate(seqs):
        mask[row, s.n_prefix - 1 : len(s.ids) - 1] = True
    return mask


UNDERFLOW = -87.0  # exp(-87) = 1.6e-38, just above float32's smallest normal number


def _normalise_(z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log_softmax(z)[targets] as float64 for a (positions, vocab) slice; overwrites `z`.

    exp(z - max) is computed and summed in place in float32 (the costly part; the sum of
    positive terms has a relative error of ~1e-7), and the rest -- the picked logit minus
    the maximum minus the log of the sum -- in float64, so no per-token value is rounded
    to float32 at its magnitude (~10 nats): the result is within ~1e-7 of a float64
    log-softmax, without any vocabulary-sized copy.

    Terms below exp(-87) are raised to it before the exp: torch's CPU exp is ~20x slower
    on inputs whose result underflows float32 (the oracle's impossible tokens, or any
    peaked model), and 50k such terms add at most 1e-33 to a sum of at least 1.
    """
    top = z.amax(dim=-1, keepdim=True)
    picked = z.gather(-1, targets.unsqueeze(-1)).squeeze(-1).double()
    total = z.sub_(top).clamp_(min=UNDERFLOW).exp_().sum(dim=-1).double()
    return picked - top.squeeze(-1).double() - torch.log(total)


def _plain_head(model) -> torch.nn.Linear | None:
    """The output projection when logits are exactly a Linear of the last hidden state."""
    cfg = model.config
    if getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None):
        return None
    if getattr(cfg, "logits_scaling", None) not in (None, 1, 1.0):
        return None
    head = model.get_output_embeddings()
    return head if isinstance(head, torch.nn.Linear) else None


def masked_logprobs(
    model, ids: torch.Tensor, attn: torch.Tensor, mask: torch.Tensor, chunk: int = 128
) -> torch.Tensor:
    """(batch, width - 1) float64 log p(ids[:, t + 1] | ids[:, :t + 1]) where `mask`, else 0.

    Logits are computed only at the masked positions, `chunk` positions at a time, from
    the last hidden state into one reused buffer, so memory holds a slice of the
    vocabulary rather than (batch x width x vocab) logits and no large tensor is
    allocated per chunk (`_normalise_` keeps long sums accurate to ~1e-6). Models whose
    logits are not a plain projection (soft-capping, scaling) use `model(...).logits`.
    """
    batch, width = ids.shape
    rows, cols = mask.nonzero(as_tuple=True)
    targets = ids[rows, cols + 1]
    out = torch.zeros(batch * (width - 1), dtype=torch.float64, device=ids.device)
    dest = rows * (width - 1) + cols
    head = _plain_head(model)
    if head is None:
        logits = model(input_ids=ids, attention_mask=attn).logits
        for r, c, t, d in zip(rows.split(chunk), cols.split(chunk), targets.split(chunk),
                              dest.split(chunk), strict=True):
            out[d] = _normalise_(logits[r, c].float(), t)
        return out.view(batch, width - 1)
    hidden = model.base_model(input_ids=ids, attention_mask=attn).last_hidden_state
    picked = hidden[rows, cols].to(head.weight.dtype)
    buf = torch.empty((min(chunk, len(picked)), head.out_features), dtype=head.weight.dtype,
                      device=ids.device)
    for h, t, d in zip(picked.split(chunk), targets.split(chunk), dest.split(chunk),
                       strict=True):
        z = buf[: len(h)]
        torch.mm(h, head.weight.t(), out=z)
        if head.bias is not None:
            z.add_(head.bias)
        out[d] = _normalise_(z.float(), t)
    return out.view(batch, width - 1)


@torch.inference_mode()
def score_batch(model, seqs: Sequence[Encoded], pad_id: int) -> list[Score]:
    """Teacher-forced scores of one batch (any order, any lengths)."""
    ids, attn = pad_batch(seqs, pad_id)
    device = model_device(model)
    ids, attn = ids.to(device), attn.to(device)
    mask = target_mask(seqs, ids.shape[1]).to(device)
    token_lp = masked_logprobs(model, ids, attn, mask)
    totals = token_lp.sum(-1).cpu()
    counts = mask.sum(-1).cpu()
    return [Score(float(t), int(c)) for t, c in zip(totals, counts, strict=True)]


def score_encoded(
    model,
    seqs: Sequence[Encoded],
    pad_id: int,
    batch_size: int = 64,
    max_batch_tokens: int | None = 4096,
    desc: str = "scoring",
) -> list[Score]:
    """Scores of `seqs` in their original order, computed in length-sorted batches.

    A model whose logits are not a plain projection materialises (positions x vocabulary)
    logits, so its batches hold at most `FULL_LOGITS_BATCH_TOKENS` positions.
    """
    for s in seqs:
        if s.n_prefix < 1 or s.n_scored < 1:
            raise ValueError(f"need at least one prefix and one scored token, got {s}")
    if _plain_head(model) is None:
        max_batch_tokens = min(max_batch_tokens or FULL_LOGITS_BATCH_TOKENS,
                               FULL_LOGITS_BATCH_TOKENS)
    batches = length_sorted_batches([len(s.ids) for s in seqs], batch_size, max_batch_tokens)
    out: list[Score | None] = [None] * len(seqs)
    for batch in tqdm(batches, desc=desc, unit="batch", leave=False, disable=len(batches) < 4):
        for i, score in zip(batch, score_batch(model, [seqs[i] for i in batch], pad_id),
                            strict=True):
            out[i] = score
    return [s for s in out if s is not None]


def model_max_length(model, default: int = 2048) -> int:
    """The longest sequence the model accepts (its position-embedding size)."""
    n = getattr(model.config, "max_position_embeddings", None)
    return int(n) if n else default


def corpus_perplexity(scores: Sequence[Score]) -> dict[str, float]:
    """Token-weighted perplexity over documents: exp(sum NLL / sum tokens)."""
    tokens = sum(s.n_tokens for s in scores)
    nll = -sum(s.logprob for s in scores)
    return {
        "documents": len(scores),
        "tokens": tokens,
        "nll_per_token": nll / tokens if tokens else math.nan,
        "perplexity": math.exp(nll / tokens) if tokens else math.nan,
    }


# -- grammar evaluation strings ---------------------------------------------------------

EVAL_KEYS = ("text", "symbols", "valid", "negative_type", "logp_true", "pair_text")


def load_eval_split(path, grammar: str, allowed_symbols: set[str]) -> list[dict]:
    """Read a val/test JSONL and check it: non-empty, the right wrapper, known symbols.

    Raises `DataFileError` naming the file (and line) otherwise.
    """
    from metaexamples.grammar.documents import example_text, open_tag
    from metaexamples.io import DataFileError, read_jsonl

    rows = read_jsonl(path, required=EVAL_KEYS)
    for lineno, row in enumerate(rows, start=1):
        unknown = sorted({s for s in row["symbols"] if s not in allowed_symbols})
        if unknown:
            raise DataFileError(
                f"{path}:{lineno}: symbol(s) {unknown} are not in the token inventory "
                "(data/tokens.json symbols + foreign_symbols); was the data generated with "
                "another tokens.json?"
            )
        if not row["text"].startswith(open_tag(grammar)):
            raise DataFileError(f"{path}:{lineno}: text does not start with {open_tag(grammar)}")
        if row["negative_type"] != "unclosed_tag" and row["text"] != example_text(
            grammar, row["symbols"]
        ):
            raise DataFileError(f"{path}:{lineno}: text does not match its symbols")
        if row["valid"] and row["logp_true"] is None:
            raise DataFileError(f"{path}:{lineno}: valid row without logp_true")
    return rows


def encode_eval_rows(tokenizer, grammar: str, rows: Sequence[dict]) -> list[Encoded]:
    """[EOS] + <gK> as context; the rest of the string, with how it ends, scored.

    A string ends with its closing tag (`example_continuation`), except an
    `unclosed_tag` negative, which ends with end-of-text: it and the valid string it came
    from share their symbols, so the pair compares p(" </gK>") with p(EOS) after the same
    symbols. (Scored without any ending, the negative would be an exact prefix of its
    partner and could never score lower.)
    """
    from metaexamples.grammar.documents import open_tag
    from metaexamples.grammar.languages import DOCUMENT_NEGATIVE_TYPES

    head = open_tag(grammar)
    eos = tokenizer.eos_token_id
    out = []
    for r in rows:
        enc = encode(tokenizer, head, r["text"][len(head):], eos)
        if r["negative_type"] in DOCUMENT_NEGATIVE_TYPES:
            enc = Encoded((*enc.ids, eos), enc.n_prefix)
        out.append(enc)
    return out


def cluster_of(row: dict) -> str:
    """The resampling unit of an evaluation row: the valid string it is (or came from)."""
    return row["text"] if row["valid"] else (row["pair_text"] or row["text"])


def score_table(rows: Sequence[dict], scores: Sequence[Score], split: str) -> list[dict]:
    """Per-string output rows: the input facts, the scores and the paired valid score."""
    by_text = {r["text"]: s.logprob for r, s in zip(rows, scores, strict=True) if r["valid"]}
    out = []
    for r, s in zip(rows, scores, strict=True):
        logp_true = r["logp_true"]
        out.append({
            "split": split,
            "text": r["text"],
            "length": len(r["symbols"]),
            "valid": bool(r["valid"]),
            "negative_type": r["negative_type"],
            "logp_true": logp_true,
            "pair_text": r["pair_text"],
            "cluster": cluster_of(r),
            "logprob": s.logprob,
            "n_tokens": s.n_tokens,
            "nll_per_token": s.nll_per_token,
            "perplexity": s.perplexity,
            "excess_nll": (logp_true - s.logprob) if r["valid"] else None,
            "pair_logprob": by_text.get(r["pair_text"]) if r["pair_text"] else None,
        })
    return out
