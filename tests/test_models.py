"""Model presets (what they are built from, what their tokenizers supply) and loading."""

from __future__ import annotations

import shutil

import pytest

from metaexamples.commands.tokens import RESERVE
from metaexamples.grammar.alphabet import AlphabetError, select_alphabet
from metaexamples.io import DataFileError
from metaexamples.models import (
    OTHER_MODEL_MEMORY,
    PRESETS,
    load_model,
    memory_request,
    model_device,
    tokenizer_from_json,
)

from .conftest import ASSETS


@pytest.mark.parametrize("name", ["tiny-olmo", "tiny-neox"])
def test_max_alphabet_is_what_the_presets_tokenizer_supplies(name, olmo_tokenizer_json,
                                                             neox_tokenizer_json):
    preset = PRESETS[name]
    assert preset.asset.startswith("data/assets/")
    tokenizer = tokenizer_from_json(ASSETS / preset.asset.removeprefix("data/assets/"))
    for ranking, size in preset.max_alphabet.items():
        select_alphabet(tokenizer, size + RESERVE, ranking)  # select-tokens asks for this many
        with pytest.raises(AlphabetError):
            select_alphabet(tokenizer, size + RESERVE + 1, ranking)


def test_memory_requests():
    assert memory_request("smollm2-135m").train_mb > memory_request("tiny-olmo").train_mb
    assert memory_request("allenai/OLMo-1B-hf") == OTHER_MODEL_MEMORY


def test_truncated_weights_name_the_model_directory(tiny_model_dir, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(DataFileError, match=f"{broken}: cannot load model"):
        load_model(broken)
    weights.write_bytes(b"\x00" * 16)  # not even a header
    with pytest.raises(DataFileError, match=f"{broken}: cannot load model"):
        load_model(broken)


def test_a_model_directory_without_weights_is_named(tiny_model_dir, tmp_path):
    empty = tmp_path / "model"
    shutil.copytree(tiny_model_dir, empty)
    (empty / "model.safetensors").unlink()
    with pytest.raises(DataFileError, match=f"{empty}: model directory has no weights"):
        load_model(empty)


@pytest.mark.parametrize("fixture,tied", [("tiny_model_dir", False), ("tied_tiny_model_dir", True)])
def test_tie_word_embeddings_decides_whether_output_rows_are_the_input_rows(fixture, tied, request):
    model = load_model(request.getfixturevalue(fixture))
    inputs, outputs = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert (inputs.data_ptr() == outputs.data_ptr()) is tied
    assert model.config.tie_word_embeddings is tied


def test_model_device_prefers_the_models_own_attribute():
    import torch

    class Oracle:  # no parameters, a device of its own
        device = torch.device("meta")

    assert model_device(Oracle()) == torch.device("meta")
    assert model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
