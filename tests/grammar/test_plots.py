"""What a reader must be able to see in the figures: intervals, legends and notes that are
not hidden behind the data."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from metaexamples.grammar import plots

CONDITIONS = ("baseline", "examples", "oracle")
KINDS = ("minimal_edit", "out_of_alphabet")


@pytest.fixture
def figures(monkeypatch, tmp_path):
    """Keep the figures a plot function draws, instead of saving and closing them."""
    kept = []

    def keep(fig, path):
        kept.append(fig)
        return tmp_path / path

    monkeypatch.setattr(plots, "save_figure", keep)
    return kept


def negative_type_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    summary = pd.DataFrame([
        {"condition": c, **{f"{p}{k}": v for p in ("auroc_", "pair_accuracy_") for k in KINDS},
         **{f"n_{k}": 50 for k in KINDS}}
        for c, v in zip(CONDITIONS, (0.5, 0.9, 1.0), strict=True)])
    table = pd.DataFrame([
        {"condition": c, "metric": f"{p}{k}", "mean": v, "scope": "run",
         "run_ci_low": v - 0.07 if v == 1.0 else v - 0.05, "run_ci_high": min(v + 0.05, 1.0),
         "seeds_ci_low": math.nan, "seeds_ci_high": math.nan}
        for c, v in zip(CONDITIONS, (0.5, 0.9, 1.0), strict=True)
        for p in ("auroc_", "pair_accuracy_") for k in KINDS])
    return summary, table


def test_the_oracle_bars_interval_is_drawn_in_a_colour_its_bar_does_not_have(figures):
    summary, table = negative_type_tables()
    plots.plot_by_negative_type(summary, table, "g2", "by_negative_type.png")
    (fig,) = figures
    for ax in fig.axes:
        bars = {c.get_label(): c for c in ax.containers}
        oracle = bars["oracle"]
        face = oracle.patches[0].get_facecolor()
        whiskers = oracle.errorbar.lines[2][0].get_colors()
        assert all(tuple(w) != tuple(face) for w in whiskers)
        # the interval below 1 is there to be seen: [0.93, 1]
        assert oracle.errorbar.lines[2][0].get_segments()[0][0][1] == pytest.approx(0.93)


def test_the_legend_of_negative_types_sits_outside_every_panel(figures):
    summary, table = negative_type_tables()
    plots.plot_by_negative_type(summary, table, "g2", "by_negative_type.png")
    (fig,) = figures
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == list(CONDITIONS)


def test_forest_plot_shows_why_a_contrast_is_not_tested_in_full_and_names_turned_metrics(
        figures):
    note = ("one run per condition: a threshold crossing has no within-run interval; run two "
            "or more seeds")
    table = pd.DataFrame([
        {"grammar": "g3", "condition": "meta_10pct", "reference": "examples",
         "metric": "tokens_to_threshold", "scope": "models", "estimate": math.nan,
         "ci_low": math.nan, "ci_high": math.nan, "verdict": "not tested", "note": note},
        {"grammar": "g3", "condition": "meta_10pct", "reference": "examples",
         "metric": "auroc", "scope": "models", "estimate": -0.03, "ci_low": -0.05,
         "ci_high": -0.01, "verdict": "worse", "note": ""}])
    plots.plot_contrasts(table, "contrasts.png")
    (fig,) = figures
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert [" ".join(t.split()) for t in texts] == [f"not tested: {note}"]
    notes_only = next(ax for ax in fig.axes if ax.texts)
    assert list(notes_only.get_xticks()) == []  # no scale (or zero line) behind a note
    titles = {ax.get_title() for ax in fig.axes if ax.get_title()}
    assert titles == {"synthetic tokens to the threshold (↓: reference − condition)",
                      "AUROC valid vs all invalid (↑)"}


@pytest.mark.parametrize(("oracle_above_chance", "drawn"), [(0.0, False), (0.87, True)])
def test_rule_validity_above_chance_gets_a_panel_only_where_there_is_room_to_learn(
        figures, oracle_above_chance, drawn):
    # g1 accepts every string of a valid length: chance is 1 and the oracle's excess is 0
    values = {"baseline": 0.0, "examples": 0.0, "oracle": oracle_above_chance}
    summary = pd.DataFrame([{"condition": c, "format_validity": 0.9,
                             "rule_validity_above_chance": v} for c, v in values.items()])
    table = pd.DataFrame([
        {"condition": c, "metric": m, "mean": v, "scope": "run", "run_ci_low": v - 0.01,
         "run_ci_high": v + 0.01, "seeds_ci_low": math.nan, "seeds_ci_high": math.nan,
         "seeds_learned": ""}
        for c, v in values.items() for m in ("format_validity", "rule_validity_above_chance")])
    plots.plot_metrics_by_condition(summary, table, "g1", "metrics.png")
    (fig,) = figures
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert (plots.LABELS["rule_validity_above_chance"] in titles) is drawn
    assert plots.LABELS["format_validity"] in titles
