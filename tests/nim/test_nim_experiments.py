import pytest

from metaexamples.nim.experiments import (
    ExperimentError,
    default_thresholds,
    resolve_experiment,
)
from metaexamples.nim.leakage import LeakageThresholds
from metaexamples.nim.settings import PRESETS, NimSettings


def test_every_preset_resolves_under_its_own_name():
    for name in PRESETS:
        exp = resolve_experiment(name, {})
        assert exp.preset == name
        assert exp.settings == NimSettings.from_dict(PRESETS[name])


def test_preset_key_and_overrides():
    exp = resolve_experiment("small357", {"preset": "357", "n_train": 50, "split": "pile"})
    assert exp.settings.max_remove == (3, 5, 7)
    assert (exp.settings.n_train, exp.settings.split) == (50, "pile")
    assert exp.eval_sets == ("eval", "eval_m3", "eval_m5", "eval_m7")


def test_cheat_experiments_relax_the_name_checks_only():
    exp = resolve_experiment("cheating", None)
    assert exp.eval_sets == ("eval", "eval_cheat", "eval_counter_cheat", "eval_neutral")
    assert exp.thresholds.max_name_label_mi_bits is None
    assert exp.thresholds.max_names_only_advantage is None
    assert exp.thresholds.max_exact_overlap_fraction == 0.0
    assert resolve_experiment("notcheating", {}).thresholds == LeakageThresholds()


def test_random_split_reports_but_does_not_gate_exact_overlap():
    settings = NimSettings.from_dict({**PRESETS["tiny"], "split": "random"})
    assert default_thresholds(settings).max_exact_overlap_fraction is None


def test_leakage_overrides_apply_on_top_of_the_defaults():
    exp = resolve_experiment("cheating", {"leakage": {"max_pile_overlap_fraction": 0.1}})
    assert exp.thresholds.max_pile_overlap_fraction == 0.1
    assert exp.thresholds.max_names_only_advantage is None
    exp = resolve_experiment("cheating", {"leakage": {"max_names_only_advantage": 0.2}})
    assert exp.thresholds.max_names_only_advantage == 0.2


@pytest.mark.parametrize(
    ("name", "entry", "key"),
    [
        ("mine", {}, ""),  # neither a preset name nor a preset key
        ("x", {"preset": "nope"}, "preset"),
        ("tiny", {"n_train": 0}, "n_train"),
        ("tiny", {"bogus": 1}, "bogus"),
        ("tiny", {"cheat_probability": 0.5}, "cheat_probability"),
        ("tiny", {"leakage": {"nope": 1}}, "leakage.nope"),
        (
            "tiny",
            {"leakage": {"max_pile_overlap_fraction": -1}},
            "leakage.max_pile_overlap_fraction",
        ),
        ("tiny", {"leakage": [1]}, "leakage"),
        ("a/b", {}, ""),
    ],
)
def test_errors_name_the_key(name, entry, key):
    with pytest.raises(ExperimentError) as info:
        resolve_experiment(name, entry)
    assert info.value.key == key
