# Aggregation and figures: results/{grammar}/summary.csv per grammar (so one grammar's
# branch builds or reruns alone), results/summary.csv and summary_by_condition.csv over all
# grammars, and per-grammar plots tagged for `snakemake --report report.html`.
# Input functions and figure names are in evaluate_common.smk (included by evaluate.smk).


rule summarize_grammar:
    input:
        unpack(summary_inputs),
    output:
        summary="results/{grammar}/summary.csv",
    params:
        runs=lambda wildcards: run_dirs(wildcards.grammar),
        baseline=lambda wildcards: reference_dir(wildcards.grammar, BASELINE_RUN),
        oracle=lambda wildcards: reference_dir(wildcards.grammar, ORACLE_RUN),
    log:
        "logs/summarize_grammar/{grammar}.log",
    conda:
        CONDA_ENV
    shell:
        "metaexamples summarize --grammar {wildcards.grammar} --baseline {params.baseline} "
        "--oracle {params.oracle} --runs {params.runs} --out {output.summary} 2> {log}"


rule summarize:
    input:
        expand("results/{grammar}/summary.csv", grammar=GRAMMARS),
    output:
        summary=report("results/summary.csv", caption="../report/summary.rst",
                       category="Summary tables"),
        by_condition=report("results/summary_by_condition.csv",
                            caption="../report/summary_by_condition.rst",
                            category="Summary tables"),
    log:
        "logs/summarize/summarize.log",
    conda:
        CONDA_ENV
    shell:
        "metaexamples summarize --combine {input} --out {output.summary} "
        "--by-condition {output.by_condition} 2> {log}"


rule plot_grammar:
    input:
        summary="results/{grammar}/summary.csv",
        logs=train_logs,
    output:
        metrics=grammar_plot("metrics_by_condition"),
        negatives=grammar_plot("by_negative_type"),
        losses=grammar_plot("loss_curves"),
    params:
        runs=lambda wildcards: run_dirs(wildcards.grammar),
        out_dir=subpath(output.metrics, parent=True),
    log:
        "logs/plot_grammar/{grammar}.log",
    conda:
        CONDA_ENV
    shell:
        "metaexamples plot --summary {input.summary} --runs {params.runs} "
        "--out-dir {params.out_dir} 2> {log}"
