"""Does it help? Paired contrasts of every condition against its reference.

A contrast is condition minus reference on one grammar and one metric, **oriented so that
a positive estimate means the condition is better** (for a lower-is-better metric such as
excess NLL it is reference minus condition). Its `scope` says what it is about:

- ``condition``: two or more seeds in both conditions. Runs are paired by seed (a seed
  fixes the data order and, for a random model, the initialisation: both conditions of a
  seed start from the same weights) and the interval is Student-t over the per-seed
  differences (`stats.paired_t`): a claim about the condition.
- ``models``: one seed. Two trained models compared on the same test strings, so the
  interval says nothing about the condition, only about these two models:
  excess NLL and the curve's mean excess NLL by the stratified t over the per-string
  differences (`excess`); AUROC and pair accuracies by a paired cluster bootstrap
  (both runs' scores resampled by the same clusters); canonical perplexity by a paired
  bootstrap over documents; format and rule validity by Newcombe's interval (the two
  runs' samples are independent); rule validity above chance by independent bootstraps
  of the two runs' samples.

`p_holm` is Holm's adjustment across every tested contrast of the table, `verdict` is
better / worse / no detectable difference at Holm-adjusted 5 %, and `mde` is the smallest
true difference the same test detects with 80 % power at the Bonferroni level 5 % / m
(m: tested contrasts of the table), the level Holm applies to the smallest p-value: an
effect of that size is detected whatever the other contrasts show.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaexamples import stats
from metaexamples.grammar import excess, judging, metrics
from metaexamples.grammar.summary import HEADLINE_METRICS, LEARNING_SPEED, no_room
from metaexamples.io import DataFileError, read_json, read_jsonl

COLUMNS = ["grammar", "condition", "reference", "metric", "scope", "n", "estimate", "ci_low",
           "ci_high", "p_value", "p_holm", "verdict", "mde", "se", "method", "note"]
CONTRAST_METRICS: dict[str, str] = {**HEADLINE_METRICS, "pair_accuracy": "higher",
                                    **LEARNING_SPEED}
ALPHA = 1 - stats.LEVEL
BETTER, WORSE, NO_DIFFERENCE, NOT_TESTED = ("better", "worse", "no detectable difference",
                                            "not tested")
DEFAULT_REFERENCE = "examples"


def contrast_pairs(conditions: Sequence[str], extra: Sequence[Sequence[str]] = ()
                   ) -> list[tuple[str, str]]:
    """Every condition against `examples` (when run), then the configured extra pairs.

    >>> contrast_pairs(["examples", "meta_10pct", "irrelevant_10pct"],
    ...                [("meta_10pct", "irrelevant_10pct")])  # doctest: +NORMALIZE_WHITESPACE
    [('meta_10pct', 'examples'), ('irrelevant_10pct', 'examples'),
     ('meta_10pct', 'irrelevant_10pct')]
    """
    pairs = [(c, DEFAULT_REFERENCE) for c in conditions
             if c != DEFAULT_REFERENCE and DEFAULT_REFERENCE in conditions]
    return pairs + [tuple(p) for p in extra if tuple(p) not in pairs]


@dataclass(frozen=True)
class RunData:
    """One trained run's per-unit outputs (what a one-seed contrast resamples)."""

    scores: Path
    samples: Path
    curve: Path | None = None


def _sign(metric: str) -> float:
    return 1.0 if CONTRAST_METRICS[metric] == "higher" else -1.0


def _skip(summary: pd.DataFrame, metric: str, conditions: Sequence[str]) -> bool:
    """No contrast where a metric has no value in either condition, or no room: rule
    validity above chance when every string of a valid length is valid (g1)."""
    if metric not in summary.columns:
        return True
    rows = summary[summary["condition"].isin(conditions)]
    return rows[metric].isna().all() or no_room(summary, metric)


def grammar_contrasts(
    summary: pd.DataFrame, pairs: Sequence[tuple[str, str]],
    run_data: Mapping[tuple[str, int], RunData] | None = None,
    manifest: Mapping[str, Any] | None = None, resamples: int = 2000,
) -> pd.DataFrame:
    """Every contrast of one grammar (`summary`: its rows of results/{grammar}/summary.csv).

    Pairs with two or more seeds in both conditions are ``condition`` contrasts from the
    summary alone; one-seed pairs need each run's `run_data` and the grammar's `manifest`.
    """
    grammars = summary["grammar"].unique()
    if len(grammars) != 1:
        raise ValueError(f"expected one grammar's summary, found {sorted(grammars)}")
    grammar = str(grammars[0])
    rows = []
    for condition, reference in pairs:
        for name in (condition, reference):
            if name not in set(summary["condition"]):
                raise ValueError(f"{grammar}: no runs of condition {name!r} in the summary")
        a = summary[summary["condition"] == condition].set_index("seed")
        b = summary[summary["condition"] == reference].set_index("seed")
        seeds = sorted(int(s) for s in set(a.index) & set(b.index))
        by_models = len(a) < 2 or len(b) < 2
        for metric in CONTRAST_METRICS:
            if _skip(summary, metric, (condition, reference)):
                continue
            base = {"grammar": grammar, "condition": condition, "reference": reference,
                    "metric": metric}
            if by_models:
                if run_data is None or manifest is None:
                    raise ValueError(f"{grammar} {condition} vs {reference}: one seed; the "
                                     "runs' scores and samples are needed")
                if not seeds:
                    raise ValueError(f"{grammar}: {condition} and {reference} share no seed")
                test, note = models_test(metric, run_data[(condition, seeds[0])],
                                         run_data[(reference, seeds[0])], manifest, resamples,
                                         np.random.default_rng(seed_for(seeds[0], metric)))
                rows.append(base | _row(test, "models", note, metric))
            else:
                test, note = seeds_test(metric, a, b, seeds)
                rows.append(base | _row(test, "condition", note, metric))
    return adjust(pd.DataFrame(rows, columns=COLUMNS))


def seed_for(seed: int, metric: str) -> int:
    """A resampling seed per (run seed, metric), stable across runs of the program."""
    return seed * 1000 + sorted(CONTRAST_METRICS).index(metric)


def _row(test: stats.Test | None, scope: str, note: str, metric: str) -> dict[str, Any]:
    if test is None:
        return {"scope": scope, "n": 0, "estimate": math.nan, "ci_low": math.nan,
                "ci_high": math.nan, "p_value": math.nan, "se": math.nan, "method": "",
                "note": note}
    iv = test.interval
    return {"scope": scope, "n": iv.n, "estimate": iv.estimate, "ci_low": iv.low,
            "ci_high": iv.high, "p_value": test.p_value, "se": test.se, "method": iv.method,
            "note": note}


def seeds_test(metric: str, a: pd.DataFrame, b: pd.DataFrame, seeds: Sequence[int]
               ) -> tuple[stats.Test | None, str]:
    """Paired t over seeds of the oriented per-seed differences."""
    sign = _sign(metric)
    diffs = [sign * (float(a.at[s, metric]) - float(b.at[s, metric])) for s in seeds]
    kept = [d for d in diffs if not math.isnan(d)]
    note = ""
    if len(kept) < len(diffs):
        lost = [str(s) for s, d in zip(seeds, diffs, strict=True) if math.isnan(d)]
        note = (f"{len(kept)} of {len(diffs)} seeds have a value in both "
                f"(not seed {', '.join(lost)})")
    unpaired = set(a.index) ^ set(b.index)
    if unpaired:
        note = (note + "; " if note else "") + f"unpaired seed(s) {sorted(unpaired)} left out"
    if len(kept) < 2:
        return None, note or "fewer than 2 paired seeds"
    return stats.paired_t(kept), note


def adjust(table: pd.DataFrame) -> pd.DataFrame:
    """Holm across every tested row; verdicts; the minimum detectable effect at 5 % / m."""
    table = table.copy()
    table["p_holm"] = stats.holm(table["p_value"].to_numpy(float))
    tested = int(table["p_value"].notna().sum())
    alpha = ALPHA / max(tested, 1)
    verdicts, mdes = [], []
    for r in table.itertuples():
        if math.isnan(r.p_holm):
            verdicts.append(NOT_TESTED)
        elif r.p_holm < ALPHA:
            verdicts.append(BETTER if r.estimate > 0 else WORSE)
        else:
            verdicts.append(NO_DIFFERENCE)
        if math.isnan(r.se):
            mdes.append(math.nan)
        elif r.scope == "condition":
            mdes.append(stats.mde_t(r.se * math.sqrt(r.n), int(r.n), alpha))
        else:
            mdes.append(stats.mde_normal(r.se, alpha))
    table["verdict"] = verdicts
    table["mde"] = mdes
    return table[COLUMNS]


# -- one seed: two trained models -------------------------------------------------------


def models_test(metric: str, cond: RunData, ref: RunData, manifest: Mapping[str, Any],
                resamples: int, rng: np.random.Generator) -> tuple[stats.Test | None, str]:
    """The oriented difference of two runs on `metric`, by the method for its data."""
    dist = {int(k): float(v) for k, v in manifest["length_distribution"].items()}
    sign = _sign(metric)
    if metric in ("format_validity", "rule_validity"):
        column = "format_valid" if metric == "format_validity" else "rule_valid"
        a, b = _samples(cond.samples), _samples(ref.samples)
        return stats.newcombe_difference(float(a[column].sum()), len(a),
                                         float(b[column].sum()), len(b)), ""
    if metric == "rule_validity_above_chance":
        return _above_chance_test(_samples(cond.samples), _samples(ref.samples), resamples,
                                  rng), ""
    if metric in LEARNING_SPEED:
        return _curve_test(metric, cond, ref)
    a, b = _scores(cond.scores), _scores(ref.scores)
    if metric == "canonical_perplexity":
        da, db = a[a["split"] == "canonical"], b[b["split"] == "canonical"]
        _same(da, db, "doc", cond.scores, ref.scores)
        return _paired_bootstrap(
            lambda idx, x: metrics.canonical_metrics(metrics.take(x, idx))[metric],
            (metrics.columns(da, ["logprob", "n_tokens"]),),
            (metrics.columns(db, ["logprob", "n_tokens"]),),
            list(range(len(da))), sign, resamples, rng, "paired_bootstrap"), ""
    ta, tb = a[a["split"] == metrics.HEADLINE_SPLIT], b[b["split"] == metrics.HEADLINE_SPLIT]
    _same(ta, tb, "text", cond.scores, ref.scores)
    exact_a, exact_b = _exact(a), _exact(b)
    if metric == "excess_nll":
        va, vb = ta[ta["valid"]], tb[tb["valid"]]
        diff = sign * ((va["logp_true"] - va["logprob"]).to_numpy(float)
                       - (vb["logp_true"] - vb["logprob"]).to_numpy(float))
        exact = {n: sign * (exact_a[n] - exact_b[n]) for n in exact_a}
        return excess.excess_nll(va["length"].to_numpy(int), diff, dist, exact), ""
    names = ["valid", "negative_type", "length", "logprob", "n_tokens", "logp_true",
             "pair_logprob", "cluster"]
    return _paired_bootstrap(
        lambda idx, x, e: metrics.split_metrics(metrics.take(x, idx), dist, e)[metric],
        (metrics.columns(ta, names), exact_a), (metrics.columns(tb, names), exact_b),
        ta["cluster"].tolist(), sign, resamples, rng, "paired_cluster_bootstrap"), ""


def _paired_bootstrap(stat: Callable[..., float], a: tuple, b: tuple,
                      clusters: Sequence[object], sign: float, resamples: int,
                      rng: np.random.Generator, method: str) -> stats.Test:
    """Both runs resampled by the same clusters (`stat(idx, *a)` against `stat(idx, *b)`);
    a normal interval from the bootstrap standard error of the oriented difference."""
    full = np.arange(len(clusters))
    estimate = sign * (stat(full, *a) - stat(full, *b))
    draws = [sign * (stat(idx, *a) - stat(idx, *b))
             for idx in stats.cluster_draws(clusters, rng, resamples)]
    draws = [d for d in draws if not math.isnan(d)]
    se = float(np.std(draws, ddof=1)) if len(draws) > 1 else math.nan
    n = len(set(map(str, clusters)))
    return stats.normal_interval(estimate, se, n, method)


def _above_chance_test(a: pd.DataFrame, b: pd.DataFrame, resamples: int,
                       rng: np.random.Generator) -> stats.Test:
    """Independent bootstraps of each run's samples; their standard errors add. Near 0 this
    normal interval covers 94-95 % on samples shaped like the default's g2 models, where
    MOVER of the two runs' own intervals covers 97-98 % (`tests/grammar/test_judging.py`)."""
    def estimate_and_se(frame: pd.DataFrame) -> tuple[float, float]:
        fmt, rule, chance = judging.judged(frame)
        idx = rng.integers(0, len(fmt), size=(resamples, len(fmt)))
        boot = judging.above_chance(fmt[idx], rule[idx], chance[idx])
        return float(judging.above_chance(fmt, rule, chance)), float(np.nanstd(boot, ddof=1))

    (ea, sa), (eb, sb) = estimate_and_se(a), estimate_and_se(b)
    return stats.normal_interval(ea - eb, math.hypot(sa, sb), len(a) + len(b),
                                 "independent_bootstrap")


def _curve_test(metric: str, cond: RunData, ref: RunData) -> tuple[stats.Test | None, str]:
    if cond.curve is None or ref.curve is None:
        return None, "no learning curve"
    ca, cb = read_json(cond.curve), read_json(ref.curve)
    if metric == "tokens_to_threshold":
        return None, ("one run per condition: a threshold crossing has no within-run "
                      "interval; run two or more seeds")
    if ca["texts"] != cb["texts"]:
        raise DataFileError(f"{cond.curve} and {ref.curve}: the curves score different strings")
    # lower is better: reference minus condition, string by string
    return excess.curve_estimate(ca, excess.per_string_area(cb) - excess.per_string_area(ca)), ""


@functools.cache  # read once per run, not once per metric
def _scores(path: Path) -> pd.DataFrame:
    frame = pd.DataFrame(read_jsonl(path, required=("split", "logprob")))
    for column in ("valid",):
        if column in frame.columns:
            frame[column] = frame[column].fillna(False).astype(bool)
    frame["pair_logprob"] = pd.to_numeric(frame.get("pair_logprob"), errors="coerce")
    return frame


@functools.cache
def _samples(path: Path) -> pd.DataFrame:
    return pd.DataFrame(read_jsonl(path, required=("format_valid", "rule_valid",
                                                   "chance_at_length")))


def _exact(frame: pd.DataFrame) -> dict[int, float]:
    rows = frame[frame["split"] == excess.EXACT_SET]
    if rows.empty:
        return {}
    return excess.exact_means(rows["length"].to_numpy(int),
                              (rows["logp_true"] - rows["logprob"]).to_numpy(float))


def _same(a: pd.DataFrame, b: pd.DataFrame, key: str, path_a: Path, path_b: Path) -> None:
    if a[key].tolist() != b[key].tolist():
        raise DataFileError(f"{path_a} and {path_b}: the two runs were not scored on the same "
                            f"{'documents' if key == 'doc' else 'strings'}; regenerate both")


def combine(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Every grammar's contrasts in one table, Holm and mde over all of them."""
    return adjust(pd.concat(tables, ignore_index=True))
