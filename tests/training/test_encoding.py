"""Prompt masking on the token boundary and padding masks."""

from __future__ import annotations

import pytest
from torch import nn
from transformers import AutoModelForCausalLM

from metaexamples.training.encoding import (
    IGNORE_INDEX,
    Encoded,
    encode_prompt_completion,
    encode_prompt_completions,
    pad_batch,
)

PROMPT = "Leo and Sultan play Nim with 9 coins; each takes 1 to 3. What should Leo do?"


def test_labels_mask_exactly_the_prompt_tokens(olmo_tokenizer):
    enc = encode_prompt_completion(olmo_tokenizer, PROMPT, " take 1 coin", 256, name="row 1")
    n_prompt = len(olmo_tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    n_answer = len(olmo_tokenizer(" take 1 coin", add_special_tokens=False)["input_ids"])
    assert enc.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert enc.labels[n_prompt:] == enc.input_ids[n_prompt:]
    assert len(enc.input_ids) == n_prompt + n_answer + 1  # + EOS
    assert enc.input_ids[-1] == olmo_tokenizer.eos_token_id
    assert sum(label != IGNORE_INDEX for label in enc.labels) == n_answer + 1


def test_a_merging_seam_is_rejected_naming_the_example(olmo_tokenizer):
    # A trailing space in the prompt merges with the answer's first word (" take").
    with pytest.raises(ValueError, match=r"train.jsonl:7.*not a prefix"):
        encode_prompt_completion(olmo_tokenizer, PROMPT + " ", "take 1 coin", 256,
                                 name="train.jsonl:7")
    with pytest.raises(ValueError, match="adds no token"):
        encode_prompt_completion(olmo_tokenizer, PROMPT, "", 256, name="row 2")


def test_a_merging_seam_says_where_the_tokens_diverge(olmo_tokenizer):
    with pytest.raises(ValueError, match=r"train.jsonl:7: .*\(they differ at token 21 of 22\)"):
        encode_prompt_completion(olmo_tokenizer, PROMPT + " ", "take 1 coin", 256,
                                 name="train.jsonl:7")


def test_too_long_example_is_named(olmo_tokenizer):
    with pytest.raises(ValueError, match="row 3: .* more than the maximum of 8"):
        encode_prompt_completion(olmo_tokenizer, PROMPT, " take 1 coin", 8, name="row 3")


def test_batched_encoding_matches_single(olmo_tokenizer):
    prompts, answers = [PROMPT, PROMPT.replace("9", "17")], [" take 1 coin", " take 2 coins"]
    batched = encode_prompt_completions(olmo_tokenizer, prompts, answers, 256)
    single = [encode_prompt_completion(olmo_tokenizer, p, a, 256)
              for p, a in zip(prompts, answers, strict=True)]
    assert batched == single


@pytest.mark.parametrize("pad_id", [1, 0])
def test_padding_is_masked_in_attention_and_labels(pad_id):
    # pad id 0 equals a real token id of the first row: masks must come from lengths
    examples = [Encoded([0, 6, 7, 0], [IGNORE_INDEX, 6, 7, 0]), Encoded([5, 8], [IGNORE_INDEX, 8])]
    batch = pad_batch(examples, pad_id)
    assert batch["input_ids"].tolist() == [[0, 6, 7, 0], [5, 8, pad_id, pad_id]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, 7, 0],
                                        [IGNORE_INDEX, 8, IGNORE_INDEX, IGNORE_INDEX]]
    assert int((batch["labels"] != IGNORE_INDEX).sum()) == 4


def test_padding_without_a_pad_token_is_an_error():
    with pytest.raises(ValueError, match="no pad token"):
        pad_batch([Encoded([1], [1])], None)


def test_padded_positions_do_not_change_the_loss(tiny_neox_dir, neox_tokenizer_json):
    from metaexamples.models import load_tokenizer

    tok = load_tokenizer(tiny_neox_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_neox_dir).eval()
    short = encode_prompt_completion(tok, "Nim: 5 coins.", " take 1 coin", 64)
    long = encode_prompt_completion(tok, PROMPT, " take 3 coins", 64)
    alone = model(**pad_batch([short], tok.pad_token_id)).loss
    padded = pad_batch([short, long], tok.pad_token_id)
    logits = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
    labels = padded["labels"][0, 1:]
    row = nn.functional.cross_entropy(logits[0, :-1], labels, ignore_index=IGNORE_INDEX)
    assert row.item() == pytest.approx(alone.item(), abs=1e-4)
