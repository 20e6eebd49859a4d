"""The evaluation stage: what one model knows about one grammar, in one job.

`evaluate` loads the model once (a trained model, the untrained base model, or the
grammar's exact `oracle` built on the base model's tokenizer), then

- scores every val/test string and the held-out canonical documents (`scoring`) and
  turns the scores into metrics (`metrics`): ``scores.jsonl``, ``perplexity_metrics.json``;
- samples strings after the opening tag and judges them (`sampling`): ``samples.jsonl``,
  ``generation_metrics.json``.

Every metric of the headline split and every generation rate carries a 95 % interval
from within the run, so a single-seed run still shows its uncertainty:

- excess NLL: exact over every string at short lengths (`excess`), a stratified t
  interval over the held-out strings of the other lengths;
- pair accuracy per negative type (minimal pairs among them) and sample rates (format
  and rule validity, rule validity among well-formed samples, ...): Agresti-Coull
  intervals over the pairs / the samples each rate counts;
- rule validity above chance: the Agresti-Coull interval of rule validity among the
  well-formed samples joined with a t interval of their mean chance
  (`stats.proportion_minus_mean`);
- AUROC per negative type: Wilson's interval at the largest variance an AUROC can have
  (`stats.auroc_interval`), which, unlike a bootstrap, still covers near 0 and 1;
- pooled pair accuracy: Agresti-Coull at its effective sample size (the pairs over the
  design effect of their clusters, `stats.clustered_proportion_interval`);
- pooled AUROC: the per-type interval, its sample size shrunk by the design effect of
  the clustered negatives where that exceeds 1 (`stats.clustered_auroc_variance`);
- other string metrics (per-length excess NLL, ...): a cluster bootstrap
  (`stats.cluster_bootstrap`): a valid string and the negatives derived from it are
  resampled together;
- the other sample statistics (mean new tokens, length TV distance) and canonical
  perplexity: a bootstrap over samples / documents.

The oracle models grammar strings only, so its canonical perplexity is not computed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaexamples import stats
from metaexamples.config import EvaluationConfig
from metaexamples.grammar import excess, judging, metrics, sampling, scoring
from metaexamples.grammar.documents import example_continuation
from metaexamples.grammar.languages import DOCUMENT_NEGATIVE_TYPES
from metaexamples.io import DataFileError, read_json, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

COUNT_KEYS = ("n_valid", "n_invalid", "n_samples", "canonical_documents", "canonical_tokens")
INTERVAL_METHODS = {
    "excess_nll": "stratified_t",  # exact short lengths, held-out strings beyond
    "pair accuracy per type": "agresti_coull",  # over the pairs
    "auroc per type": "wilson_worst_case",  # at the largest variance an AUROC can have
    "pooled pair accuracy": "agresti_coull_effective_n",  # n over the clusters' design effect
    "pooled auroc": "wilson_worst_case_clustered",  # per type's, with the design effect
    "other string metrics": "cluster_bootstrap",  # clusters: a valid string and its negatives
    "sample rates": "agresti_coull",  # over the samples each rate counts
    "chance_given_lengths": "t",  # the mean chance of the format-valid samples
    "rule_validity_above_chance": "mover",  # Agresti-Coull and t, joined
    "other sample statistics": "bootstrap",
    "canonical": "bootstrap",  # over documents
}
ORACLE_CANONICAL_NOTE = ("not computed: the oracle models grammar strings only and is "
                         "uniform over the vocabulary elsewhere")


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


def load_model_for(model_dir: Path, grammar_obj, oracle: bool):
    """(model, tokenizer): the model in `model_dir`, or the grammar's oracle on its tokenizer."""
    from metaexamples.models import load_model, load_tokenizer

    tok = load_tokenizer(model_dir)
    if oracle:
        from metaexamples.grammar.oracle import GrammarOracle

        return GrammarOracle(grammar_obj, tok), tok
    return load_model(model_dir).eval(), tok


def _interval_keys(point: dict[str, float], skip: Sequence[str] = ()) -> list[str]:
    return [k for k, v in point.items()
            if k not in COUNT_KEYS and k not in skip and not k.startswith("n_")
            and not _isnan(v)]


def bootstrap_intervals(
    point: dict[str, float], rows: pd.DataFrame, fn: Callable[[dict], dict[str, float]],
    clusters: Sequence[object], rng: np.random.Generator, resamples: int,
    skip: Sequence[str] = (),
) -> dict[str, list[float]]:
    """Intervals of every non-count metric in `point` by resampling `clusters` of `rows`."""
    keys = set(_interval_keys(point, skip))
    cols = metrics.columns(rows)
    bounds = stats.cluster_bootstrap(
        lambda idx: {k: v for k, v in fn(metrics.take(cols, idx)).items() if k in keys},
        clusters, rng, resamples)
    return {k: list(bounds[k]) for k in point if k in bounds}


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _none_nan(obj: Any) -> Any:
    """NaN and infinities -> None, recursively, for strict JSON."""
    if isinstance(obj, dict):
        return {k: _none_nan(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_none_nan(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def evaluate(
    model_dir: Path,
    data_dir: Path,
    tokens_path: Path,
    heldout_path: Path,
    splits: Sequence[str],
    seed: int,
    cfg: EvaluationConfig,
    out_dir: Path,
    oracle: bool = False,
    bootstrap_seed: int = 0,
) -> dict[str, Any]:
    """Score and sample one model on one grammar; write the four outputs into `out_dir`."""
    start = time.perf_counter()
    symbols, foreign = load_inventory(tokens_path)
    manifest = load_manifest(data_dir, symbols, tokens_path)
    grammar_obj = make_grammar_from_manifest(manifest)
    allowed = set(symbols) | set(foreign)
    inputs = {s: scoring.load_eval_split(data_dir / f"{s}.jsonl", grammar_obj.name, allowed)
              for s in splits}
    heldout = [] if oracle else read_jsonl(heldout_path, required=("text",))
    train_texts = {r["text"] for r in read_jsonl(data_dir / "train.jsonl", required=("text",))}
    model, tok = load_model_for(model_dir, grammar_obj, oracle)
    check_token_budget(tok, grammar_obj, cfg.max_new_tokens)
    loaded = time.perf_counter()
    ppl = score_model(model, tok, grammar_obj, manifest, inputs, heldout, cfg, out_dir,
                      np.random.default_rng(bootstrap_seed))
    gen = sample_model(model, tok, grammar_obj, manifest, train_texts, seed, cfg, out_dir,
                       np.random.default_rng(bootstrap_seed))
    common = {"model_dir": str(model_dir), "oracle": oracle, "model": model_label(model_dir),
              "load_seconds": loaded - start, "wall_seconds": time.perf_counter() - start}
    ppl |= common
    gen |= common
    write_json(out_dir / "perplexity_metrics.json", _none_nan(ppl))
    write_json(out_dir / "generation_metrics.json", _none_nan(gen))
    log.info("wrote %s (%.1fs, %.1fs loading)", out_dir, common["wall_seconds"],
             common["load_seconds"])
    return {"perplexity": ppl, "generation": gen}


def model_label(model_dir: Path) -> str:
    """The model's name from its provenance file, else its directory name."""
    from metaexamples.models import model_info

    return model_info(model_dir).get("name") or Path(model_dir).name


# -- likelihood -------------------------------------------------------------------------


def negative_type_notes(rows: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """How each negative type is scored and whether it is pooled, with its count."""
    kinds = sorted({r["negative_type"] for r in rows if not r["valid"]})
    return {k: {"n": sum(1 for r in rows if r["negative_type"] == k),
                "scored_as": ("symbols + end-of-text (no closing tag)"
                              if k in DOCUMENT_NEGATIVE_TYPES else "symbols + closing tag"),
                "pooled": True,
                "interval": "drawn" if sum(1 for r in rows if r["negative_type"] == k)
                >= metrics.MIN_CELL else f"n < {metrics.MIN_CELL}: reported, not drawn"}
            for k in kinds}


def score_model(model, tok, grammar_obj, manifest: dict[str, Any], inputs: dict[str, list],
                heldout: Sequence[dict], cfg: EvaluationConfig, out_dir: Path,
                rng: np.random.Generator) -> dict[str, Any]:
    """Score the eval splits (and canonical documents); write scores.jsonl; the metrics."""
    name = grammar_obj.name
    dist = {int(k): float(v) for k, v in manifest["length_distribution"].items()}
    table: list[dict] = []
    exact_rows = excess.exact_rows(grammar_obj, cfg.exact_max_strings)
    for split, rows in {excess.EXACT_SET: exact_rows, **inputs}.items():
        encoded = scoring.encode_eval_rows(tok, name, rows)
        scores = scoring.score_encoded(model, encoded, tok.pad_token_id, cfg.batch_size,
                                       desc=f"scoring {name} {split}")
        table += scoring.score_table(rows, scores, split)
        log.info("scored %d %s strings", len(rows), split)
    max_len = scoring.model_max_length(model)
    docs = [scoring.encode_document(tok, r["text"], tok.eos_token_id, max_len) for r in heldout]
    doc_scores = scoring.score_encoded(model, docs, tok.pad_token_id, cfg.batch_size,
                                       desc="scoring canonical") if docs else []
    table += [{"split": "canonical", "doc": i, "logprob": s.logprob, "n_tokens": s.n_tokens,
               "nll_per_token": s.nll_per_token, "perplexity": s.perplexity}
              for i, s in enumerate(doc_scores)]

    frame = pd.DataFrame(table)
    result: dict[str, Any] = {"grammar": name, "splits": {}, "intervals": {},
                              "excess_nll_missing_lengths": {}, "negative_types": {}}
    enumerated = frame[frame["split"] == excess.EXACT_SET]
    exact = excess.exact_means(enumerated["length"], enumerated["logp_true"]
                               - enumerated["logprob"]) if len(enumerated) else {}
    exact_counts = enumerated["length"].value_counts().to_dict() if len(enumerated) else {}
    result["exact_lengths"] = sorted(int(n) for n in exact)
    fn = lambda cols: metrics.split_metrics(cols, dist, exact, exact_counts)  # noqa: E731
    for split, rows in inputs.items():
        part = frame[frame["split"] == split]
        point = fn(part)
        result["splits"][split] = point
        result["excess_nll_missing_lengths"][split] = [
            n for n in sorted(dist) if point.get(f"n_valid_len{n}", 0) == 0]
        result["negative_types"][split] = negative_type_notes(rows)
        if split == metrics.HEADLINE_SPLIT:
            result["intervals"] |= {f"{split}.{k}": v
                                    for k, v in string_intervals(point, part, fn, dist, exact,
                                                                 rng, cfg).items()}
    if doc_scores:
        canon = frame[frame["split"] == "canonical"]
        result["canonical"] = metrics.canonical_metrics(canon)
        result["intervals"] |= bootstrap_intervals(
            result["canonical"], canon, metrics.canonical_metrics, list(range(len(canon))), rng,
            cfg.bootstrap_resamples)
    else:
        result["canonical"] = {}
        result["canonical_note"] = ORACLE_CANONICAL_NOTE
    for split, missing in result["excess_nll_missing_lengths"].items():
        if missing:
            log.warning("%s %s: no held-out valid string of length %s and more than "
                        "evaluation.exact_max_strings strings there: excess NLL is undefined",
                        name, split, missing)
    result |= {
        "canonical_max_length": max_len,
        "settings": dataclasses.asdict(cfg),
        "bootstrap": {"resamples": cfg.bootstrap_resamples, "level": stats.LEVEL,
                      "methods": INTERVAL_METHODS},
    }
    write_jsonl(out_dir / "scores.jsonl", (_none_nan(r) for r in table))
    return result


def string_intervals(point: dict[str, float], part: pd.DataFrame, fn, dist: dict[int, float],
                     exact: dict[int, float], rng: np.random.Generator,
                     cfg: EvaluationConfig) -> dict[str, list[float]]:
    """The headline split's intervals: excess NLL stratified by length, pair accuracies
    and AUROCs per type over their pairs and negatives, pooled pair accuracy and AUROC
    with their clusters' design effect, the rest by the cluster bootstrap."""
    per_type_auroc = [k for k in point if k.startswith("auroc_")]
    per_type = [k for k in point if k.startswith("pair_accuracy_") or k == "minimal_pair_accuracy"]
    out = bootstrap_intervals(point, part, fn, part["cluster"].tolist(), rng,
                              cfg.bootstrap_resamples,
                              skip=("excess_nll", "pair_accuracy", "auroc", *per_type,
                                    *per_type_auroc))
    for key in per_type_auroc:
        iv = stats.auroc_interval(point[key], int(point["n_valid"]),
                                  int(point.get("n_" + key[len("auroc_"):], 0)))
        out[key] = [iv.low, iv.high]
    is_valid = part["valid"].astype(bool).to_numpy()
    scores, clusters = part["logprob"].to_numpy(float), part["cluster"].astype(str).to_numpy()
    variance = stats.clustered_auroc_variance(scores[is_valid], clusters[is_valid],
                                              scores[~is_valid], clusters[~is_valid])
    iv = stats.auroc_interval(point["auroc"], int(is_valid.sum()), int((~is_valid).sum()),
                              variance=variance)
    out["auroc"] = [iv.low, iv.high]
    valid = part[part["valid"].astype(bool)]
    iv = excess.excess_nll(valid["length"], valid["logp_true"] - valid["logprob"], dist,
                           exact).interval
    out["excess_nll"] = [iv.low, iv.high]
    pairs = pair_outcomes(part)
    iv = stats.clustered_proportion_interval(pairs["hit"], pairs["cluster"])
    out["pair_accuracy"] = [iv.low, iv.high]
    for kind, rows in pairs.groupby("negative_type"):
        iv = stats.agresti_coull_interval(float(rows["hit"].sum()), len(rows))
        out[f"pair_accuracy_{kind}"] = [iv.low, iv.high]
        if kind == "minimal_edit":
            out["minimal_pair_accuracy"] = [iv.low, iv.high]
    return {k: v for k, v in out.items() if not any(_isnan(x) for x in v)}


def pair_outcomes(part: pd.DataFrame) -> pd.DataFrame:
    """Each pair's negative type, cluster and outcome: 1 valid above, 1/2 tie, 0 below."""
    neg = part[~part["valid"].astype(bool) & part["pair_logprob"].notna()]
    hit = ((neg["pair_logprob"] > neg["logprob"]).to_numpy(float)
           + 0.5 * (neg["pair_logprob"] == neg["logprob"]).to_numpy(float))
    return pd.DataFrame({"negative_type": neg["negative_type"].astype(str).to_numpy(),
                         "cluster": neg["cluster"].to_numpy(), "hit": hit})


# -- generation -------------------------------------------------------------------------


def sample_model(model, tok, grammar_obj, manifest: dict[str, Any], train_texts: set[str],
                 seed: int, cfg: EvaluationConfig, out_dir: Path,
                 rng: np.random.Generator) -> dict[str, Any]:
    """Sample and judge strings; write samples.jsonl; the metrics with their intervals."""
    name = grammar_obj.name
    length_dist = {int(k): float(v) for k, v in manifest["length_distribution"].items()}
    samples = sampling.sample_strings(model, tok, name, cfg.samples, cfg.sample_batch_size,
                                      cfg.max_new_tokens, seed)
    rows = judging.sample_rows(samples, grammar_obj, train_texts)
    frame = pd.DataFrame(rows)
    point = judging.generation_metrics(frame, length_dist)
    point["chance_rate"] = judging.chance_rate(grammar_obj, length_dist)
    fn = lambda cols: judging.generation_metrics(cols, length_dist)  # noqa: E731
    intervals = bootstrap_intervals(point, frame, fn, list(range(len(frame))), rng,
                                    cfg.bootstrap_resamples,
                                    skip=(*metrics.SAMPLE_UNRESAMPLED, *metrics.SAMPLE_INTERVALS))
    intervals |= {key: [iv.low, iv.high] for key, iv in judging.sample_intervals(frame).items()
                  if not _isnan(point[key])}
    fmt_lengths = [int(x) for x in frame.loc[frame["format_valid"], "length"]]
    write_jsonl(out_dir / "samples.jsonl", rows)
    log.info("%s: format validity %.3f, rule validity %.3f (chance %.3f) over %d samples",
             name, point["format_validity"], point["rule_validity"], point["chance_rate"],
             len(rows))
    return {
        "grammar": name,
        "seed": seed,
        "metrics": point,
        "intervals": intervals,
        "length_histogram": {str(k): v for k, v in judging.length_histogram(fmt_lengths).items()},
        "generator_length_distribution": {str(k): v for k, v in sorted(length_dist.items())},
        "stop_reasons": frame["stop"].value_counts().to_dict(),
        "settings": dataclasses.asdict(cfg) | {"temperature": 1.0, "top_p": 1.0},
        "bootstrap": {"resamples": cfg.bootstrap_resamples, "level": stats.LEVEL,
                      "methods": INTERVAL_METHODS},
    }


def check_token_budget(tok, grammar_obj, max_new_tokens: int) -> None:
    """Warn when the longest valid string cannot fit into `max_new_tokens`."""
    longest = max(grammar_obj.alphabet,
                  key=lambda s: len(tok.encode(" " + s, add_special_tokens=False)))
    text = example_continuation(grammar_obj.name, [longest] * grammar_obj.max_length)
    need = len(tok.encode(text, add_special_tokens=False))
    if need > max_new_tokens:
        log.warning("evaluation.max_new_tokens = %d but a longest %s string needs %d tokens; "
                    "long samples will be cut off", max_new_tokens, grammar_obj.name, need)
