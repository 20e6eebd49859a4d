import pytest

from metaexamples.config import Config, ConfigError, load_config

from .conftest import REPO


def test_default_config_file_is_valid():
    cfg = load_config(REPO / "config.yaml")
    assert cfg.model.name == "tiny-olmo"
    assert set(cfg.experiment.conditions) <= set(cfg.all_conditions)


def test_empty_config_gives_defaults():
    cfg = Config.from_dict({})
    assert cfg.all_conditions["meta_10pct"].design == "describe"
    assert cfg.all_conditions["meta_10pct"].percent == 10


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"grammars": {"g4": {}}}, "grammars.g4: 'g4' is not one of ['g1', 'g2', 'g3']"),
        ({"conditions": {"x": {"design": "describe", "percent": 120}}},
         "conditions.x.percent: 120.0 must be between 0 and 100"),
        ({"conditions": {"x": {"design": "describe", "percent": -1}}}, "conditions.x.percent"),
        ({"grammars": {"g1": {"min_length": 5, "max_length": 3}}},
         "grammars.g1.min_length: 5 is above grammars.g1.max_length (3)"),
        ({"conditions": {"x": {"design": "poetry", "percent": 5}}},
         "conditions.x.design: 'poetry' is not one of ['none', 'describe'"),
        ({"model": {"name": "tiny-gpt"}}, "model.name: 'tiny-gpt' is neither a preset"),
        ({"trainig": {}}, "trainig: unknown key; allowed keys here"),
        ({"training": {"max_step": 3}}, "training.max_step: unknown key"),
        ({"training": {"synthetic_mix_ratio": 1.5}}, "training.synthetic_mix_ratio: 1.5"),
        ({"training": {"synthetic_mix_ratio": 0}}, "training.synthetic_mix_ratio"),
        ({"training": {"max_steps": "ten"}}, "training.max_steps: expected an integer"),
        ({"training": {"max_seq_length": 4096}}, "above the model's maximum"),
        ({"experiment": {"conditions": ["examples", "meta_50pct"]}},
         "experiment.conditions: 'meta_50pct' is not one of"),
        ({"canonical": {"source": "c4"}}, "canonical.source: 'c4' is not one of"),
        ({"alphabet": {"ranking": "fancy"}}, "alphabet.ranking: 'fancy'"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(config, message):
    with pytest.raises(ConfigError) as err:
        Config.from_dict(config)
    assert message in str(err.value)


def test_missing_config_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_hub_ids_and_custom_conditions_are_accepted():
    cfg = Config.from_dict({
        "model": {"name": "allenai/OLMo-1B-hf"},
        "conditions": {"judge_5pct": {"design": "judge", "percent": 5}},
        "experiment": {"conditions": ["examples", "judge_5pct"]},
    })
    assert cfg.all_conditions["judge_5pct"].percent == 5.0
    assert cfg.to_dict()["model"]["name"] == "allenai/OLMo-1B-hf"
