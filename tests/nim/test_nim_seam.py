"""The Nim generator checks every example's prompt/answer seam (`metaexamples.seam`)."""

import pytest

from metaexamples.nim.generator import generate_experiment
from metaexamples.nim.settings import NimSettings, settings_from_preset
from metaexamples.seam import check_seam, encode_ids


class WholeStringTokenizer:
    """A toy tokenizer that makes one token of any text: every seam merges."""

    def encode(self, text, add_special_tokens=False):
        return [hash(text) % 1000]


def test_generator_runs_the_seam_check_on_every_example():
    with pytest.raises(ValueError, match="train train-000000"):
        generate_experiment(NimSettings(n_train=5, n_eval=5), tokenizer=WholeStringTokenizer())


def test_real_tokenizer_generated_data_passes(neox_tokenizer):
    for overrides in ({}, {"randomize_terms": True, "losing_answer": "{verb} -1 {coins}"}):
        settings = settings_from_preset("tiny", n_train=150, n_eval=50, **overrides)
        generate_experiment(settings, tokenizer=neox_tokenizer)
    cheat = settings_from_preset("20000names", n_train=100, n_eval=20)
    generate_experiment(cheat, tokenizer=neox_tokenizer)


def test_real_tokenizer_catches_a_trailing_space(neox_tokenizer):
    prompt = "Now it's Leo's turn."
    assert check_seam(neox_tokenizer, prompt, " take 2 coins") == len(
        encode_ids(neox_tokenizer, prompt)
    )
    with pytest.raises(ValueError, match="bad example"):
        check_seam(neox_tokenizer, prompt + " ", "take 2 coins", example="bad example")


def test_hf_fast_tokenizer_is_supported(neox_tokenizer_file, neox_tokenizer):
    import transformers

    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(neox_tokenizer_file))
    text = "Now it's Leo's turn. take 2 coins"
    assert encode_ids(hf, text) == encode_ids(neox_tokenizer, text)
    generate_experiment(settings_from_preset("tiny", n_train=50, n_eval=20), tokenizer=hf)
