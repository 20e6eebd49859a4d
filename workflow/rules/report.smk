# Aggregation and figures: results/{grammar}/summary.csv and contrasts.csv per grammar (so
# one grammar's branch builds or reruns alone), results/summary.csv, summary_by_condition.csv
# and contrasts.csv over all grammars, and per-grammar plots tagged for the report.
# Input functions and figure names are in evaluate_common.smk (included by common.smk).


rule summarize_grammar:
    input:
        unpack(summary_inputs),
    output:
        summary="results/{grammar}/summary.csv",
    params:
        files=summary_flags,
        threshold=CFG.evaluation.speed_threshold_nats,
    log:
        "logs/summarize_grammar/{grammar}.log",
    conda:
        CONDA_ENV
    shell:
        "metaexamples summarize --grammar {wildcards.grammar} {params.files} "
        "--speed-threshold {params.threshold} --out {output.summary} 2> {log}"


rule contrast_grammar:
    input:
        unpack(contrast_inputs),
    output:
        contrasts="results/{grammar}/contrasts.csv",
        plot=grammar_plot("contrasts"),
    params:
        flags=contrast_flags,
    log:
        "logs/contrast_grammar/{grammar}.log",
    conda:
        CONDA_ENV
    shell:
        "metaexamples contrast --summary {input.summary} --manifest {input.manifest} "
        "{params.flags} --out {output.contrasts} --plot {output.plot} 2> {log}"


rule contrast:
    input:
        expand("results/{grammar}/contrasts.csv", grammar=GRAMMARS),
    output:
        report("results/contrasts.csv", caption="../report/contrasts_table.rst",
               category="Does it help?"),
    log:
        "logs/contrast/contrast.log",
    conda:
        CONDA_ENV
    shell:
        "metaexamples contrast --combine {input} --out {output} 2> {log}"


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
        curves=lambda wildcards: summary_inputs(wildcards)["curve"],
    output:
        metrics=grammar_plot("metrics_by_condition"),
        negatives=grammar_plot("by_negative_type"),
        losses=grammar_plot("loss_curves"),
        learning=grammar_plot("learning_curves"),
    params:
        runs=plot_flags,
        threshold=CFG.evaluation.speed_threshold_nats,
        out_dir=subpath(output.metrics, parent=True),
    log:
        "logs/plot_grammar/{grammar}.log",
    conda:
        CONDA_ENV
    shell:
        "metaexamples plot --summary {input.summary} {params.runs} "
        "--speed-threshold {params.threshold} --out-dir {params.out_dir} 2> {log}"
