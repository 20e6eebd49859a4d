"""One default training job with and without `runtime.keep_freed_memory` (glibc mallopt).

Runs `metaexamples train` at config.yaml's training settings twice per repeat, each in a
fresh process on the same inputs: "default glibc" calls the stage without the mallopt
call, "kept" goes through the CLI entry point, which makes it. Reports process wall
time, user and kernel CPU time (rusage of the child), the training loop's own seconds
(`train_seconds`) and the ratio default / kept. Needs the workflow's data first
(`snakemake --cores 2 data/g1/train.jsonl data/models/tiny-olmo`).

    python bench/cpu_allocator.py --repeats 2 --out allocator.json
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WITHOUT_MALLOPT = (
    "import sys; from metaexamples.cli import build_parser; "
    "args = build_parser().parse_args(sys.argv[1:]); args.run(args)"
)
SIDES = {"default glibc": ["-c", WITHOUT_MALLOPT], "kept": ["-m", "metaexamples.cli"]}


def train_args(work: Path, grammar: str, threads: int) -> list[str]:
    training = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["training"]
    return [
        "train", "--model-id", "data/models/tiny-olmo",
        "--corpus", f"data/{grammar}/train.jsonl", "--eval-data", f"data/{grammar}/val.jsonl",
        "--canonical", "data/canonical/train.jsonl",
        "--canonical-heldout", "data/canonical/heldout.jsonl",
        "--settings", json.dumps({"training": training}), "--grammar", grammar, "--seed", "0",
        "--checkpoint-root", str(work / "checkpoints"), "--out-dir", str(work / "run"),
        "--threads", str(threads),
    ]  # fmt: skip


def run_once(side: str, args: list[str], work: Path) -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *SIDES[side], *args], cwd=REPO, check=True,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    metrics = json.loads((work / "run" / "train_metrics.json").read_text(encoding="utf-8"))
    return {"wall_s": wall, "user_s": after.ru_utime - before.ru_utime,
            "sys_s": after.ru_stime - before.ru_stime, "train_s": metrics["train_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--grammar", default="g1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    opts = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "job"
        args = train_args(work, opts.grammar, opts.threads)
        for _ in range(opts.repeats):  # alternate the sides so drifting load hits both
            for side in SIDES:
                results[side].append(run_once(side, args, work))
    medians = {side: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
               for side, runs in results.items()}
    base, kept = medians["default glibc"], medians["kept"]
    report = {"medians": medians, "runs": results,
              "ratio_wall": base["wall_s"] / kept["wall_s"],
              "ratio_train_loop": base["train_s"] / kept["train_s"]}
    for side, m in medians.items():
        print(f"{side:>14}: wall {m['wall_s']:.1f} s, user {m['user_s']:.1f} s, "
              f"kernel {m['sys_s']:.1f} s, training loop {m['train_s']:.1f} s")
    print(f"default / kept: wall {report['ratio_wall']:.2f}x, "
          f"training loop {report['ratio_train_loop']:.2f}x")
    if opts.out:
        opts.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
