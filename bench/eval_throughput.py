"""Evaluation throughput: batched scoring and stop-aware sampling vs the naive ways.

One run, one model, one data set:

1. Scoring: `scoring.score_encoded` (length-sorted right-padded batches, logits only at
   scored positions) against a one-string-at-a-time loop (``model(ids).logits`` ->
   ``log_softmax`` -> gather), in strings per second. Also reports how far they differ.
2. Sampling: `sampling.sample_strings` (KV cache, batch `--sample-batch`, temperature 1,
   top-p 1, each row stops at its closing tag and leaves the batch) against the original project's
   sampler (Hugging Face ``generate``, batch 16, top-p 0.9, a fixed number of new tokens,
   no stop string), in *valid-length samples* per second: samples that, cut at the first
   closing tag, are a well-formed string with a length within the grammar's bounds.

The model is the default config's tiny-olmo (hidden 64, 2 layers, the real 50k OLMo
vocabulary), briefly fine-tuned on g2 strings first so that it closes its strings and the
sampling comparison is about something. Usage::

    python bench/eval_throughput.py --threads 2 [--out bench/eval_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from metaexamples.config import TinyArch
from metaexamples.grammar import judging, sampling, scoring
from metaexamples.grammar.documents import example_continuation, example_text, open_tag
from metaexamples.grammar.languages import make_grammar
from metaexamples.models import load_model, load_tokenizer, prepare_model

log = logging.getLogger("bench.eval_throughput")
REPO = Path(__file__).resolve().parents[1]
FALLBACK_SYMBOLS = ("¡", "■", "¥", "―", "†")  # one token each after a space (OLMo tokenizer)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--strings", type=int, default=256, help="strings to score")
    p.add_argument("--samples", type=int, default=256, help="samples per sampler")
    p.add_argument("--sample-batch", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=32,
                   help="fixed new tokens of the original project's sampler; bound of ours")
    p.add_argument("--train-steps", type=int, default=60)
    p.add_argument("--tokenizer", type=Path, default=REPO / "data/assets/olmo_tokenizer.json")
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    return p.parse_args()


def alphabet() -> tuple[str, ...]:
    tokens = REPO / "data" / "tokens.json"
    if tokens.is_file():
        return tuple(json.loads(tokens.read_text())["symbols"])
    return FALLBACK_SYMBOLS


def build_model(tokenizer_json: Path, out: Path) -> Path:
    if not tokenizer_json.is_file():
        from metaexamples import assets

        wheel = assets.fetch_wheel(assets.OLMO_WHEEL, REPO / "data/assets/wheels")
        assets.extract_member(wheel, assets.OLMO_TOKENIZER, tokenizer_json)
    prepare_model("tiny-olmo", out, arch=TinyArch(), init_original=0, tokenizer_json=tokenizer_json)
    return out


def finetune(model, tok, texts: list[str], steps: int, rng: np.random.Generator) -> float:
    """A few AdamW steps on grammar strings (after EOS), so samples close their tags."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        batch = [texts[i] for i in rng.integers(0, len(texts), size=32)]
        seqs = [[tok.eos_token_id, *tok.encode(t, add_special_tokens=False)] for t in batch]
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), tok.pad_token_id)
        labels = torch.full((len(seqs), width), -100)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            labels[i, : len(s)] = torch.tensor(s)
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return float(loss.detach())


@torch.inference_mode()
def loop_scores(model, seqs: list[scoring.Encoded]) -> list[float]:
    out = []
    for s in seqs:
        logp = torch.log_softmax(model(torch.tensor([s.ids])).logits[0], dim=-1)
        out.append(float(sum(logp[t - 1, s.ids[t]] for t in range(s.n_prefix, len(s.ids)))))
    return out


def valid_length(grammar, text: str) -> bool:
    """Cut at the first closing tag; well-formed with a length within the bounds?"""
    head = open_tag(grammar.name)
    cut = sampling.cut_at_close(grammar.name, text[len(head):])
    if cut is None:
        return False
    j = judging.judge(grammar, head + cut)
    return j.format_valid and grammar.min_length <= (j.length or 0) <= grammar.max_length


@torch.inference_mode()
def original_sampler(model, tok, grammar: str, n: int, new_tokens: int, seed: int) -> list[str]:
    torch.manual_seed(seed)
    prompt = torch.tensor([sampling.prompt_ids(tok, grammar)] * 16)
    texts: list[str] = []
    while len(texts) < n:
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                             top_p=0.9, top_k=0, temperature=1.0, max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id)
        texts += [open_tag(grammar) + tok.decode(row[prompt.shape[1]:]) for row in out]
    return texts[:n]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    g = make_grammar("g2", alphabet(), 2, 12)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(args.tokenizer, Path(tmp) / "tiny-olmo")
        model, tok = load_model(model_dir), load_tokenizer(model_dir)
    train = [example_text("g2", g.sample(rng)) for _ in range(2000)]
    loss, t_train = timed(lambda: finetune(model, tok, train, args.train_steps, rng))
    log.info("fine-tuned %d steps in %.1fs (final loss %.2f)", args.train_steps, t_train, loss)

    strings = [g.sample(rng) for _ in range(args.strings)]
    seqs = [scoring.encode(tok, open_tag("g2"), example_continuation("g2", s), tok.eos_token_id)
            for s in strings]
    batched, t_batched = timed(lambda: scoring.score_encoded(model, seqs, tok.pad_token_id, 64))
    looped, t_loop = timed(lambda: loop_scores(model, seqs))
    max_diff = max(abs(a.logprob - b) for a, b in zip(batched, looped, strict=True))

    ours, t_ours = timed(lambda: sampling.sample_strings(
        model, tok, "g2", args.samples, args.sample_batch, args.new_tokens, seed=0))
    originals, t_original = timed(lambda: original_sampler(model, tok, "g2", args.samples,
                                               args.new_tokens, seed=0))
    ours_ok = sum(valid_length(g, s.text) for s in ours)
    original_ok = sum(valid_length(g, t) for t in originals)
    result = {
        "threads": args.threads,
        "scoring": {"strings": len(seqs), "batched_strings_per_s": len(seqs) / t_batched,
                    "loop_strings_per_s": len(seqs) / t_loop, "speedup": t_loop / t_batched,
                    "max_abs_diff_logprob": max_diff},
        "sampling": {
            "samples": args.samples, "new_tokens": args.new_tokens,
            "ours_seconds": t_ours, "original_seconds": t_original,
            "ours_valid_length": ours_ok, "original_valid_length": original_ok,
            "ours_valid_per_s": ours_ok / t_ours, "original_valid_per_s": original_ok / t_original,
            "ours_mean_new_tokens": float(np.mean([s.n_new_tokens for s in ours])),
            "speedup_valid_per_s": (ours_ok / t_ours) / (original_ok / t_original) if original_ok
            else float("inf"),
        },
    }
    s, m = result["scoring"], result["sampling"]
    log.info("| measure | ours | baseline | ratio |")
    log.info("|---|---|---|---|")
    log.info("| scoring, strings/s (%d strings) | %.1f | %.1f | %.1fx |", s["strings"],
             s["batched_strings_per_s"], s["loop_strings_per_s"], s["speedup"])
    log.info("| sampling, valid-length samples/s (%d samples) | %.2f (%d valid, %.1fs) | "
             "%.2f (%d valid, %.1fs) | %.1fx |", m["samples"], m["ours_valid_per_s"], ours_ok,
             t_ours, m["original_valid_per_s"], original_ok, t_original, m["speedup_valid_per_s"])
    log.info("max |batched - loop| log-prob: %.2e; ours: mean %.1f new tokens per sample",
             max_diff, m["ours_mean_new_tokens"])
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
