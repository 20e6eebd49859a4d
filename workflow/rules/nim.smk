# The Nim experiment family, one experiment per entry of nim.experiments:
# generate -> leakage gate -> train -> evaluate (every checkpoint x every eval set)
# -> plots, and results/nim/summary.csv across experiments.
# Cheat experiments (cheat_fraction > 0) write three more eval sets and one more figure,
# so their generate and plot rules are variants restricted to those experiments.
include: "nim_common.smk"


rule nim_generate:
    input:
        model=NIM_MODEL,
    output:
        train="data/nim/{experiment}/train.jsonl",
        evals=["data/nim/{experiment}/eval.jsonl"],
        manifest="data/nim/{experiment}/manifest.json",
    wildcard_constraints:
        experiment=nim_names_pattern(NIM_PLAIN),
    params:
        settings=lambda w: settings(f"nim.experiments.{w.experiment}"),
    conda:
        CONDA_ENV
    log:
        "logs/nim_generate/{experiment}.log",
    shell:
        "metaexamples nim generate --experiment {wildcards.experiment} "
        "--settings {params.settings:q} --model-id {input.model} "
        "--out-dir data/nim/{wildcards.experiment} 2> {log}"


use rule nim_generate as nim_generate_cheat with:
    output:
        train="data/nim/{experiment}/train.jsonl",
        evals=expand("data/nim/{{experiment}}/{name}.jsonl", name=["eval", *CHEAT_EVAL_SETS]),
        manifest="data/nim/{experiment}/manifest.json",
    wildcard_constraints:
        experiment=nim_names_pattern(NIM_CHEAT),


rule nim_leakage:
    input:
        train="data/nim/{experiment}/train.jsonl",
        evals=nim_eval_files,
        manifest="data/nim/{experiment}/manifest.json",
    output:
        report="results/nim/{experiment}/leakage.json",
    params:
        settings=lambda w: settings(f"nim.experiments.{w.experiment}"),
    conda:
        CONDA_ENV
    log:
        "logs/nim_leakage/{experiment}.log",
    shell:
        "metaexamples nim leakage --experiment {wildcards.experiment} "
        "--settings {params.settings:q} --data-dir data/nim/{wildcards.experiment} "
        "--out {output.report} 2> {log}"


rule nim_train:
    input:
        model=NIM_MODEL,
        train="data/nim/{experiment}/train.jsonl",
        leakage="results/nim/{experiment}/leakage.json",  # a leaking experiment stops here
    output:
        train=directory("results/nim/{experiment}/train"),
    params:
        settings=settings("nim.training"),
        torch_threads=torch_threads,
    threads: TORCH_JOB_THREADS
    resources:
        mem_mb=8000,
    benchmark:
        "benchmarks/nim_train/{experiment}.tsv"
    conda:
        CONDA_ENV
    log:
        "logs/nim_train/{experiment}.log",
    shell:
        "metaexamples nim train --model-id {input.model} --train {input.train} "
        "--settings {params.settings:q} --seed 0 --out-dir {output.train} "
        "--threads {params.torch_threads} 2> {log}"


rule nim_evaluate:
    input:
        model=NIM_MODEL,
        train="results/nim/{experiment}/train",
        evals=nim_eval_files,
    output:
        table="results/nim/{experiment}/accuracy_table.csv",
        predictions="results/nim/{experiment}/predictions.jsonl",
        incorrect="results/nim/{experiment}/incorrect_predictions.jsonl",
        confusion="results/nim/{experiment}/confusion.json",
    params:
        settings=settings("nim.training"),
        torch_threads=torch_threads,
    threads: TORCH_JOB_THREADS
    resources:
        mem_mb=8000,
    benchmark:
        "benchmarks/nim_evaluate/{experiment}.tsv"
    conda:
        CONDA_ENV
    log:
        "logs/nim_evaluate/{experiment}.log",
    shell:
        "metaexamples nim evaluate --settings {params.settings:q} --train-dir {input.train} "
        "--base-model {input.model} --eval {input.evals} "
        "--out-dir results/nim/{wildcards.experiment} "
        "--threads {params.torch_threads} 2> {log}"


rule nim_plot:
    input:
        table="results/nim/{experiment}/accuracy_table.csv",
        predictions="results/nim/{experiment}/predictions.jsonl",
    output:
        accuracy_vs_step=nim_figure("accuracy_vs_step"),
        accuracy_by_max_remove=nim_figure("accuracy_by_max_remove"),
        accuracy_by_residue=nim_figure("accuracy_by_residue"),
        accuracy_by_name_pair=nim_figure("accuracy_by_name_pair"),
    wildcard_constraints:
        experiment=nim_names_pattern(NIM_PLAIN),
    conda:
        CONDA_ENV
    log:
        "logs/nim_plot/{experiment}.log",
    shell:
        "metaexamples nim plot --eval-dir results/nim/{wildcards.experiment} "
        "--out-dir results/nim/{wildcards.experiment}/plots 2> {log}"


use rule nim_plot as nim_plot_cheat with:
    output:
        accuracy_vs_step=nim_figure("accuracy_vs_step"),
        accuracy_by_max_remove=nim_figure("accuracy_by_max_remove"),
        accuracy_by_residue=nim_figure("accuracy_by_residue"),
        accuracy_by_name_pair=nim_figure("accuracy_by_name_pair"),
        accuracy_by_bucket=nim_figure("accuracy_by_bucket"),
    wildcard_constraints:
        experiment=nim_names_pattern(NIM_CHEAT),


rule nim_summarize:
    input:
        tables=expand("results/nim/{experiment}/accuracy_table.csv", experiment=NIM),
        leakage=expand("results/nim/{experiment}/leakage.json", experiment=NIM),
    output:
        summary=report(
            "results/nim/summary.csv", caption="../report/nim_summary.rst", category="Nim"
        ),
    params:
        experiments=" ".join(f"--experiment {name}" for name in NIM),
    conda:
        CONDA_ENV
    log:
        "logs/nim_summarize.log",
    shell:
        "metaexamples nim summarize {params.experiments} --results-dir results/nim "
        "--out {output.summary} 2> {log}"
