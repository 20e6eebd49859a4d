"""The designs' English text, read from the YAML files beside this module (one per design).

Code decides structure and randomness; every sentence, clause and label a reader sees is
in the data files, so that paraphrases can be edited without touching generators.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

TEMPLATE_FILES = ("common", "describe", "wrongrule", "judge", "trace")


class TemplateError(ValueError):
    """A design data file is missing a key or holds a value of the wrong type."""


@dataclass(frozen=True)
class Templates:
    """One design's data file; lookups name the file and key path when they fail."""

    path: str
    data: dict[str, Any]

    def get(self, *keys: str) -> Any:
        node: Any = self.data
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                raise TemplateError(f"{self.path}: missing key {'.'.join(keys[: depth + 1])!r}")
            node = node[key]
        return node

    def text(self, *keys: str) -> str:
        value = self.get(*keys)
        if not isinstance(value, str):
            raise TemplateError(f"{self.path}: {'.'.join(keys)!r} must be a string")
        return value

    def strings(self, *keys: str) -> tuple[str, ...]:
        value = self.get(*keys)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise TemplateError(f"{self.path}: {'.'.join(keys)!r} must be a list of strings")
        return tuple(value)

    def records(self, key: str, fields: Sequence[str]) -> list[tuple[str, ...]]:
        """A list of mappings, each with the string `fields`, as tuples in that order."""
        value = self.get(key)
        if not isinstance(value, list) or not value:
            raise TemplateError(f"{self.path}: {key!r} must be a non-empty list")
        out = []
        for i, record in enumerate(value):
            if not isinstance(record, dict) or not all(
                isinstance(record.get(f), str) for f in fields
            ):
                raise TemplateError(f"{self.path}: {key}[{i}] needs string keys {list(fields)}")
            out.append(tuple(record[f] for f in fields))
        return out

    def table(self, *keys: str) -> dict[str, tuple[str, ...]]:
        """A mapping name -> list of strings, as a dict of tuples."""
        value = self.get(*keys)
        if not isinstance(value, dict):
            raise TemplateError(f"{self.path}: {'.'.join(keys)!r} must be a mapping")
        return {name: self.strings(*keys, name) for name in value}


@cache
def load(name: str) -> Templates:
    """The data file `name`.yaml of this package (cached: read once per process)."""
    if name not in TEMPLATE_FILES:
        raise TemplateError(f"unknown template file {name!r}; allowed: {list(TEMPLATE_FILES)}")
    resource = files(__package__) / f"{name}.yaml"
    data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TemplateError(f"{resource}: expected a mapping at the top level")
    return Templates(str(resource), data)


def _strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings_in(value)


def all_template_strings() -> list[str]:
    """Every string value of every design data file, in file order."""
    return [s for name in TEMPLATE_FILES for s in _strings_in(load(name).data)]
