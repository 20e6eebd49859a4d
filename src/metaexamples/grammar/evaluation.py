"""The evaluation stage: what one model knows about one grammar.

`evaluate_perplexity` scores every val/test string and the held-out canonical documents
(`scoring`) and turns the scores into metrics (`metrics`); `evaluate_generation` samples
strings (`sampling`) and judges them. Both check their inputs first and write their
outputs atomically into one directory, with bootstrap intervals over strings (or
samples) for every rate, so a single-seed run still carries its uncertainty.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaexamples.config import EvaluationConfig
from metaexamples.grammar import metrics, sampling, scoring
from metaexamples.grammar.documents import example_continuation
from metaexamples.io import DataFileError, read_json, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

HEADLINE_SPLIT = "test"  # the split whose metrics get bootstrap intervals
COUNT_KEYS = ("n_valid", "n_invalid", "n_samples", "canonical_documents", "canonical_tokens")


def load_inventory(tokens_path: Path) -> tuple[list[str], list[str]]:
    """(alphabet symbols, foreign symbols) from data/tokens.json."""
    tokens = read_json(tokens_path)
    if not isinstance(tokens, dict) or not tokens.get("symbols"):
        raise DataFileError(f"{tokens_path}: no 'symbols' list")
    return list(tokens["symbols"]), list(tokens.get("foreign_symbols", []))


def load_manifest(data_dir: Path, symbols: Sequence[str], tokens_path: Path) -> dict[str, Any]:
    path = data_dir / "manifest.json"
    manifest = read_json(path)
    for key in ("grammar", "alphabet", "min_length", "max_length", "length_distribution"):
        if key not in manifest:
            raise DataFileError(f"{path}: missing key {key!r}")
    unknown = sorted(set(manifest["alphabet"]) - set(symbols))
    if unknown:
        raise DataFileError(
            f"{path}: alphabet symbols {unknown} are not in {tokens_path}; regenerate the data"
        )
    return manifest


def make_grammar_from_manifest(manifest: dict[str, Any]):
    from metaexamples.grammar.languages import make_grammar

    return make_grammar(manifest["grammar"], tuple(manifest["alphabet"]),
                        int(manifest["min_length"]), int(manifest["max_length"]))


def _load(model_dir: Path):
    from metaexamples.models import load_model, load_tokenizer

    model = load_model(model_dir)
    model.eval()
    return model, load_tokenizer(model_dir)


def _intervals(point: dict[str, float], prefix: str, rows: pd.DataFrame, fn, rng,
               cfg: EvaluationConfig, skip: Sequence[str] = ()) -> dict[str, list[float]]:
    """Bootstrap intervals (resampling `rows`) of every non-count metric in `point`."""
    keys = [k for k, v in point.items()
            if k not in COUNT_KEYS and k not in skip and not _isnan(v)]
    cols = metrics.columns(rows)
    iv = metrics.bootstrap_intervals(lambda idx: fn(metrics.take(cols, idx)), len(rows), keys,
                                     rng, cfg.bootstrap_resamples)
    return {f"{prefix}{k}": v for k, v in iv.items()}


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _none_nan(obj: Any) -> Any:
    """NaN -> None, recursively, for strict JSON."""
    if isinstance(obj, dict):
        return {k: _none_nan(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_none_nan(v) for v in obj]
    return None if _isnan(obj) else obj


# -- perplexity / likelihood ------------------------------------------------------------


def evaluate_perplexity(
    model_dir: Path,
    data_dir: Path,
    tokens_path: Path,
    heldout_path: Path,
    splits: Sequence[str],
    cfg: EvaluationConfig,
    out_dir: Path,
    bootstrap_seed: int = 0,
) -> dict[str, Any]:
    start = time.perf_counter()
    symbols, foreign = load_inventory(tokens_path)
    manifest = load_manifest(data_dir, symbols, tokens_path)
    grammar = manifest["grammar"]
    allowed = set(symbols) | set(foreign)
    inputs = {s: scoring.load_eval_split(data_dir / f"{s}.jsonl", grammar, allowed)
              for s in splits}
    heldout = read_jsonl(heldout_path, required=("text",))
    model, tok = _load(model_dir)

    table: list[dict] = []
    for split, rows in inputs.items():
        encoded = scoring.encode_eval_rows(tok, grammar, rows)
        scores = scoring.score_encoded(model, encoded, tok.pad_token_id, cfg.batch_size,
                                       desc=f"scoring {grammar} {split}")
        table += scoring.score_table(rows, scores, split)
        log.info("scored %d %s strings", len(rows), split)
    max_len = scoring.model_max_length(model)
    docs = [scoring.encode_document(tok, r["text"], tok.eos_token_id, max_len) for r in heldout]
    doc_scores = scoring.score_encoded(model, docs, tok.pad_token_id, cfg.batch_size,
                                       desc="scoring canonical")
    table += [{"split": "canonical", "doc": i, "logprob": s.logprob, "n_tokens": s.n_tokens,
               "nll_per_token": s.nll_per_token, "perplexity": s.perplexity}
              for i, s in enumerate(doc_scores)]
    log.info("scored %d held-out canonical documents (%d tokens)", len(docs),
             sum(s.n_tokens for s in doc_scores))

    frame = pd.DataFrame(table)
    rng = np.random.default_rng(bootstrap_seed)
    result: dict[str, Any] = {"grammar": grammar, "model_dir": str(model_dir), "splits": {},
                              "intervals": {}}
    for split in splits:
        rows = frame[frame["split"] == split]
        point = metrics.split_metrics(rows)
        result["splits"][split] = point
        if split == HEADLINE_SPLIT:
            result["intervals"] |= _intervals(point, f"{split}.", rows, metrics.split_metrics,
                                              rng, cfg)
    canon = frame[frame["split"] == "canonical"]
    result["canonical"] = metrics.canonical_metrics(canon)
    result["intervals"] |= _intervals(result["canonical"], "", canon, metrics.canonical_metrics,
                                      rng, cfg)
    result |= {
        "canonical_max_length": max_len,
        "settings": dataclasses.asdict(cfg),
        "bootstrap": {"seed": bootstrap_seed, "resamples": cfg.bootstrap_resamples,
                      "unit": "string (canonical: document)", "level": 0.95},
        "wall_seconds": time.perf_counter() - start,
    }
    write_jsonl(out_dir / "scores.jsonl", (_none_nan(r) for r in table))
    write_json(out_dir / "perplexity_metrics.json", _none_nan(result))
    log.info("wrote %s (%.1fs)", out_dir / "perplexity_metrics.json", result["wall_seconds"])
    return result


# -- generation -------------------------------------------------------------------------


def evaluate_generation(
    model_dir: Path,
    data_dir: Path,
    tokens_path: Path,
    seed: int,
    cfg: EvaluationConfig,
    out_dir: Path,
    bootstrap_seed: int = 0,
) -> dict[str, Any]:
    start = time.perf_counter()
    symbols, _ = load_inventory(tokens_path)
    manifest = load_manifest(data_dir, symbols, tokens_path)
    grammar_obj = make_grammar_from_manifest(manifest)
    name = grammar_obj.name
    train_texts = {r["text"] for r in read_jsonl(data_dir / "train.jsonl", required=("text",))}
    length_dist = {int(k): float(v) for k, v in manifest["length_distribution"].items()}
    model, tok = _load(model_dir)
    check_token_budget(tok, grammar_obj, cfg.max_new_tokens)

    samples = sampling.sample_strings(model, tok, name, cfg.samples, cfg.sample_batch_size,
                                      cfg.max_new_tokens, seed)
    rows = sampling.sample_rows(samples, grammar_obj, train_texts)
    frame = pd.DataFrame(rows)
    point = sampling.generation_metrics(frame, length_dist)
    point["chance_rate"] = sampling.chance_rate(grammar_obj, length_dist)
    rng = np.random.default_rng(bootstrap_seed)
    fn = lambda df: sampling.generation_metrics(df, length_dist)  # noqa: E731
    fmt_lengths = [int(x) for x in frame.loc[frame["format_valid"], "length"]]
    result = {
        "grammar": name,
        "model_dir": str(model_dir),
        "seed": seed,
        "metrics": point,
        # distinct_fraction is not resampled (a bootstrap resample repeats strings)
        "intervals": _intervals(point, "", frame, fn, rng, cfg,
                                skip=("distinct_fraction", "chance_rate")),
        "length_histogram": {str(k): v for k, v in sampling.length_histogram(fmt_lengths).items()},
        "generator_length_distribution": {str(k): v for k, v in sorted(length_dist.items())},
        "stop_reasons": frame["stop"].value_counts().to_dict(),
        "settings": dataclasses.asdict(cfg) | {"temperature": 1.0, "top_p": 1.0},
        "wall_seconds": time.perf_counter() - start,
    }
    write_jsonl(out_dir / "samples.jsonl", rows)
    write_json(out_dir / "generation_metrics.json", _none_nan(result))
    log.info("%s: format validity %.3f, rule validity %.3f (chance %.3f) over %d samples",
             name, point["format_validity"], point["rule_validity"], point["chance_rate"],
             len(rows))
    return result


def check_token_budget(tok, grammar_obj, max_new_tokens: int) -> None:
    """Warn when the longest valid string cannot fit into `max_new_tokens`."""
    longest = max(grammar_obj.alphabet,
                  key=lambda s: len(tok.encode(" " + s, add_special_tokens=False)))
    text = example_continuation(grammar_obj.name, [longest] * grammar_obj.max_length)
    need = len(tok.encode(text, add_special_tokens=False))
    if need > max_new_tokens:
        log.warning("evaluation.max_new_tokens = %d but a longest %s string needs %d tokens; "
                    "long samples will be cut off", max_new_tokens, grammar_obj.name, need)
