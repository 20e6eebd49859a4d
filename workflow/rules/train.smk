# One fine-tuning run per grammar x condition x seed: canonical text plus the grammar's
# examples (and the condition's metaexamples) mixed by token share and packed; the val
# excess NLL at every evaluation goes to learning_curve.json. Resumable
# checkpoints live under checkpoints/<run key>/, outside the declared outputs.


rule train:
    input:
        model=seed_model,
        corpus="data/{grammar}/train.jsonl",
        val="data/{grammar}/val.jsonl",
        manifest="data/{grammar}/manifest.json",
        meta=train_meta,
        canonical="data/canonical/train.jsonl",
        heldout="data/canonical/heldout.jsonl",
    output:
        model=directory("results/runs/{grammar}/{condition}/seed{seed}/model"),
        metrics="results/runs/{grammar}/{condition}/seed{seed}/train_metrics.json",
        log_csv="results/runs/{grammar}/{condition}/seed{seed}/train_log.csv",
        config="results/runs/{grammar}/{condition}/seed{seed}/config.json",
        curve="results/runs/{grammar}/{condition}/seed{seed}/learning_curve.json",
    params:
        settings=training_settings,
        meta=train_meta_flags,
        out_dir=subpath(output.metrics, parent=True),
        torch_threads=torch_threads,
        exact_max_strings=CFG.evaluation.exact_max_strings,
    threads: TORCH_JOB_THREADS
    resources:
        mem_mb=TRAIN_MEM_MB,
        gpu=CFG.training.gpus,
    conda:
        CONDA_ENV
    log:
        "logs/train/{grammar}/{condition}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{grammar}/{condition}/seed{seed}.tsv"
    shell:
        "metaexamples with-gpus --gpus {resources.gpu} -- "
        "metaexamples train --model-id {input.model} --corpus {input.corpus} {params.meta} "
        "--canonical {input.canonical} --canonical-heldout {input.heldout} "
        "--eval-data {input.val} --manifest {input.manifest} "
        "--exact-max-strings {params.exact_max_strings} "
        "--seed {wildcards.seed} --settings {params.settings:q} "
        "--checkpoint-root checkpoints --out-dir {params.out_dir} "
        "--threads {params.torch_threads} 2> {log}"
