"""Named Nim experiments: one `nim.experiments` config entry -> settings and leakage limits.

An entry is a mapping of generator overrides plus two reserved keys::

    nim:
      experiments:
        tiny: {}                                # the preset named like the experiment
        357: {n_train: 2000}                    # that preset, with an override
        my357: {preset: "357", split: pile}    # another preset under a new name
        cheating: {leakage: {max_pile_overlap_fraction: 0.0}}

- ``preset``: the `PRESETS` entry to start from (default: the experiment's own name, which
  must then be a preset);
- ``leakage``: `LeakageThresholds` overrides applied on top of `default_thresholds`;
- every other key: a `NimSettings` field overriding the preset.

Errors are `ExperimentError`, whose ``key`` is the offending key inside the entry (e.g.
``n_train`` or ``leakage.max_names_only_advantage``), so callers can name the full path::

    >>> resolve_experiment("tiny", {}).settings.n_train
    1200
    >>> resolve_experiment("x", {"preset": "tiny", "n_train": 0})
    Traceback (most recent call last):
    ...
    metaexamples.nim.experiments.ExperimentError: n_train: expected an integer >= 1, got 0
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from metaexamples.config_files import ConfigError
from metaexamples.nim.leakage import LeakageThresholds
from metaexamples.nim.settings import PRESETS, NimSettings

__all__ = [
    "EXPERIMENT_NAME_RE",
    "ExperimentError",
    "NimExperiment",
    "default_thresholds",
    "load_experiment",
    "resolve_experiment",
]

EXPERIMENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
PRESET_KEY = "preset"
LABEL_LEAK_REASON = (
    "cheat_probability 1: every example's name pair is tied to its winning move, so the "
    "names give the answer away by design (the original project's datagen_old.py)"
)
LEAKAGE_KEY = "leakage"


class ExperimentError(ValueError):
    """An invalid experiment entry; ``key`` is the offending key inside the entry ('' for
    the entry as a whole)."""

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        self.detail = detail
        super().__init__(f"{key}: {detail}" if key else detail)


@dataclass(frozen=True)
class NimExperiment:
    """One resolved experiment: its generator settings and its leakage gate."""

    name: str
    preset: str
    settings: NimSettings
    thresholds: LeakageThresholds

    @property
    def eval_sets(self) -> tuple[str, ...]:
        """The eval set names: ``eval``, one per max_remove value when there are several,
        and the three bucket sets of cheat experiments (`NimSettings.eval_set_names`)."""
        return self.settings.eval_set_names


def default_thresholds(settings: NimSettings) -> LeakageThresholds:
    """The gate an experiment gets unless its entry says otherwise.

    With ``cheat_probability`` 1 every example carries a name pair tied to its label (the
    seed's label-leaking generator): the strict gate runs and is expected to fail
    (`LABEL_LEAK_REASON`). Other shortcut experiments (``cheat_fraction > 0``) tie only
    some examples' names to labels, on purpose, so both name checks are off; a ``random``
    split draws train and eval independently on purpose, so exact overlap is reported but
    not gated. Everything else keeps the strict defaults.
    """
    if settings.cheat_probability == 1:
        return LeakageThresholds(expected_failure=LABEL_LEAK_REASON)
    relaxed: dict[str, Any] = {}
    if settings.has_cheat:
        relaxed.update(max_name_label_mi_bits=None, max_names_only_advantage=None)
    if settings.split == "random":
        relaxed["max_exact_overlap_fraction"] = None
    return replace(LeakageThresholds(), **relaxed)


def _split_message(err: ValueError, known: set[str]) -> tuple[str, str]:
    """(key, detail) from a "key: detail" message when key is one of `known`."""
    head, sep, rest = str(err).partition(": ")
    return (head, rest) if sep and head in known else ("", str(err))


def _settings(preset: str, overrides: Mapping[str, Any]) -> NimSettings:
    allowed = {f.name for f in fields(NimSettings)}
    for key in overrides:
        if key not in allowed:
            raise ExperimentError(
                str(key),
                f"unknown key; allowed: {sorted(allowed)} and {[PRESET_KEY, LEAKAGE_KEY]}",
            )
    try:
        return NimSettings.from_dict({**PRESETS[preset], **overrides})
    except (TypeError, ValueError) as err:
        raise ExperimentError(*_split_message(err, allowed)) from err


def _thresholds(settings: NimSettings, overrides: Any) -> LeakageThresholds:
    if overrides is None:
        return default_thresholds(settings)
    if not isinstance(overrides, Mapping):
        raise ExperimentError(LEAKAGE_KEY, f"expected a mapping, got {overrides!r}")
    allowed = {f.name for f in fields(LeakageThresholds)}
    for key in overrides:
        if key not in allowed:
            raise ExperimentError(
                f"{LEAKAGE_KEY}.{key}", f"unknown key; allowed: {sorted(allowed)}"
            )
    try:
        return replace(default_thresholds(settings), **overrides)
    except (TypeError, ValueError) as err:
        key, detail = _split_message(err, allowed)
        raise ExperimentError(f"{LEAKAGE_KEY}.{key}" if key else LEAKAGE_KEY, detail) from err


def resolve_experiment(name: str, entry: Mapping[str, Any] | None) -> NimExperiment:
    """Settings and leakage thresholds of experiment `name` from its config `entry`."""
    if not isinstance(name, str) or not EXPERIMENT_NAME_RE.match(name):
        raise ExperimentError(
            "", f"experiment name {name!r} must be letters, digits, '_' or '-' (used in paths)"
        )
    entry = {} if entry is None else entry
    if not isinstance(entry, Mapping):
        raise ExperimentError("", f"expected a mapping of settings, got {entry!r}")
    overrides = dict(entry)
    preset = overrides.pop(PRESET_KEY, name)
    if preset not in PRESETS:
        key = PRESET_KEY if PRESET_KEY in entry else ""
        raise ExperimentError(
            key,
            f"{preset!r} is not a preset {sorted(PRESETS)}"
            + ("" if key else f"; name one with '{PRESET_KEY}:'"),
        )
    leakage = overrides.pop(LEAKAGE_KEY, None)
    settings = _settings(preset, overrides)
    return NimExperiment(name, preset, settings, _thresholds(settings, leakage))


def _entry(name: str, settings_json: str | None, config_path: str) -> Mapping[str, Any]:
    key = f"nim.experiments.{name}"
    if settings_json is not None:
        try:
            data = json.loads(settings_json)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--settings: not valid JSON: {err}") from err
        entry = data.get(key, {}) if isinstance(data, dict) else None
        if not isinstance(entry, Mapping):
            raise ConfigError(f"--settings: {key} must be a mapping")
        return entry
    from metaexamples.config import load_config  # config imports this module

    experiments = load_config(config_path).nim.experiments
    if name not in experiments:
        raise ConfigError(
            f"{key}: not configured in {config_path} (configured: {sorted(experiments)})"
        )
    entry = experiments[name]
    if entry is False:
        raise ConfigError(f"{key}: switched off (false) in {config_path}")
    return entry


def load_experiment(name: str, settings_json: str | None, config_path: str) -> NimExperiment:
    """Experiment `name` from the workflow's ``--settings`` JSON (which holds the entry
    under ``nim.experiments.<name>``), else from the config file at `config_path`.

    Errors are `ConfigError` naming the full key path, e.g.
    ``nim.experiments.tiny.n_train: expected an integer >= 1, got 0``.
    """
    try:
        return resolve_experiment(name, _entry(name, settings_json, config_path))
    except ExperimentError as err:
        where = f"nim.experiments.{name}" + (f".{err.key}" if err.key else "")
        raise ConfigError(f"{where}: {err.detail}") from err
