# Evaluation of every trained run and of the untrained base model (the step-0 baseline):
# results/runs/{grammar}/{run}/eval/ with per-string scores, samples and their metrics,
# where {run} is "{condition}/seed{seed}" or "baseline" (see evaluate_common.smk).
include: "evaluate_common.smk"


rule evaluate_perplexity:
    input:
        model=eval_model,
        val="data/{grammar}/val.jsonl",
        test="data/{grammar}/test.jsonl",
        manifest="data/{grammar}/manifest.json",
        tokens="data/tokens.json",
        heldout="data/canonical/heldout.jsonl",
    output:
        scores="results/runs/{grammar}/{run}/eval/scores.jsonl",
        metrics="results/runs/{grammar}/{run}/eval/perplexity_metrics.json",
    wildcard_constraints:
        run=EVAL_RUN,
    params:
        settings=settings("evaluation"),
        data_dir=subpath(input.manifest, parent=True),
        out_dir=subpath(output.metrics, parent=True),
        torch_threads=torch_threads,
    threads: TORCH_JOB_THREADS
    resources:
        mem_mb=EVAL_MEM_MB,
    conda:
        CONDA_ENV
    log:
        "logs/evaluate_perplexity/{grammar}/{run}.log",
    benchmark:
        "benchmarks/evaluate_perplexity/{grammar}/{run}.tsv"
    shell:
        "metaexamples evaluate-perplexity --model-dir {input.model} --data-dir {params.data_dir} "
        "--tokens {input.tokens} --canonical-heldout {input.heldout} "
        "--settings {params.settings:q} --out-dir {params.out_dir} "
        "--threads {params.torch_threads} 2> {log}"


rule evaluate_generation:
    input:
        model=eval_model,
        train="data/{grammar}/train.jsonl",
        manifest="data/{grammar}/manifest.json",
        tokens="data/tokens.json",
    output:
        samples="results/runs/{grammar}/{run}/eval/samples.jsonl",
        metrics="results/runs/{grammar}/{run}/eval/generation_metrics.json",
    wildcard_constraints:
        run=EVAL_RUN,
    params:
        settings=settings("evaluation"),
        seed=eval_seed,
        data_dir=subpath(input.manifest, parent=True),
        out_dir=subpath(output.metrics, parent=True),
        torch_threads=torch_threads,
    threads: TORCH_JOB_THREADS
    resources:
        mem_mb=EVAL_MEM_MB,
    conda:
        CONDA_ENV
    log:
        "logs/evaluate_generation/{grammar}/{run}.log",
    benchmark:
        "benchmarks/evaluate_generation/{grammar}/{run}.tsv"
    shell:
        "metaexamples evaluate-generation --model-dir {input.model} --data-dir {params.data_dir} "
        "--tokens {input.tokens} --seed {params.seed} --settings {params.settings:q} "
        "--out-dir {params.out_dir} --threads {params.torch_threads} 2> {log}"
