# Grammar evaluation and report: run paths, input functions and figure names (the rules
# are in evaluate.smk and report.smk; common.smk includes this file before them).
# An evaluated "run" is "{condition}/seed{seed}" (a trained model), "baseline" (the
# untrained base model, step 0) or "oracle" (the grammar's exact distribution, on the base
# model's tokenizer); all live under results/runs/{grammar}/.
import re


from metaexamples.grammar.summary import BASELINE as BASELINE_RUN, ORACLE as ORACLE_RUN
EVAL_RUN = (f"{BASELINE_RUN}|{ORACLE_RUN}|("
            + "|".join(re.escape(c) for c in CONDITIONS) + r")/seed\d+")
GRAMMAR_PLOTS = {
    "contrasts": "Does it help? Contrasts against the reference",
    "learning_curves": "Learning curves: val excess NLL over synthetic tokens",
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


def trained_runs(grammar):
    """(condition, seed, run directory) of every trained run of one grammar."""
    return [(c, s, f"results/runs/{grammar}/{c}/seed{s}") for c in CONDITIONS for s in SEEDS]


def reference_dir(grammar, run):
    """Where the baseline or the oracle of one grammar is evaluated."""
    return f"results/runs/{grammar}/{run}"


def summary_inputs(wildcards):
    """Every file one grammar's summary reads, named (runs, baseline, oracle)."""
    runs = trained_runs(wildcards.grammar)
    refs = [reference_dir(wildcards.grammar, r) for r in (BASELINE_RUN, ORACLE_RUN)]
    return {
        "perplexity": [f"{d}/eval/perplexity_metrics.json" for *_, d in runs]
        + [f"{d}/eval/perplexity_metrics.json" for d in refs],
        "generation": [f"{d}/eval/generation_metrics.json" for *_, d in runs]
        + [f"{d}/eval/generation_metrics.json" for d in refs],
        "train": [f"{d}/train_metrics.json" for *_, d in runs],
        "curve": [f"{d}/learning_curve.json" for *_, d in runs],
    }


def summary_flags(wildcards):
    """The summarize command's --run/--reference flags: each file with its run."""
    flags = [f"--run {c} {s} {d}/eval/perplexity_metrics.json "
             f"{d}/eval/generation_metrics.json {d}/train_metrics.json {d}/learning_curve.json"
             for c, s, d in trained_runs(wildcards.grammar)]
    flags += [f"--reference {r} {d}/eval/perplexity_metrics.json "
              f"{d}/eval/generation_metrics.json"
              for r, d in ((r, reference_dir(wildcards.grammar, r))
                           for r in (BASELINE_RUN, ORACLE_RUN))]
    return " ".join(flags)


def contrast_inputs(wildcards):
    """Per-string scores, samples and curves of every run (a one-seed contrast resamples
    them), the grammar's summary and manifest."""
    runs = trained_runs(wildcards.grammar)
    return {
        "summary": f"results/{wildcards.grammar}/summary.csv",
        "manifest": f"data/{wildcards.grammar}/manifest.json",
        "scores": [f"{d}/eval/scores.jsonl" for *_, d in runs],
        "samples": [f"{d}/eval/samples.jsonl" for *_, d in runs],
        "curves": [f"{d}/learning_curve.json" for *_, d in runs],
    }


def contrast_flags(wildcards):
    """The contrast command's --pair and --run flags."""
    from metaexamples.grammar.contrasts import contrast_pairs

    pairs = contrast_pairs(CONDITIONS, CFG.experiment.contrasts)
    flags = [f"--pair {c} {r}" for c, r in pairs]
    flags += [f"--run {c} {s} {d}/eval/scores.jsonl {d}/eval/samples.jsonl "
              f"{d}/learning_curve.json" for c, s, d in trained_runs(wildcards.grammar)]
    return " ".join(flags)


def train_logs(wildcards):
    return [f"{d}/train_log.csv" for *_, d in trained_runs(wildcards.grammar)]


def plot_flags(wildcards):
    """The plot command's --run flags: condition, seed, train log and learning curve."""
    return " ".join(f"--run {c} {s} {d}/train_log.csv {d}/learning_curve.json"
                    for c, s, d in trained_runs(wildcards.grammar))


def grammar_plot(name):
    """One per-grammar figure, tagged for the report with its caption; the contrasts go
    under "Does it help?"."""
    if name == "contrasts":
        category, subcategory = "Does it help?", "Grammar {grammar}"
    else:
        category, subcategory = "Grammar {grammar}", GRAMMAR_PLOTS[name]
    return report(
        f"results/{{grammar}}/plots/{name}.png",
        caption=f"../report/{name}.rst",
        category=category,
        subcategory=subcategory,
    )


def grammar_targets(grammar):
    """Everything one grammar's branch produces (its summary, contrasts and figures)."""
    return [f"results/{grammar}/summary.csv", f"results/{grammar}/contrasts.csv"] + [
        f"results/{grammar}/plots/{name}.png" for name in GRAMMAR_PLOTS
    ]
