"""The configuration: one set of defaults, and bad values rejected naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from metaexamples.cli import main as cli_main
from metaexamples.config import Config, ConfigError, load_config, merge_config
from metaexamples.models import PRESETS

from .conftest import REPO

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text("utf-8"))
CONFIG_YAML = REPO / "config.yaml"


# -- one set of defaults ----------------------------------------------------------------


def schema_defaults(node: dict[str, Any]) -> Any:
    """The document the schema's `default`s describe (a missing default leaves a hole)."""
    if "default" in node:
        return node["default"]
    return {key: schema_defaults(sub) for key, sub in node.get("properties", {}).items()}


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Key paths where two documents differ (10 and 10.0 are equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in differences(a.get(k, "<missing>"), b.get(k, "<missing>"),
                                     f"{path}.{k}".lstrip("."))]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_dataclass_defaults_schema_defaults_and_config_yaml_agree():
    code = Config().to_dict()
    shown = yaml.safe_load(CONFIG_YAML.read_text("utf-8"))
    assert differences(code, shown) == [], "config.yaml vs the dataclasses"
    assert differences(code, schema_defaults(SCHEMA)) == [], "schema vs the dataclasses"


def test_differences_names_the_key_that_disagrees():
    a = {"training": {"batch_size": 8, "eval_documents": 16}, "conditions": {"x": {}}}
    b = {"training": {"batch_size": 4, "eval_documents": 16.0}}
    assert differences(a, b) == ["conditions: {'x': {}} != '<missing>'",
                                 "training.batch_size: 8 != 4"]


def schema_enums(node: dict[str, Any], path: str = "") -> dict[str, list]:
    """Every `enum` in the schema by location (`[]`: list items, `*`: any mapping key)."""
    found = {path: node["enum"]} if "enum" in node else {}
    if "$ref" in node:
        found |= schema_enums(SCHEMA["$defs"][node["$ref"].split("/")[-1]], path)
    for key, sub in node.get("properties", {}).items():
        found |= schema_enums(sub, f"{path}.{key}".lstrip("."))
    if isinstance(node.get("additionalProperties"), dict):
        found |= schema_enums(node["additionalProperties"], f"{path}.*")
    if isinstance(node.get("items"), dict):
        found |= schema_enums(node["items"], f"{path}[]")
    return found


# How to put one value at each enum's location into a config.
ENUM_SETTERS = {
    "alphabet.ranking": lambda v: {"alphabet": {"ranking": v}},
    "training.precision": lambda v: {"training": {"precision": v}},
    "conditions.*.design": lambda v: {"conditions": {"x": {"design": v,
                                                           "percent": 0 if v == "none" else 5}}},
    "experiment.grammars[]": lambda v: {"experiment": {"grammars": [v]}},
}


def test_every_schema_enum_is_covered_here():
    assert sorted(schema_enums(SCHEMA)) == sorted(ENUM_SETTERS)


@pytest.mark.parametrize("location", sorted(ENUM_SETTERS))
def test_dataclasses_allow_exactly_the_schema_enum(location):
    allowed = schema_enums(SCHEMA)[location]
    for value in allowed:
        Config.from_dict(ENUM_SETTERS[location](value))
    with pytest.raises(ConfigError) as err:
        Config.from_dict(ENUM_SETTERS[location]("bogus"))
    key = location.replace(".*.", ".x.").removesuffix("[]")
    assert f"{key}: 'bogus' is not one of {allowed}" in str(err.value)


def test_config_yaml_and_schema_name_every_model_preset():
    text = CONFIG_YAML.read_text("utf-8")
    described = SCHEMA["properties"]["model"]["properties"]["name"]["description"]
    for preset in PRESETS:
        assert preset in text.split("\nmodel:")[1].split("name:")[0]
        assert preset in described


def test_a_partial_grammar_entry_keeps_its_grammars_defaults():
    cfg = Config.from_dict({"grammars": {"g2": {"max_length": 8}}})
    assert (cfg.grammars["g2"].min_length, cfg.grammars["g2"].max_length) == (2, 8)
    assert cfg.grammars["g1"].max_length == 12


def test_empty_config_gives_defaults():
    cfg = Config.from_dict({})
    assert cfg.all_conditions["meta_10pct"].design == "describe"
    assert cfg.all_conditions["meta_10pct"].percent == 10
    assert cfg == load_config(CONFIG_YAML)


# -- merging config files like --configfile -----------------------------------------


def test_merge_config_merges_mappings_and_replaces_lists():
    base = {"training": {"max_steps": 40, "batch_size": 4}, "experiment": {"seeds": [0]}}
    over = {"training": {"max_steps": 7}, "experiment": {"seeds": [1, 2]}, "new": {"a": 1}}
    assert merge_config(base, over) == {
        "training": {"max_steps": 7, "batch_size": 4},
        "experiment": {"seeds": [1, 2]},
        "new": {"a": 1},
    }
    assert base["training"]["max_steps"] == 40  # inputs untouched


PARTIAL = {
    "training": {"max_steps": 7},
    "grammars": {"g2": {"max_length": 8}},
    "conditions": {"mine_5pct": {"design": "judge", "percent": 5}},
    "experiment": {"conditions": ["examples", "mine_5pct"]},
}


def snakemake_resolved_config(tmp_path: Path, configfile: Path) -> dict:
    """The config a Snakefile with `configfile: config.yaml` sees under --configfile."""
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "config.yaml").write_bytes(CONFIG_YAML.read_bytes())
    (wf / "Snakefile").write_text(
        'import json\nconfigfile: "config.yaml"\n'
        'open("resolved.json", "w").write(json.dumps(config))\n'
        'rule all:\n    output: "x"\n    shell: "touch {output}"\n', encoding="utf-8")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--workflow-profile",
                           "none", "--configfile", str(configfile)],
                          cwd=wf, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load((wf / "resolved.json").read_text("utf-8"))


def test_validate_config_merges_a_partial_file_like_configfile(tmp_path, capsys, monkeypatch):
    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump(PARTIAL), encoding="utf-8")
    monkeypatch.chdir(REPO)  # the base config.yaml, as the workflow reads it
    assert cli_main(["validate-config", str(partial)]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = Config.from_dict(snakemake_resolved_config(tmp_path, partial)).to_dict()
    assert printed == expected
    assert printed["training"] == {**Config().to_dict()["training"], "max_steps": 7}
    assert printed["grammars"]["g2"] == {"min_length": 2, "max_length": 8}
    assert "judge_10pct" in printed["conditions"] and "mine_5pct" in printed["conditions"]


@pytest.mark.parametrize("configfile", sorted((REPO / "config").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_configfile_is_valid_over_config_yaml(configfile, monkeypatch):
    monkeypatch.chdir(REPO)
    assert cli_main(["validate-config", str(configfile)]) == 0


def test_validate_config_names_the_key_of_a_bad_partial_file(tmp_path, caplog):
    partial = tmp_path / "bad.yaml"
    partial.write_text("training: {batch_size: 0}\n", encoding="utf-8")
    assert cli_main(["validate-config", "--base", str(CONFIG_YAML), str(partial)]) == 1
    assert "training.batch_size: 0 must be positive" in caplog.text


# -- bad values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"grammars": {"g4": {}}}, "grammars.g4: 'g4' is not one of ['g1', 'g2', 'g3']"),
        ({"conditions": {"x": {"design": "describe", "percent": 120}}},
         "conditions.x.percent: 120.0 must be between 0 and 100"),
        ({"conditions": {"x": {"design": "describe", "percent": -1}}}, "conditions.x.percent"),
        ({"grammars": {"g1": {"min_length": 5, "max_length": 3}}},
         "grammars.g1: min_length, max_length: g1: min_length (5) must be <= max_length (3)"),
        ({"conditions": {"x": {"design": "poetry", "percent": 5}}},
         "conditions.x.design: 'poetry' is not one of ['none', 'describe'"),
        ({"model": {"name": "tiny-gpt"}}, "model.name: 'tiny-gpt' is neither a preset"),
        ({"trainig": {}}, "trainig: unknown key; allowed keys here"),
        ({"training": {"max_step": 3}}, "training.max_step: unknown key"),
        ({"training": {"synthetic_mix_ratio": 1.5}}, "training.synthetic_mix_ratio: 1.5"),
        ({"training": {"synthetic_mix_ratio": 0}}, "training.synthetic_mix_ratio"),
        ({"training": {"max_steps": "ten"}}, "training.max_steps: expected an integer"),
        ({"training": {"max_steps": {"g1": 10, "g4": 10}}},
         "training.max_steps: 'g4' is not one of ['g1', 'g2', 'g3']"),
        ({"training": {"max_steps": {"g1": 10, "g2": 0, "g3": 10}}},
         "training.max_steps.g2: 0 must be positive"),
        ({"training": {"max_steps": {"g1": 10, "g2": 1.5, "g3": 10}}},
         "training.max_steps.g2: expected an integer"),
        ({"training": {"max_steps": {"g1": 10}}}, "training.max_steps: no entry for 'g2'"),
        ({"training": {"adam_beta2": 1.0}}, "training.adam_beta2: 1.0 must be in [0, 1)"),
        ({"training": {"max_seq_length": 4096}}, "above the model's maximum"),
        ({"canonical": {"source": "c4"}}, "canonical.source: 'c4' is not one of"),
        ({"alphabet": {"ranking": "fancy"}}, "alphabet.ranking: 'fancy'"),
        ({"experiment": {"seeds": []}}, "experiment.seeds: give at least one"),
        ({"experiment": {"conditions": []}}, "experiment.conditions: give at least one"),
        ({"experiment": {"seeds": [0, 1, 0]}}, "experiment.seeds: [0] listed more than once"),
        ({"experiment": {"grammars": ["g1", "g1"]}},
         "experiment.grammars: ['g1'] listed more than once"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(config, message):
    with pytest.raises(ConfigError) as err:
        Config.from_dict(config)
    assert message in str(err.value)


def test_max_steps_per_grammar_resolves_per_grammar_and_layers_like_any_mapping(tmp_path):
    default = Config().training
    assert {g: default.steps_for(g) for g in ("g1", "g2", "g3")} == default.max_steps
    one_number = tmp_path / "one.yaml"
    one_number.write_text("training: {max_steps: 7}\n")
    layered = load_config(CONFIG_YAML, one_number).training  # a number replaces the mapping
    assert {layered.steps_for(g) for g in ("g1", "g2", "g3")} == {7}
    one_grammar = tmp_path / "g3.yaml"
    one_grammar.write_text("training: {max_steps: {g3: 9}}\n")  # merged key by key
    assert load_config(CONFIG_YAML, one_grammar).training.max_steps == {**default.max_steps,
                                                                       "g3": 9}


def test_a_grammar_left_out_of_max_steps_is_fine_when_it_does_not_run():
    config = Config.from_dict({"training": {"max_steps": {"g3": 5}},
                               "experiment": {"grammars": ["g3"]}})
    assert config.training.run_settings("g3").max_steps == 5
    with pytest.raises(ConfigError, match="no entry for 'g2'"):
        config.training.run_settings("g2")
    with pytest.raises(ConfigError, match="is per grammar; name the run's grammar"):
        config.training.run_settings(None)


def test_run_settings_carry_every_training_setting_the_loop_reads():
    """A setting added to a config section but forgotten in its `run_settings` fails here."""
    from metaexamples.config import NimTrainingConfig, TrainingConfig

    grammar = TrainingConfig(max_steps=40, batch_size=3, gradient_accumulation_steps=2,
                             learning_rate=0.01, weight_decay=0.1, warmup_steps=4,
                             max_grad_norm=0.5, max_seq_length=64, eval_steps=20, save_steps=30,
                             synthetic_mix_ratio=0.8, eval_documents=5, precision="fp32",
                             gradient_checkpointing=True, compile=True, l2sp_weight=2.0,
                             adam_beta1=0.8, adam_beta2=0.9).run_settings("g1")
    assert (grammar.max_steps, grammar.batch_size, grammar.gradient_accumulation_steps,
            grammar.learning_rate, grammar.weight_decay, grammar.warmup_steps,
            grammar.max_grad_norm, grammar.max_seq_length, grammar.eval_steps,
            grammar.save_steps, grammar.synthetic_mix_ratio, grammar.eval_documents,
            grammar.precision, grammar.gradient_checkpointing, grammar.compile,
            grammar.l2sp_weight, grammar.adam_betas, grammar.log_steps, grammar.epochs) == (
        40, 3, 2, 0.01, 0.1, 4, 0.5, 64, 20, 30, 0.8, 5, "fp32", True, True, 2.0, (0.8, 0.9),
        10, 0)
    # Nim: 50 examples in batches of 16 are 4 steps an epoch; 3 epochs, saved every 2
    nim = NimTrainingConfig(epochs=3, batch_size=16, learning_rate=0.001, warmup_fraction=0.25,
                            l2sp_weight=4.0, save_every_epochs=2, adam_beta1=0.85,
                            adam_beta2=0.97).run_settings(50)
    assert (nim.max_steps, nim.batch_size, nim.learning_rate, nim.warmup_steps,
            nim.min_lr_ratio, nim.eval_steps, nim.save_steps, nim.log_steps, nim.l2sp_weight,
            nim.adam_betas, nim.epochs, nim.max_seq_length) == (
        12, 16, 0.001, 3, 0.0, 4, 8, 4, 4.0, (0.85, 0.97), 3, None)


@pytest.mark.parametrize("name", ["c+d", "meta 10", "a/b", "-x", ""])
def test_condition_names_are_path_and_wildcard_safe(name):
    cond = {"design": "judge", "percent": 5}
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"conditions": {name: cond},
                          "experiment": {"conditions": ["examples", name]}})
    assert f"conditions.{name}: condition name {name!r} must be letters, digits" in str(err.value)


def test_experiment_condition_must_be_predefined_or_defined():
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"experiment": {"conditions": ["examples", "meta_50pct"]}})
    assert "experiment.conditions: 'meta_50pct' is not one of ['examples'" in str(err.value)


def test_num_heads_must_divide_hidden_size():
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"model": {"tiny": {"hidden_size": 64, "num_heads": 3}}})
    assert "model.tiny.num_heads: 3 does not divide model.tiny.hidden_size (64)" in str(err.value)


def test_local_canonical_source_must_exist(tmp_path):
    missing = tmp_path / "corpus.jsonl"
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"canonical": {"source": str(missing)}})
    assert f"canonical.source: {str(missing)!r}: no such file" in str(err.value)
    missing.write_text('{"text": "a document"}\n', encoding="utf-8")
    assert Config.from_dict({"canonical": {"source": str(missing)}}).canonical.local_file == missing


@pytest.mark.parametrize(("low", "high", "admits"), [(3, 3, False), (1, 1, False), (3, 4, True)])
def test_g2_bounds_must_admit_an_even_length(low, high, admits):
    config = {"grammars": {"g2": {"min_length": low, "max_length": high}}}
    if admits:
        assert Config.from_dict(config).grammars["g2"].min_length == low
        return
    with pytest.raises(ConfigError) as err:
        Config.from_dict(config)
    assert f"grammars.g2: min_length, max_length: g2: no even length in [{low}, {high}]" in (
        str(err.value))


@pytest.mark.parametrize("ranking", ["rarity", "ascii-fallback"])
def test_alphabet_size_above_what_the_presets_tokenizer_supplies(ranking):
    limit = PRESETS["tiny-olmo"].max_alphabet[ranking]
    ok = {"alphabet": {"size": limit, "ranking": ranking}}
    assert Config.from_dict(ok).alphabet.size == limit
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"alphabet": {"size": limit + 1, "ranking": ranking}})
    assert f"alphabet.size: {limit + 1} is more symbols than the tokenizer of 'tiny-olmo'" in (
        str(err.value))
    # a hub model's tokenizer is known only when its tokens are selected
    Config.from_dict({"model": {"name": "org/model"}, "alphabet": {"size": limit + 1}})


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


# -- every bound of the schema holds in the dataclasses too ---------------------------

BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")


def schema_bounds(node: dict[str, Any], path: str = "") -> dict[str, dict[str, Any]]:
    """Every numeric leaf with bounds, by dotted key (`*`: any mapping key)."""
    if "$ref" in node:
        node = {**SCHEMA["$defs"][node["$ref"].split("/")[-1]], **node}
    found = {path: node} if any(b in node for b in BOUNDS) else {}
    for key, sub in node.get("properties", {}).items():
        found |= schema_bounds(sub, f"{path}.{key}".lstrip("."))
    if isinstance(node.get("additionalProperties"), dict):
        found |= schema_bounds(node["additionalProperties"], f"{path}.*")
    return found


def outside(node: dict[str, Any]) -> list[float]:
    """Values just outside each bound (integers for integer keys)."""
    step = 1 if node.get("type") == "integer" else 0.5
    values = []
    if "minimum" in node:
        values.append(node["minimum"] - step)
    if "maximum" in node:
        values.append(node["maximum"] + step)
    values += [node[b] for b in ("exclusiveMinimum", "exclusiveMaximum") if b in node]
    return values


def nested(key: str, value: Any) -> dict[str, Any]:
    """A config holding `value` at `key` (`*` becomes a valid condition named x)."""
    *parents, leaf = key.replace("*", "x").split(".")
    doc: dict[str, Any] = {leaf: value}
    if parents[:1] == ["conditions"]:
        doc = {"design": "describe", "percent": 5, **doc}
    for part in reversed(parents):
        doc = {part: doc}
    return doc


@pytest.mark.parametrize("key", sorted(schema_bounds(SCHEMA)))
def test_dataclasses_reject_what_the_schema_bounds_reject(key):
    node = schema_bounds(SCHEMA)[key]
    for value in outside(node):
        with pytest.raises(ConfigError) as err:
            Config.from_dict(nested(key, value))
        parent, leaf = key.replace("*", "x").rsplit(".", 1)
        assert parent in str(err.value) and leaf in str(err.value), (value, str(err.value))
