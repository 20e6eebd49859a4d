# Evaluation of every trained run and of the two bounds every condition sits between: the
# untrained base model (the step-0 baseline) and the grammar's exact-distribution oracle.
# One job per evaluated run loads the model once, scores the strings and samples:
# results/runs/{grammar}/{run}/eval/, where {run} is "{condition}/seed{seed}", "baseline"
# or "oracle" (see evaluate_common.smk).

rule evaluate:
    input:
        model=eval_model,
        train="data/{grammar}/train.jsonl",
        val="data/{grammar}/val.jsonl",
        test="data/{grammar}/test.jsonl",
        manifest="data/{grammar}/manifest.json",
        tokens="data/tokens.json",
        heldout="data/canonical/heldout.jsonl",
    output:
        scores="results/runs/{grammar}/{run}/eval/scores.jsonl",
        metrics="results/runs/{grammar}/{run}/eval/perplexity_metrics.json",
        samples="results/runs/{grammar}/{run}/eval/samples.jsonl",
        generation="results/runs/{grammar}/{run}/eval/generation_metrics.json",
    wildcard_constraints:
        run=EVAL_RUN,
    params:
        settings=settings("evaluation"),
        seed=eval_seed,
        oracle=lambda wildcards: "--oracle" if wildcards.run == ORACLE_RUN else "",
        data_dir=subpath(input.manifest, parent=True),
        out_dir=subpath(output.metrics, parent=True),
        torch_threads=torch_threads,
    threads: TORCH_JOB_THREADS
    resources:
        mem_mb=EVAL_MEM_MB,
    conda:
        CONDA_ENV
    log:
        "logs/evaluate/{grammar}/{run}.log",
    benchmark:
        "benchmarks/evaluate/{grammar}/{run}.tsv"
    shell:
        "metaexamples evaluate --model-dir {input.model} {params.oracle} "
        "--data-dir {params.data_dir} --tokens {input.tokens} --canonical-heldout {input.heldout} "
        "--seed {params.seed} --settings {params.settings:q} --out-dir {params.out_dir} "
        "--threads {params.torch_threads} 2> {log}"
