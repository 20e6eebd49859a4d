"""Seeds needed from a pilot's spread: the table and the command."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from metaexamples import stats
from metaexamples.cli import main
from metaexamples.grammar import power


def _pilot() -> pd.DataFrame:
    rows = [{"grammar": "g3", "condition": "baseline", "seed": None, "excess_nll": 100.0}]
    diffs = [0.02, 0.08, -0.01, 0.05, 0.03]
    for seed, d in enumerate(diffs):
        rows.append({"grammar": "g3", "condition": "examples", "seed": seed,
                     "rule_validity_above_chance": 0.2, "excess_nll": 5.0})
        rows.append({"grammar": "g3", "condition": "meta_10pct", "seed": seed,
                     "rule_validity_above_chance": 0.2 + d, "excess_nll": 5.0 + d})
    return pd.DataFrame(rows)


def test_effects_parse_absolute_or_relative_and_reject_the_rest():
    assert power.parse_effect("rule_validity_above_chance=0.05").size == 0.05
    assert power.parse_effect("excess_nll=10%") == power.Effect("excess_nll", 0.1, True)
    for bad in ("nonsense=0.1", "excess_nll", "excess_nll=-1", "excess_nll=x"):
        with pytest.raises(ValueError, match="--effect"):
            power.parse_effect(bad)


def test_seeds_table_uses_the_spread_of_paired_differences():
    effects = [power.parse_effect("rule_validity_above_chance=0.05"),
               power.parse_effect("excess_nll=10%")]
    table = power.seeds_table(_pilot(), effects)
    assert set(table["condition"]) == {"meta_10pct"}  # the bounds are not conditions
    table = table.set_index("metric")
    sd = pd.Series([0.02, 0.08, -0.01, 0.05, 0.03]).std()
    row = table.loc["rule_validity_above_chance"]
    assert row["pilot_seeds"] == 5 and row["sd_difference"] == pytest.approx(sd)
    assert row["seeds_needed"] == stats.seeds_needed(0.05, sd)
    assert table.loc["excess_nll", "effect"] == pytest.approx(0.5)  # 10 % of 5.0
    assert stats.t_power(0.05, sd, int(row["seeds_needed"])) >= 0.8


def test_power_command_writes_its_table(tmp_path):
    pilot = tmp_path / "summary.csv"
    _pilot().to_csv(pilot, index=False)
    out = tmp_path / "power.csv"
    assert main(["power", "--summary", str(pilot), "--effect",
                 "rule_validity_above_chance=0.05", "--comparisons", "4", "--out",
                 str(out)]) == 0
    table = pd.read_csv(out)
    assert table["alpha"].iloc[0] == pytest.approx(0.0125)
    assert not math.isnan(table["seeds_needed"].iloc[0])
