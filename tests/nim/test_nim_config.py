"""`nim.experiments` is validated with the rest of the config, naming the full key."""

import pytest

from metaexamples.config import Config, ConfigError, load_config

from ..conftest import REPO


@pytest.mark.parametrize("path", ["config.yaml", ".test/config.yaml"])
def test_shipped_configs_are_valid(path):
    assert "tiny" in load_config(REPO / path).nim.experiments


def test_valid_experiments():
    cfg = Config.from_dict({"nim": {"experiments": {
        "357": {}, "mine": {"preset": "cheating", "n_train": 100},
        "strict": {"preset": "tiny", "leakage": {"max_pile_overlap_fraction": 0.0}},
    }}})  # fmt: skip
    assert set(cfg.nim.experiments) == {"357", "mine", "strict"}


def test_integer_experiment_names_from_yaml_are_strings():
    cfg = Config.from_dict({"nim": {"experiments": {357: {"n_train": 10}}}})
    assert cfg.nim.experiments == {"357": {"n_train": 10}}


@pytest.mark.parametrize(
    ("experiments", "message"),
    [
        ({"mine": {}}, "nim.experiments.mine: 'mine' is not a preset"),
        ({"x": {"preset": "nope"}}, "nim.experiments.x.preset: 'nope' is not a preset"),
        ({"tiny": {"n_train": 0}}, "nim.experiments.tiny.n_train: expected an integer >= 1"),
        ({"tiny": {"bogus": 1}}, "nim.experiments.tiny.bogus: unknown key"),
        ({"tiny": {"split": "diagonal"}}, "nim.experiments.tiny.split: expected one of"),
        ({"tiny": {"cheat_probability": 0.3}}, "nim.experiments.tiny.cheat_probability"),
        ({"tiny": {"leakage": {"max_names_only_advantage": "high"}}},
         "nim.experiments.tiny.leakage.max_names_only_advantage: expected a number"),
        ({"tiny": {"leakage": {"typo": 1}}}, "nim.experiments.tiny.leakage.typo: unknown key"),
        ({"tiny": None}, "nim.experiments.tiny: expected a mapping"),
        ({"a b": {}}, "nim.experiments.a b: experiment name"),
    ],
)  # fmt: skip
def test_invalid_experiments_name_the_key(experiments, message):
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"nim": {"experiments": experiments}})
    assert message in str(info.value)


def test_an_experiment_set_to_false_is_not_run():
    """A layered config (config/nim_pythia410m.yaml) drops config.yaml's tiny experiment."""
    cfg = Config.from_dict({"nim": {"experiments": {"tiny": False, "357": {}}}})
    assert cfg.nim.active_experiments == {"357": {}}
    with pytest.raises(ConfigError, match="nim.experiments.tiny: expected a mapping"):
        Config.from_dict({"nim": {"experiments": {"tiny": True}}})


@pytest.mark.parametrize("key", ["adam_beta1", "adam_beta2"])
def test_nim_betas_are_checked_naming_the_key(key):
    with pytest.raises(ConfigError, match=rf"nim.training.{key}: 1.0 must be in \[0, 1\)"):
        Config.from_dict({"nim": {"training": {key: 1.0}}})
