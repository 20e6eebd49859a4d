# The Nim experiment family, one experiment per entry of nim.experiments:
# generate -> leakage gate -> train (one run per nim.training.seeds) -> evaluate (every
# checkpoint x the validation set and every eval set) -> plots, and results/nim/summary.csv
# (the validation-selected checkpoint per run, intervals within and across seeds).
# An experiment's data is one directory: its eval sets depend on its settings (per
# max_remove, per cheat bucket). Cheat experiments draw one more figure, so their plot rule
# is a variant restricted to them.


rule nim_generate:
    input:
        model=NIM_MODEL,
    output:
        data=directory("data/nim/{experiment}"),
    params:
        settings=lambda w: settings(f"nim.experiments.{w.experiment}"),
    conda:
        CONDA_ENV
    log:
        "logs/nim_generate/{experiment}.log",
    shell:
        "metaexamples nim generate --experiment {wildcards.experiment} "
        "--settings {params.settings:q} --model-id {input.model} "
        "--out-dir {output.data} 2> {log}"


rule nim_leakage:
    input:
        data="data/nim/{experiment}",
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
        "--settings {params.settings:q} --data-dir {input.data} "
        "--out {output.report} 2> {log}"


rule nim_train:
    input:
        model=NIM_MODEL,
        data="data/nim/{experiment}",
        leakage="results/nim/{experiment}/leakage.json",  # a leaking experiment stops here
    output:
        train=directory("results/nim/{experiment}/seed{seed}/train"),
    params:
        settings=nim_training_settings,
        torch_threads=torch_threads,
    threads: TORCH_JOB_THREADS
    resources:
        mem_mb=NIM_MEMORY.train_mb,
        gpu=NIM_GPUS,
    benchmark:
        "benchmarks/nim_train/{experiment}/seed{seed}.tsv"
    conda:
        CONDA_ENV
    log:
        "logs/nim_train/{experiment}/seed{seed}.log",
    shell:
        "metaexamples with-gpus --gpus {resources.gpu} -- "
        "metaexamples nim train --model-id {input.model} --train {input.data}/train.jsonl "
        "--settings {params.settings:q} --seed {wildcards.seed} --out-dir {output.train} "
        "--checkpoint-root checkpoints "
        "--threads {params.torch_threads} 2> {log}"


rule nim_evaluate:
    input:
        model=NIM_MODEL,
        train="results/nim/{experiment}/seed{seed}/train",
        data="data/nim/{experiment}",
    output:
        table="results/nim/{experiment}/seed{seed}/accuracy_table.csv",
        predictions="results/nim/{experiment}/seed{seed}/predictions.jsonl",
        incorrect="results/nim/{experiment}/seed{seed}/incorrect_predictions.jsonl",
        confusion="results/nim/{experiment}/seed{seed}/confusion.json",
    params:
        batch_size=CFG.nim.training.eval_batch_size,
        evals=nim_heldout_files,
        out_dir=subpath(output.table, parent=True),
        torch_threads=torch_threads,
    threads: TORCH_JOB_THREADS
    resources:
        mem_mb=NIM_MEMORY.eval_mb,
        gpu=NIM_GPUS,
    benchmark:
        "benchmarks/nim_evaluate/{experiment}/seed{seed}.tsv"
    conda:
        CONDA_ENV
    log:
        "logs/nim_evaluate/{experiment}/seed{seed}.log",
    shell:
        "metaexamples with-gpus --gpus {resources.gpu} -- "
        "metaexamples nim evaluate --batch-size {params.batch_size} --train-dir {input.train} "
        "--base-model {input.model} --eval {params.evals} --out-dir {params.out_dir} "
        "--threads {params.torch_threads} 2> {log}"


rule nim_plot:
    input:
        table="results/nim/{experiment}/seed{seed}/accuracy_table.csv",
        predictions="results/nim/{experiment}/seed{seed}/predictions.jsonl",
    output:
        **nim_figure_outputs(NIM_FIGURES),
    params:
        eval_dir=subpath(input.table, parent=True),
    wildcard_constraints:
        experiment=nim_names_pattern(NIM_PLAIN),
    conda:
        CONDA_ENV
    log:
        "logs/nim_plot/{experiment}/seed{seed}.log",
    shell:
        "metaexamples nim plot --eval-dir {params.eval_dir} "
        "--out-dir {params.eval_dir}/plots 2> {log}"


use rule nim_plot as nim_plot_cheat with:
    output:
        **nim_figure_outputs(NIM_CHEAT_FIGURES),
    wildcard_constraints:
        experiment=nim_names_pattern(NIM_CHEAT),


rule nim_summarize:
    input:
        tables=expand(
            "results/nim/{experiment}/seed{seed}/accuracy_table.csv",
            experiment=NIM,
            seed=NIM_SEEDS,
        ),
        leakage=expand("results/nim/{experiment}/leakage.json", experiment=NIM),
    output:
        summary=report(
            "results/nim/summary.csv", caption="../report/nim_summary.rst", category="Nim"
        ),
    params:
        runs=" ".join(
            f"--run {name} {s} results/nim/{name}/seed{s}/accuracy_table.csv "
            f"results/nim/{name}/leakage.json"
            for name in NIM
            for s in NIM_SEEDS
        ),
    conda:
        CONDA_ENV
    log:
        "logs/nim_summarize.log",
    shell:
        "metaexamples nim summarize {params.runs} --out {output.summary} 2> {log}"
