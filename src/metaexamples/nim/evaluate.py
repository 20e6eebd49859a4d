"""The one Nim evaluation entry point: every checkpoint x every eval set.

For each checkpoint (sorted by step; the base model counts as step 0) and each eval JSONL:

- **exact match** by batched greedy decoding: prompts are left-padded, decoded with a KV
  cache, and the generated token ids, cut at the first stop id (EOS, padding, or any token
  containing a newline), are compared with the answer's token ids. ``answer_prefix_match``
  is the looser "the first len(answer) generated ids are the answer" (whatever follows);
- **rank classification** over the example's max_remove + 1 ``candidates``: the total
  log-probability of each candidate's tokens given the prompt, the argmax as the
  prediction, and the candidates' probabilities renormalised over the candidate set.

Token ids come from tokenising ``prompt + continuation`` as a whole and taking what follows
the prompt's own tokens (`seam.continuation_ids`, the check the generator made); the prompt
is tokenised without special tokens, as `seam.encode_ids` does.

Outputs in ``out_dir`` (each written atomically):

- ``accuracy_table.csv``: one row per (step, dataset): ``step, checkpoint, dataset, n,
  exact_correct, exact_match, answer_prefix_match, rank_accuracy, gold_probability,
  majority_rate`` (``exact_correct`` counts exact matches, for an interval;
  ``majority_rate`` is what always giving the set's most common answer would score);
- ``predictions.jsonl``: every example at every step (the plots' denominators);
- ``incorrect_predictions.jsonl``: the exact-match failures, with their prompts;
- ``confusion.json``: gold x predicted label counts per (step, dataset), for the rank
  prediction and for the generated text (whose extra column ``other`` is any generation
  that is not a candidate).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from metaexamples.io import atomic_path, write_json, write_text
from metaexamples.models import model_device
from metaexamples.nim import metrics
from metaexamples.nim.checkpoints import Checkpoint
from metaexamples.nim.names import label_keys
from metaexamples.seam import continuation_ids

log = logging.getLogger(__name__)

__all__ = [
    "ACCURACY_COLUMNS",
    "EncodedExample",
    "candidate_logprobs",
    "encode_rows",
    "evaluate",
    "greedy_generate",
    "stop_token_ids",
]

BASE_NAME = "base"
OTHER = "other"
ACCURACY_COLUMNS = (
    "step", "checkpoint", "dataset", "n", "exact_correct", "exact_match",
    "answer_prefix_match", "rank_accuracy", "gold_probability", "majority_rate",
)  # fmt: skip
ROW_FIELDS = (
    "id", "max_remove", "initial_pile", "moves", "pile", "label_move", "names", "bucket",
    "answer",
)  # fmt: skip


# -- tokenisation -----------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one example: the prompt, the gold answer and every candidate."""

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]
    candidate_ids: tuple[tuple[int, ...], ...]
    gold_index: int


def _batch_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def encode_rows(tokenizer: Any, rows: Sequence[Mapping[str, Any]]) -> list[EncodedExample]:
    """Encode prompts, answers and candidates of generated rows (batched tokenisation)."""
    prompts = _batch_ids(tokenizer, [r["prompt"] for r in rows])
    texts = [r["prompt"] + c for r in rows for c in r["candidates"]]
    texts += [r["prompt"] + r["answer"] for r in rows]
    full = iter(_batch_ids(tokenizer, texts))
    candidates = []
    for row, prompt in zip(rows, prompts, strict=True):
        where = f"example {row.get('id', '?')}"
        candidates.append(tuple(
            continuation_ids(prompt, next(full), where=where, prefix_text=row["prompt"],
                             continuation_text=c)
            for c in row["candidates"]
        ))
    out = []
    for row, prompt, cands in zip(rows, prompts, candidates, strict=True):
        answer = continuation_ids(prompt, next(full), where=f"example {row.get('id', '?')}",
                                  prefix_text=row["prompt"], continuation_text=row["answer"])
        gold = metrics.label_index(row)
        if len(cands) != row["max_remove"] + 1 or cands[gold] != answer:
            raise ValueError(
                f"example {row.get('id', '?')}: the answer is not candidate {gold} of "
                f"{len(cands)} (candidates must be take 1 .. take max_remove, then the losing one)"
            )
        out.append(EncodedExample(tuple(prompt), answer, cands, gold))
    return out


def stop_token_ids(tokenizer: Any) -> frozenset[int]:
    """EOS, padding, and every token whose text contains a newline."""
    stops = {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None}
    vocab = tokenizer.get_vocab()
    ids = sorted(vocab.values())
    texts = tokenizer.batch_decode([[i] for i in ids])
    stops.update(i for i, text in zip(ids, texts, strict=True) if "\n" in text)
    return frozenset(stops)


# -- model calls ------------------------------------------------------------------------


def _left_pad(
    seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded ids, attention mask and position ids (0 at each sequence's first token)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.tensor(list(s), dtype=torch.long)
            mask[i, width - len(s) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def _batches(order: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(order), size):
        yield list(order[start : start + size])


@torch.inference_mode()
def _greedy_batch(
    model: Any, prompts: Sequence[Sequence[int]], max_new_tokens: int,
    stops: torch.Tensor, pad_id: int,
) -> list[list[int]]:  # fmt: skip
    device = model_device(model)
    ids, mask, positions = _left_pad(prompts, pad_id, device)
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
        logits_to_keep=1,
    )  # fmt: skip
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    steps = []
    position = positions[:, -1:]
    for step in range(max_new_tokens):
        token = out.logits[:, -1, :].argmax(dim=-1)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        steps.append(token)
        done |= torch.isin(token, stops)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position = position + 1
        out = model(
            input_ids=token[:, None], attention_mask=mask, position_ids=position,
            cache=out.cache, use_cache=True, logits_to_keep=1,
        )  # fmt: skip
    generated = torch.stack(steps, dim=1).tolist()
    stop_set = set(stops.tolist())
    return [_cut_after_stop(row, stop_set) for row in generated]


def _cut_after_stop(ids: Sequence[int], stops: set[int]) -> list[int]:
    out = []
    for i in ids:
        out.append(int(i))
        if i in stops:
            break
    return out


def greedy_generate(
    model: Any,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_ids: frozenset[int] | set[int],
    pad_id: int,
    batch_size: int = 64,
    show_progress: bool = False,
) -> list[list[int]]:
    """Greedy continuations of `prompts`, batched; each ends at its first stop id
    (included) or after `max_new_tokens` ids. Prompts are batched by length."""
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("max_new_tokens and batch_size must be >= 1")
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=model_device(model))
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[list[int]] = [[] for _ in prompts]
    batches = list(_batches(order, batch_size))
    for batch in tqdm(batches, desc="greedy", disable=not show_progress, leave=False):
        generated = _greedy_batch(model, [prompts[i] for i in batch], max_new_tokens, stops,
                                  pad_id)  # fmt: skip
        for i, ids in zip(batch, generated, strict=True):
            results[i] = ids
    return results


@torch.inference_mode()
def _score_batch(
    model: Any, prefixes: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
    pad_id: int,
) -> list[float]:  # fmt: skip
    keep = max(len(c) for c in continuations) + 1
    seqs = [list(p) + list(c) for p, c in zip(prefixes, continuations, strict=True)]
    ids, mask, positions = _left_pad(seqs, pad_id, model_device(model))
    logits = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
        logits_to_keep=keep,
    ).logits  # fmt: skip
    logprobs = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), -1)
    totals = []
    for i, cont in enumerate(continuations):
        c = len(cont)
        rows = torch.arange(keep - c - 1, keep - 1, device=logprobs.device)
        targets = torch.tensor(list(cont), dtype=torch.long, device=logprobs.device)
        totals.append(float(logprobs[i, rows, targets].sum()))
    return totals


def candidate_logprobs(
    model: Any,
    prompts: Sequence[Sequence[int]],
    candidates: Sequence[Sequence[Sequence[int]]],
    pad_id: int,
    batch_size: int = 64,
    show_progress: bool = False,
) -> list[list[float]]:
    """Total log-probability of each candidate continuation given its prompt.

    ``candidates[i]`` are the continuations of ``prompts[i]``; the (prompt, candidate)
    sequences are scored in batches of `batch_size`, left-padded, keeping only the last
    logits (so memory does not grow with the prompt length times the vocabulary).
    """
    pairs = [(i, j) for i, cands in enumerate(candidates) for j in range(len(cands))]
    if any(len(candidates[i][j]) == 0 for i, j in pairs):
        raise ValueError("candidates: every continuation needs at least one token")
    order = sorted(range(len(pairs)), key=lambda k: len(prompts[pairs[k][0]]))
    scores: list[list[float]] = [[0.0] * len(cands) for cands in candidates]
    batches = list(_batches(order, batch_size))
    for batch in tqdm(batches, desc="rank", disable=not show_progress, leave=False):
        chosen = [pairs[k] for k in batch]
        totals = _score_batch(
            model, [prompts[i] for i, _ in chosen], [candidates[i][j] for i, j in chosen], pad_id
        )
        for (i, j), total in zip(chosen, totals, strict=True):
            scores[i][j] = total
    return scores


# -- one checkpoint on one dataset -------------------------------------------------------


@dataclass(frozen=True)
class EvalSet:
    """A named eval set: its rows and their encodings."""

    name: str
    rows: list[dict[str, Any]]
    encoded: list[EncodedExample]

    @property
    def max_new_tokens(self) -> int:
        """Room for the longest candidate plus one stop token."""
        return max(len(c) for e in self.encoded for c in e.candidate_ids) + 1


def _generated_index(ids: Sequence[int], example: EncodedExample, stops: set[int]) -> int | None:
    cut = tuple(metrics.truncate_at(ids, stops))
    return next((j for j, c in enumerate(example.candidate_ids) if cut == c), None)


def evaluate_set(
    model: Any,
    tokenizer: Any,
    eval_set: EvalSet,
    stops: frozenset[int],
    batch_size: int,
    show_progress: bool = False,
) -> list[dict[str, Any]]:
    """Prediction rows of one checkpoint on one eval set (without step and dataset)."""
    encoded = eval_set.encoded
    pad_id = tokenizer.pad_token_id
    generated = greedy_generate(
        model, [e.prompt_ids for e in encoded], eval_set.max_new_tokens, stops, pad_id,
        batch_size, show_progress,
    )  # fmt: skip
    scores = candidate_logprobs(
        model, [e.prompt_ids for e in encoded], [e.candidate_ids for e in encoded], pad_id,
        batch_size, show_progress,
    )  # fmt: skip
    stop_set = set(stops)
    out = []
    for row, example, gen, logps in zip(eval_set.rows, encoded, generated, scores, strict=True):
        m = row["max_remove"]
        labels = metrics.candidate_labels(m)
        probs = metrics.candidate_probabilities(logps)
        rank = metrics.rank_classification(logps)
        gen_index = _generated_index(gen, example, stop_set)
        cut = metrics.truncate_at(gen, stop_set)
        n_answer = len(example.answer_ids)
        out.append({
            **{k: row.get(k) for k in ROW_FIELDS},
            "gold_label": labels[example.gold_index],
            "predicted": tokenizer.decode(cut),
            "predicted_label": labels[gen_index] if gen_index is not None else None,
            "correct": metrics.exact_match(gen, example.answer_ids, stop_set),
            "answer_prefix_match": list(gen[:n_answer]) == list(example.answer_ids),
            "rank_prediction": labels[rank],
            "rank_correct": rank == example.gold_index,
            "candidate_labels": labels,
            "candidate_logprobs": logps,
            "candidate_probabilities": probs,
            "gold_probability": probs[example.gold_index],
        })  # fmt: skip
    return out


# -- aggregation ------------------------------------------------------------------------


def accuracy_row(step: int, checkpoint: str, dataset: str, preds: Sequence[Mapping]) -> dict:
    """One line of the accuracy table."""
    n = len(preds)

    def mean(key: str) -> float:
        return float(np.mean([float(p[key]) for p in preds])) if n else float("nan")

    golds = Counter(p["gold_label"] for p in preds)
    return {
        "step": step, "checkpoint": checkpoint, "dataset": dataset, "n": n,
        "exact_correct": sum(bool(p["correct"]) for p in preds),
        "exact_match": mean("correct"), "answer_prefix_match": mean("answer_prefix_match"),
        "rank_accuracy": mean("rank_correct"), "gold_probability": mean("gold_probability"),
        "majority_rate": max(golds.values()) / n if n else float("nan"),
    }  # fmt: skip


def confusion_entry(
    step: int, checkpoint: str, dataset: str, preds: Sequence[Mapping], labels: Sequence[str]
) -> dict[str, Any]:
    """Gold x predicted counts over `labels` for the rank prediction and the generation
    (whose last column, ``other``, counts generations that are no candidate)."""
    index = {k: i for i, k in enumerate(labels)}
    gold = [index[p["gold_label"]] for p in preds]
    rank = metrics.confusion_matrix(gold, [index[p["rank_prediction"]] for p in preds],
                                    len(labels))  # fmt: skip
    generated = np.zeros((len(labels), len(labels) + 1), dtype=np.int64)
    for g, p in zip(gold, preds, strict=True):
        label = p["predicted_label"]
        generated[g, index[label] if label is not None else len(labels)] += 1
    return {
        "step": step, "checkpoint": checkpoint, "dataset": dataset,
        "rank": rank.tolist(), "generated": generated.tolist(),
        "rank_accuracy": metrics.accuracy_from_confusion(rank) if preds else None,
    }  # fmt: skip


def _csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def load_eval_set(tokenizer: Any, name: str, rows: list[dict[str, Any]]) -> EvalSet:
    if not rows:
        raise ValueError(f"eval set {name!r} is empty")
    return EvalSet(name, rows, encode_rows(tokenizer, rows))


def evaluate(
    checkpoints: Sequence[Checkpoint],
    datasets: Mapping[str, list[dict[str, Any]]],
    tokenizer: Any,
    out_dir: str | os.PathLike[str],
    batch_size: int = 64,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[dict[str, Any]]:
    """Evaluate every checkpoint on every dataset and write the four outputs; return the
    accuracy table rows. `datasets` maps a name (the file stem) to generated rows."""
    from metaexamples.models import load_model

    if not checkpoints or not datasets:
        raise ValueError("evaluate: need at least one checkpoint and one dataset")
    if tokenizer.pad_token_id is None:
        raise ValueError("tokenizer: no pad token (load it with models.load_tokenizer)")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    sets = [load_eval_set(tokenizer, name, rows) for name, rows in datasets.items()]
    stops = stop_token_ids(tokenizer)
    for s in sets:
        bad = [e for e in s.encoded if set(e.answer_ids) & stops]
        if bad:
            raise ValueError(f"eval set {s.name!r}: an answer contains a stop token (newline?)")
    labels = label_keys(sorted({r["max_remove"] for s in sets for r in s.rows}))
    table: list[dict[str, Any]] = []
    confusion: list[dict[str, Any]] = []
    out = Path(out_dir)
    with contextlib.ExitStack() as stack:
        all_tmp = stack.enter_context(atomic_path(out / "predictions.jsonl"))
        bad_tmp = stack.enter_context(atomic_path(out / "incorrect_predictions.jsonl"))
        all_fh = stack.enter_context(all_tmp.open("w", encoding="utf-8"))
        bad_fh = stack.enter_context(bad_tmp.open("w", encoding="utf-8"))
        for ckpt in tqdm(checkpoints, desc="checkpoints", disable=None):
            model = load_model(ckpt.path, dtype=dtype).to(device).eval()
            for s in sets:
                preds = evaluate_set(model, tokenizer, s, stops, batch_size)
                for row, pred in zip(s.rows, preds, strict=True):
                    record = {"step": ckpt.step, "checkpoint": ckpt.name, "dataset": s.name,
                              **pred}  # fmt: skip
                    all_fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                    if not pred["correct"]:
                        bad_fh.write(json.dumps({**record, "prompt": row["prompt"]},
                                                ensure_ascii=False) + "\n")  # fmt: skip
                line = accuracy_row(ckpt.step, ckpt.name, s.name, preds)
                table.append(line)
                confusion.append(confusion_entry(ckpt.step, ckpt.name, s.name, preds, labels))
                log.info(
                    "step %d %s: exact %.3f rank %.3f (n=%d)", ckpt.step, s.name,
                    line["exact_match"], line["rank_accuracy"], line["n"],
                )  # fmt: skip
            del model
    write_text(out / "accuracy_table.csv", _csv_text(table, ACCURACY_COLUMNS))
    write_json(out / "confusion.json", {
        "labels": labels,
        "generated_columns": [*labels, OTHER],
        "entries": confusion,
        "meta": {
            "checkpoints": [{"step": c.step, "name": c.name, "path": str(c.path)}
                            for c in checkpoints],
            "datasets": {s.name: len(s.rows) for s in sets},
            "batch_size": batch_size,
            "stop_ids": sorted(stops),
            "dtype": str(dtype).removeprefix("torch."),
        },
    })  # fmt: skip
    log.info("wrote Nim evaluation to %s", out)
    return table
