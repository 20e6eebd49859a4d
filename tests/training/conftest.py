"""Shared fixtures of the training tests: a small grammar/canonical data set and CLI args."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from metaexamples.canonical import offline_documents
from metaexamples.grammar.documents import example_text, meta_text
from metaexamples.io import write_jsonl

SYMBOLS = ["¡", "■", "¥", "―", "†"]
SETTINGS = {"training": {"max_steps": 6, "batch_size": 2, "max_seq_length": 32,
                         "eval_steps": 3, "save_steps": 2, "warmup_steps": 1,
                         "eval_documents": 4, "learning_rate": 0.003,
                         "synthetic_mix_ratio": 0.5}}


@pytest.fixture(scope="module")
def lm_data(tmp_path_factory, arrow_dir) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("lmdata")
    docs = [t for _, t in itertools.islice(offline_documents(arrow_dir), 400) if len(t) > 100]
    g = torch.Generator().manual_seed(0)

    def string() -> list[str]:
        n = int(torch.randint(1, 13, (1,), generator=g))
        return [SYMBOLS[int(i)] for i in torch.randint(0, 5, (n,), generator=g)]

    paths = {name: d / f"{name}.jsonl" for name in ("canonical", "heldout", "train", "val",
                                                     "meta", "empty")}
    write_jsonl(paths["canonical"], ({"text": t} for t in docs[:300]))
    write_jsonl(paths["heldout"], ({"text": t} for t in docs[300:]))
    write_jsonl(paths["train"], ({"text": example_text("g1", string())} for _ in range(200)))
    write_jsonl(paths["val"], [{"text": example_text("g1", string()), "valid": True}
                               for _ in range(20)]
                + [{"text": "<g1> ¡ ¡", "valid": False} for _ in range(5)])
    write_jsonl(paths["meta"], ({"text": meta_text("describe", "g1", f"Rule {i}: any string.")}
                                for i in range(20)))
    paths["empty"].write_text("")
    return paths



@pytest.fixture()
def train_args(tiny_model_dir, lm_data, tmp_path) -> Callable[..., list[str]]:
    """`metaexamples train` arguments for a tiny run on `lm_data` (data overridable), its
    settings resolved in the job from a config file, as a run by hand is."""

    def make(out: Path, ckpt: Path, *extra: str, settings: dict | None = None,
             data: dict[str, Path] | None = None) -> list[str]:
        d = data or lm_data
        config = tmp_path / "train_config.yaml"
        config.write_text(json.dumps(settings or SETTINGS))  # JSON is YAML
        return ["train", "--model-id", str(tiny_model_dir), "--corpus", str(d["train"]),
                "--meta", str(d["meta"]), "--meta-percent", "50",
                "--canonical", str(d["canonical"]), "--canonical-heldout", str(d["heldout"]),
                "--eval-data", str(d["val"]), "--seed", "0", "--config", str(config),
                "--checkpoint-root", str(ckpt), "--out-dir", str(out), "--threads", "1", *extra]

    return make


@pytest.fixture()
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)

