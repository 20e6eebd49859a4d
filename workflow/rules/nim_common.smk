# Nim experiment family: resolved experiments, wildcard constraint, input functions and
# targets (the rules are in nim.smk; common.smk includes this file before it).
import re

import metaexamples.nim.plots as NIM_PLOTS
from metaexamples.nim.experiments import resolve_experiment

NIM = {
    name: resolve_experiment(name, entry) for name, entry in CFG.nim.active_experiments.items()
}
NIM_MODEL = f"data/models/{model_slug(CFG.nim.training.model)}"
NIM_SEEDS = list(CFG.nim.training.seeds)
NIM_GPUS = CFG.nim.training.gpus
NIM_MEMORY = memory_request(CFG.nim.training.model)
NIM_CHEAT = [name for name, exp in NIM.items() if exp.settings.has_cheat]
NIM_PLAIN = [name for name, exp in NIM.items() if not exp.settings.has_cheat]
NIM_FIGURES = NIM_PLOTS.FIGURES  # every experiment's figures, named once in the package
NIM_CHEAT_FIGURES = (*NIM_FIGURES, NIM_PLOTS.BUCKET_FIGURE)


def nim_training_settings(wildcards):
    """The run's settings, resolved for its experiment's training examples (`RunSettings`
    JSON; without the seed list, so adding a seed does not rerun the other seeds)."""
    examples = NIM[wildcards.experiment].settings.n_train
    return CFG.nim.training.run_settings(examples).to_json()


def nim_names_pattern(names):
    """A wildcard regex matching exactly `names` (or nothing, when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    experiment=nim_names_pattern(NIM),


def nim_heldout_files(wildcards):
    """The validation set and every eval set of the experiment (scored at each checkpoint)."""
    folder = f"data/nim/{wildcards.experiment}"
    names = NIM[wildcards.experiment].settings.heldout_set_names
    return " ".join(f"{folder}/{name}.jsonl" for name in names)


def nim_figure(figure):
    return report(
        f"results/nim/{{experiment}}/seed{{seed}}/plots/{figure}.png",
        caption=f"../report/nim_{figure}.rst",
        category="Nim",
        subcategory="{experiment} seed {seed}",
    )


def nim_figure_outputs(figures):
    """Named outputs of a plot rule: one report figure per name in `figures`."""
    return {figure: nim_figure(figure) for figure in figures}


def nim_figures(experiment, seed):
    figures = NIM_CHEAT_FIGURES if NIM[experiment].settings.has_cheat else NIM_FIGURES
    return [f"results/nim/{experiment}/seed{seed}/plots/{figure}.png" for figure in figures]


def nim_targets():
    """The Nim family's final targets (for all_targets): the summary and every figure."""
    if not NIM:  # every experiment switched off: no Nim job at all
        return []
    figures = [f for name in NIM for seed in NIM_SEEDS for f in nim_figures(name, seed)]
    return ["results/nim/summary.csv", *figures]
