# Aggregation and figures: results/{grammar}/summary.csv per grammar (so one grammar's
# branch builds or reruns alone), results/summary.csv and summary_by_condition.csv over all
# grammars, and per-grammar plots tagged for `snakemake --report report.html`.


def run_dirs(grammar):
    """Every trained run of one grammar: results/runs/{grammar}/{condition}/seed{seed}."""
    return [f"results/runs/{grammar}/{c}/seed{s}" for c in CONDITIONS for s in SEEDS]


def baseline_dir(grammar):
    return f"results/runs/{grammar}/baseline"


def summary_inputs(wildcards):
    runs = run_dirs(wildcards.grammar)
    evaluated = [*runs, baseline_dir(wildcards.grammar)]
    return {
        "perplexity": [f"{r}/eval/perplexity_metrics.json" for r in evaluated],
        "generation": [f"{r}/eval/generation_metrics.json" for r in evaluated],
        "train": [f"{r}/train_metrics.json" for r in runs],
    }


PLOTS = {
    "metrics_by_condition": "Headline metrics by condition",
    "by_negative_type": "AUROC and pair accuracy by negative type",
    "loss_curves": "Training and evaluation losses",
}


def plot_output(name):
    return report(
        f"results/{{grammar}}/plots/{name}.png",
        caption=f"../report/{name}.rst",
        category="Grammar {grammar}",
        subcategory=PLOTS[name],
    )


rule summarize_grammar:
    input:
        unpack(summary_inputs),
    output:
        summary="results/{grammar}/summary.csv",
    params:
        runs=lambda wildcards: run_dirs(wildcards.grammar),
        baseline=lambda wildcards: baseline_dir(wildcards.grammar),
    log:
        "logs/summarize_grammar/{grammar}.log",
    conda:
        CONDA_ENV
    shell:
        "metaexamples summarize --grammar {wildcards.grammar} --baseline {params.baseline} "
        "--runs {params.runs} --out {output.summary} 2> {log}"


rule summarize:
    input:
        expand("results/{grammar}/summary.csv", grammar=GRAMMARS),
    output:
        summary=report("results/summary.csv", caption="../report/summary.rst",
                       category="Summary tables"),
        by_condition=report("results/summary_by_condition.csv",
                            caption="../report/summary_by_condition.rst",
                            category="Summary tables"),
    params:
        settings=settings("evaluation"),
    log:
        "logs/summarize/summarize.log",
    conda:
        CONDA_ENV
    shell:
        "metaexamples summarize --combine {input} --out {output.summary} "
        "--by-condition {output.by_condition} --settings {params.settings:q} 2> {log}"


rule plot_grammar:
    input:
        summary="results/{grammar}/summary.csv",
        logs=lambda wildcards: [f"{r}/train_log.csv" for r in run_dirs(wildcards.grammar)],
    output:
        metrics=plot_output("metrics_by_condition"),
        negatives=plot_output("by_negative_type"),
        losses=plot_output("loss_curves"),
    params:
        settings=settings("evaluation"),
        runs=lambda wildcards: run_dirs(wildcards.grammar),
        out_dir=subpath(output.metrics, parent=True),
    log:
        "logs/plot_grammar/{grammar}.log",
    conda:
        CONDA_ENV
    shell:
        "metaexamples plot --summary {input.summary} --runs {params.runs} "
        "--out-dir {params.out_dir} --settings {params.settings:q} 2> {log}"
