import json
import re
from collections import Counter

import pytest

from metaexamples.io import read_json, read_jsonl
from metaexamples.nim.generator import (
    ROW_KEYS,
    eval_pile_values,
    generate_experiment,
    pile_partition,
    sample_game,
    unseen_pile_values,
    write_experiment,
)
from metaexamples.nim.metrics import label_index
from metaexamples.nim.names import LOSE_KEY, label_key
from metaexamples.nim.settings import PRESETS, NimSettings, settings_from_preset
from metaexamples.nim.solver import play, winning_move

from .test_nim_solver import wins

SMALL_CHEAT = dict(
    max_remove=[4], trace_min=4, trace_max=4, name_source="random", n_name_pairs=20,
    masked_mentions=2, cheat_fraction=0.5, cheat_probability=0.8, n_train=300, n_eval=60,
    pile_max=200,
)  # fmt: skip


# The pile-disjoint small experiment (fixed names, 2-4 moves) the split tests use.
PILE_SPLIT = dict(max_remove=[3], pile_max=60, n_train=400, n_eval=100, n_val=100, split="pile")


def all_rows(splits):
    return [row for rows in splits.values() for row in rows]


def check_row(row, settings):
    assert tuple(row) == ROW_KEYS
    m = row["max_remove"]
    assert m in settings.max_remove
    assert settings.trace_min <= len(row["moves"]) <= settings.trace_max
    assert row["initial_pile"] <= settings.pile_max
    assert play(row["initial_pile"], row["moves"], m) == row["pile"] >= 1
    assert row["label_move"] == winning_move(row["pile"], m)
    assert len(row["candidates"]) == m + 1
    assert row["answer"] == row["candidates"][label_index(row)]
    assert row["answer"].startswith(" ") and not row["answer"].startswith("  ")
    assert row["prompt"] == row["prompt"].strip()
    assert row["prompt"].endswith("'s turn.")
    assert f"There are {row['initial_pile']} " in row["prompt"]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"max_remove": [3, 5, 7], "trace_min": 0, "trace_max": 6, "pile_min": 5},
        {"randomize_terms": True, "name_source": "random", "split": "random"},
        SMALL_CHEAT,
        {"name_source": "numeric", "numeric_style": "digits", "masked_mentions": 0},
    ],
)
def test_rows_are_well_formed_and_labels_come_from_the_solver(overrides):
    settings = NimSettings.from_dict({"n_train": 200, "n_eval": 50, **overrides})
    for row in all_rows(generate_experiment(settings)):
        check_row(row, settings)


def test_sample_game_is_legal_even_for_tight_piles():
    import random

    settings = NimSettings(max_remove=(8,), pile_max=7, trace_min=6, trace_max=6)
    rng = random.Random(1)
    for _ in range(500):
        game = sample_game(rng, settings)
        assert len(game.moves) == 6
        assert play(game.initial_pile, game.moves, 8) == game.pile >= 1


def test_answer_format_and_losing_answers():
    rows = all_rows(generate_experiment(NimSettings(n_train=300, n_eval=50)))
    answers = {r["answer"] for r in rows}
    assert answers == {" take 1 coin", " take 2 coins", " take 3 coins", " no winning move"}
    seed_style = NimSettings(n_train=100, n_eval=20, losing_answer="{verb} -1 {coins}")
    losing = {r["answer"] for r in all_rows(generate_experiment(seed_style))
              if r["label_move"] is None}  # fmt: skip
    assert losing == {" take -1 coins"}


def test_include_losing_false_drops_losing_positions():
    rows = all_rows(generate_experiment(NimSettings(n_train=200, n_eval=50, include_losing=False)))
    assert all(r["label_move"] is not None for r in rows)


def test_prompt_split_is_disjoint_on_prompts():
    splits = generate_experiment(NimSettings.from_dict({**SMALL_CHEAT, "split": "prompt"}))
    train = {r["prompt"] for r in splits["train"]}
    eval_prompts = [r["prompt"] for name, rows in splits.items() if name != "train" for r in rows]
    assert not train & set(eval_prompts)
    assert len(set(eval_prompts)) == len(eval_prompts)


def test_pile_split_is_disjoint_on_the_question_pile():
    settings = NimSettings.from_dict({**PILE_SPLIT, "seed": 3})
    held, val = pile_partition(settings)
    assert held == eval_pile_values(settings) and held.isdisjoint(val)
    splits = generate_experiment(settings)
    assert {r["pile"] for r in splits["train"]}.isdisjoint(held | val)
    assert {r["pile"] for r in splits["eval"]} <= held
    assert {r["pile"] for r in splits["val"]} <= val
    # stratified: every residue class (label) keeps a share of the eval and the val piles
    for part, name in ((held, "eval"), (val, "val")):
        assert {p % 4 for p in part} == {0, 1, 2, 3}
        assert {label_key(r["label_move"]) for r in splits[name]} == {"1", "2", "3", LOSE_KEY}


@pytest.mark.parametrize("split", ["random", "prompt", "pile"])
def test_validation_set_is_disjoint_from_every_eval_set(split):
    overrides = {**SMALL_CHEAT, "max_remove": [3, 4], "split": split, "n_val": 60}
    splits = generate_experiment(NimSettings.from_dict(overrides))
    val = [r["prompt"] for r in splits["val"]]
    assert len(val) == 60 == len(set(val))
    for name, rows in splits.items():
        if name not in ("train", "val"):
            assert set(val).isdisjoint(r["prompt"] for r in rows), name
    if split != "random":
        assert set(val).isdisjoint(r["prompt"] for r in splits["train"])


def test_several_max_remove_values_get_one_eval_set_each():
    settings = settings_from_preset("345678", n_train=60, n_eval=90, n_val=30, pile_max=400)
    splits = generate_experiment(settings)
    per_m = {name: rows for name, rows in splits.items() if name.startswith("eval_m")}
    assert sorted(per_m) == [f"eval_m{m}" for m in (3, 4, 5, 6, 7, 8)]
    for name, rows in per_m.items():
        assert len(rows) == 15  # ceil(90 / 6)
        assert {r["max_remove"] for r in rows} == {int(name.removeprefix("eval_m"))}
    assert {r["max_remove"] for r in splits["eval"]} == set(settings.max_remove)
    prompts = [r["prompt"] for name, rows in splits.items() if name != "train" for r in rows]
    assert len(prompts) == len(set(prompts))  # no example shared between held-out sets
    single = NimSettings.from_dict({**PILE_SPLIT, "n_train": 20, "n_eval": 10})
    assert set(generate_experiment(single)) == {"train", "val", "eval"}


def test_generation_is_deterministic_per_seed():
    settings = NimSettings.from_dict(SMALL_CHEAT)
    first = generate_experiment(settings)
    assert json.dumps(first) == json.dumps(generate_experiment(settings))
    other = generate_experiment(NimSettings.from_dict({**SMALL_CHEAT, "seed": 1}))
    assert json.dumps(first) != json.dumps(other)


def test_cheat_experiment_eval_sets(tmp_path):
    settings = NimSettings.from_dict(SMALL_CHEAT)
    manifest = write_experiment(settings, tmp_path)
    splits = {n: read_jsonl(tmp_path / f"{n}.jsonl") for n in manifest["splits"]}
    assert set(splits) == {
        "train",
        "val",
        "eval",
        "eval_cheat",
        "eval_counter_cheat",
        "eval_neutral",
    }
    plan = manifest["names"]
    tied = {tuple(p): label for label, pairs in plan["cheat_by_label"].items() for p in pairs}
    neutral = {tuple(p) for p in plan["neutral"]}
    heldout = {tuple(p) for p in plan["heldout"]}
    assert set(plan["cheat_by_label"]) == {"1", "2", "3", "4", LOSE_KEY}
    assert all(plan["cheat_by_label"].values())
    for row in splits["train"] + splits["eval"]:
        pair, label = tuple(row["names"]), label_key(row["label_move"])
        if row["bucket"] == "cheat":
            assert tied[pair] == label
        else:
            assert row["bucket"] == "neutral" and pair in neutral
    share = Counter(r["bucket"] for r in splits["train"])["cheat"] / len(splits["train"])
    assert 0.65 < share < 0.95  # cheat_probability = 0.8
    for row in splits["eval_cheat"]:
        assert row["bucket"] == "cheat" and tied[tuple(row["names"])] == label_key(
            row["label_move"]
        )
    for row in splits["eval_counter_cheat"]:
        pair = tuple(row["names"])
        assert row["bucket"] == "counter_cheat" and tied[pair] != label_key(row["label_move"])
    train_pairs = {tuple(r["names"]) for r in splits["train"]}
    for row in splits["eval_neutral"]:
        assert row["bucket"] == "neutral" and tuple(row["names"]) in heldout
        assert tuple(row["names"]) not in train_pairs


def test_masked_mentions_swap_the_chosen_number_of_trace_lines():
    for k in (0, 2, 4):
        settings = NimSettings.from_dict({**SMALL_CHEAT, "masked_mentions": k})
        for row in generate_experiment(settings)["train"][:50]:
            a, b = row["names"]
            assert f"Player ONE is {a} and Player TWO is {b}." in row["prompt"]
            trace = row["prompt"].split("So far:\n")[1].split("\n\n")[0].splitlines()
            assert len(trace) == 4
            named = [line for line in trace if not line.startswith("Player ")]
            assert len(named) == k


def test_fixed_names_and_plain_prompt():
    row = generate_experiment(NimSettings(n_train=5, n_eval=5))["train"][0]
    assert row["names"] == ["Leo", "Sultan"] and row["bucket"] is None
    assert "Leo and Sultan take turns." in row["prompt"]
    assert "Player ONE" not in row["prompt"]


def test_randomized_terms_vary_and_stay_consistent():
    settings = NimSettings(n_train=300, n_eval=20, randomize_terms=True)
    rows = generate_experiment(settings)["train"]
    first_words = Counter(
        r["prompt"].split("There are ")[1].split(".")[0].split()[-1] for r in rows
    )
    assert len(first_words) >= 6
    for row in rows:
        verb = row["candidates"][1].split(" 2 ")[0].strip()
        assert f"Each player can {verb} between 1 and" in row["prompt"]


@pytest.mark.parametrize(
    "style,pattern",
    [("words", r"^(zero|one|two|three|four|five|six|seven|eight|nine)( \w+){4}$"),
     ("digits", r"^Player \d{5}$")],
)  # fmt: skip
def test_numeric_names(style, pattern):
    settings = NimSettings(n_train=50, n_eval=10, name_source="numeric", numeric_style=style)
    rows = generate_experiment(settings)["train"]
    for row in rows:
        a, b = row["names"]
        assert a != b and re.match(pattern, a) and re.match(pattern, b)


@pytest.mark.parametrize(
    "key,value",
    [
        ("max_remove", []),
        ("max_remove", [0]),
        ("max_remove", [3, 3]),
        ("pile_min", 0),
        ("pile_max", 3),  # trace_max 4 needs at least 5 coins
        ("trace_min", -1),
        ("trace_max", 1),  # below trace_min 2
        ("name_source", "famous"),
        ("numeric_style", "roman"),
        ("fixed_names", ("Leo", "Leo")),
        ("cheat_fraction", 1.0),
        ("cheat_probability", 1.5),
        ("cheat_probability", 0.5),  # needs cheat_fraction > 0
        ("cheat_fraction", 0.5),  # needs names other than the fixed pair
        ("masked_mentions", -1),
        ("losing_answer", ""),
        ("losing_answer", " no move"),
        ("losing_answer", "{noun}"),
        ("losing_answer", "take 1 coin"),
        ("include_losing", "yes"),
        ("n_train", 0),
        ("split", "stratified"),
        ("eval_pile_fraction", 1.0),
        ("n_val", 0),
        ("val_pile_fraction", 1.0),
        ("seed", -1),
    ],
)
def test_invalid_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        NimSettings.from_dict({key: value})


def test_held_out_pile_shares_must_leave_training_piles():
    with pytest.raises(ValueError, match="eval_pile_fraction"):
        NimSettings(split="pile", eval_pile_fraction=0.6, val_pile_fraction=0.4)
    with pytest.raises(ValueError, match="val_pile_fraction: must be > 0"):
        NimSettings(split="pile", val_pile_fraction=0.0)


def test_settings_dict_round_trip_and_unknown_keys():
    settings = settings_from_preset("20000names")
    assert NimSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    with pytest.raises(ValueError, match="max_coins"):
        NimSettings.from_dict({"max_coins": 400})
    with pytest.raises(ValueError, match="preset"):
        settings_from_preset("nope")
    with pytest.raises(ValueError, match="n_name_pairs"):
        NimSettings(name_source="random", n_name_pairs=5000)


def test_impossible_requests_fail_with_a_clear_message():
    settings = NimSettings(pile_max=6, trace_min=1, trace_max=1, n_train=10, n_eval=40)
    with pytest.raises(ValueError, match="split"):
        generate_experiment(settings)


def minimax_moves(pile: int, max_remove: int) -> list[int]:
    """Every move that wins from `pile` by brute-force minimax (no move: a lost position),
    filling `wins` bottom-up so that its recursion stays shallow for piles in the hundreds."""
    for smaller in range(pile):
        wins(smaller, max_remove)
    return [k for k in range(1, min(max_remove, pile) + 1) if not wins(pile - k, max_remove)]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_generate_with_labels_from_brute_force_minimax(name):
    settings = settings_from_preset(name, n_train=40, n_eval=10, n_val=10)
    splits = generate_experiment(settings)
    assert len(splits["train"]) == 40
    assert set(splits) == {"train", *settings.heldout_set_names}
    for row in all_rows(splits):
        check_row(row, settings)
        moves = minimax_moves(row["pile"], row["max_remove"])
        assert moves == ([] if row["label_move"] is None else [row["label_move"]])


def test_write_experiment_layout(tmp_path):
    settings = NimSettings.from_dict({**PILE_SPLIT, "n_train": 60, "n_eval": 20})
    manifest = write_experiment(settings, tmp_path / "tiny")
    files = sorted(p.name for p in (tmp_path / "tiny").iterdir())
    assert files == ["eval.jsonl", "manifest.json", "train.jsonl", "val.jsonl"]
    assert read_json(tmp_path / "tiny" / "manifest.json") == json.loads(json.dumps(manifest))
    assert manifest["settings"] == settings.to_dict()
    train = read_jsonl(tmp_path / "tiny" / "train.jsonl", required=ROW_KEYS)
    assert manifest["splits"]["train"]["n"] == len(train) == 60
    labels = Counter(label_key(r["label_move"]) for r in train)
    assert manifest["splits"]["train"]["labels"] == dict(sorted(labels.items()))
    assert manifest["eval_piles"] == sorted(eval_pile_values(settings))
    assert manifest["val_piles"] == sorted(pile_partition(settings)[1])
    assert manifest["names"] == {"cheat_by_label": {}, "neutral": [["Leo", "Sultan"]],
                                 "heldout": []}  # fmt: skip
    assert manifest["seam_checked"] is False


def test_unseen_pile_set_asks_only_about_piles_no_other_set_asks_about():
    settings = settings_from_preset("tiny", n_train=300, n_eval=60, n_val=40)
    assert settings.eval_set_names == ("eval", "eval_unseen_piles")
    unseen = unseen_pile_values(settings)
    assert {p % 4 for p in unseen} == {0, 1, 2, 3}  # stratified: every label keeps a share
    splits = generate_experiment(settings)
    assert {r["pile"] for r in splits["eval_unseen_piles"]} <= unseen
    for name in ("train", "val", "eval"):
        assert {r["pile"] for r in splits[name]}.isdisjoint(unseen), name
    # val and eval: new prompts over piles that training asks about
    train_piles = {r["pile"] for r in splits["train"]}
    train_prompts = {r["prompt"] for r in splits["train"]}
    for name in ("val", "eval"):
        assert {r["pile"] for r in splits[name]} <= train_piles
        assert train_prompts.isdisjoint(r["prompt"] for r in splits[name])


def test_unseen_pile_fraction_needs_a_prompt_or_random_split():
    with pytest.raises(ValueError, match="unseen_pile_fraction: needs split"):
        settings_from_preset("tiny", split="pile")
    with pytest.raises(ValueError, match="unseen_pile_fraction"):
        settings_from_preset("tiny", unseen_pile_fraction=1.0)
