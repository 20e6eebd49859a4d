# Grammar evaluation and report: run paths, input functions and figure names (the rules
# are in evaluate.smk, which includes this file, and report.smk, included after it).
# An evaluated "run" is "{condition}/seed{seed}" (a trained model), "baseline" (the
# untrained base model, step 0) or "oracle" (the grammar's exact distribution, on the base
# model's tokenizer); all live under results/runs/{grammar}/.
import re


BASELINE_RUN, ORACLE_RUN = "baseline", "oracle"
EVAL_RUN = (f"{BASELINE_RUN}|{ORACLE_RUN}|("
            + "|".join(re.escape(c) for c in CONDITIONS) + r")/seed\d+")
GRAMMAR_PLOTS = {
    "metrics_by_condition": "Headline metrics by condition",
    "by_negative_type": "AUROC and pair accuracy by negative type",
    "loss_curves": "Training and evaluation losses",
}


def eval_model(wildcards):
    """The model a run's evaluation reads: the trained model, or the base model (whose
    tokenizer the oracle uses)."""
    if wildcards.run in (BASELINE_RUN, ORACLE_RUN):
        return BASE_MODEL
    return f"results/runs/{wildcards.grammar}/{wildcards.run}/model"


def eval_seed(wildcards):
    """Sampling seed: the run's seed; baseline and oracle use the first configured seed."""
    found = re.search(r"seed(\d+)$", wildcards.run)
    return found.group(1) if found else SEEDS[0]


def run_dirs(grammar):
    """Every trained run of one grammar: results/runs/{grammar}/{condition}/seed{seed}."""
    return [f"results/runs/{grammar}/{c}/seed{s}" for c in CONDITIONS for s in SEEDS]


def reference_dir(grammar, run):
    """Where the baseline or the oracle of one grammar is evaluated."""
    return f"results/runs/{grammar}/{run}"


def summary_inputs(wildcards):
    """Every metrics file one grammar's summary reads (runs, baseline, oracle)."""
    runs = run_dirs(wildcards.grammar)
    evaluated = [*runs, *(reference_dir(wildcards.grammar, r) for r in (BASELINE_RUN,
                                                                        ORACLE_RUN))]
    return {
        "perplexity": [f"{r}/eval/perplexity_metrics.json" for r in evaluated],
        "generation": [f"{r}/eval/generation_metrics.json" for r in evaluated],
        "train": [f"{r}/train_metrics.json" for r in runs],
    }


def train_logs(wildcards):
    return [f"{r}/train_log.csv" for r in run_dirs(wildcards.grammar)]


def grammar_plot(name):
    """One per-grammar figure, tagged for the report with its caption."""
    return report(
        f"results/{{grammar}}/plots/{name}.png",
        caption=f"../report/{name}.rst",
        category="Grammar {grammar}",
        subcategory=GRAMMAR_PLOTS[name],
    )


def grammar_targets(grammar):
    """Everything one grammar's branch produces (its summary and figures)."""
    return [f"results/{grammar}/summary.csv"] + [
        f"results/{grammar}/plots/{name}.png" for name in GRAMMAR_PLOTS
    ]
