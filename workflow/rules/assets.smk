rule fetch_olmo_assets:
    output:
        olmo_tokenizer="data/assets/olmo_tokenizer.json",
        neox_tokenizer="data/assets/neox_tokenizer.json",
        datasets=directory("data/assets/hf_datasets"),
    conda:
        CONDA_ENV
    log:
        "logs/fetch_olmo_assets.log",
    shell:
        "metaexamples fetch-assets --what olmo --dest data/assets 2> {log}"


rule fetch_smollm2:
    output:
        "data/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    conda:
        CONDA_ENV
    log:
        "logs/fetch_smollm2.log",
    shell:
        "metaexamples fetch-assets --what smollm2 --dest data/assets 2> {log}"


rule build_canonical:
    input:
        canonical_inputs,
    output:
        train="data/canonical/train.jsonl",
        heldout="data/canonical/heldout.jsonl",
        manifest="data/canonical/manifest.json",
    params:
        settings=settings("canonical"),
    conda:
        CONDA_ENV
    log:
        "logs/build_canonical.log",
    shell:
        "metaexamples build-canonical --settings {params.settings:q} "
        "--out-dir data/canonical 2> {log}"


rule prepare_model:
    input:
        unpack(model_inputs),
    output:
        directory("data/models/{model}"),
    params:
        settings=model_settings,
        name=model_name,
        flags=model_flags,
    conda:
        CONDA_ENV
    log:
        "logs/prepare_model/{model}.log",
    resources:
        mem_mb=8000,
    shell:
        "metaexamples prepare-model --settings {params.settings:q} --model {params.name:q} "
        "{params.flags} --out-dir {output} 2> {log}"
