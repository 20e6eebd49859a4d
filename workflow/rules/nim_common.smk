# Nim experiment family: resolved experiments, wildcard constraint, input functions and
# targets (the rules are in nim.smk, which includes this file).
import re

from metaexamples.nim.experiments import resolve_experiment
from metaexamples.nim.generator import CHEAT_EVAL_SETS

NIM = {name: resolve_experiment(name, entry) for name, entry in CFG.nim.experiments.items()}
NIM_MODEL = f"data/models/{model_slug(CFG.nim.training.model)}"
NIM_CHEAT = [name for name, exp in NIM.items() if exp.settings.has_cheat]
NIM_PLAIN = [name for name, exp in NIM.items() if not exp.settings.has_cheat]
NIM_FIGURES = (
    "accuracy_vs_step",
    "accuracy_by_max_remove",
    "accuracy_by_residue",
    "accuracy_by_name_pair",
)
NIM_CHEAT_FIGURES = (*NIM_FIGURES, "accuracy_by_bucket")


def nim_names_pattern(names):
    """A wildcard regex matching exactly `names` (or nothing, when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    experiment=nim_names_pattern(NIM),


def nim_eval_files(wildcards):
    folder = f"data/nim/{wildcards.experiment}"
    return [f"{folder}/{name}.jsonl" for name in NIM[wildcards.experiment].eval_sets]


def nim_figure(figure):
    return report(
        f"results/nim/{{experiment}}/plots/{figure}.png",
        caption=f"../report/nim_{figure}.rst",
        category="Nim",
        subcategory="{experiment}",
    )


def nim_figures(experiment):
    figures = NIM_CHEAT_FIGURES if NIM[experiment].settings.has_cheat else NIM_FIGURES
    return [f"results/nim/{experiment}/plots/{figure}.png" for figure in figures]


def nim_targets():
    """The Nim family's final targets (for all_targets): the summary and every figure."""
    return ["results/nim/summary.csv", *[f for name in NIM for f in nim_figures(name)]]
