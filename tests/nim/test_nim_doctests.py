import doctest
import importlib

import pytest

MODULES = ["solver", "names", "prompts", "metrics", "plots", "experiments"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"metaexamples.nim.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
