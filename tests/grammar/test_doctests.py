"""The examples in module docstrings run and hold (one test per module that has them)."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name", ["grammar.languages", "grammar.metrics", "grammar.scoring", "grammar.sampling",
             "grammar.summary", "stats"]
)
def test_docstring_examples(name):
    module = importlib.import_module(f"metaexamples.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
