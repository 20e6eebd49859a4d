rule generate_data:
    input:
        tokens="data/tokens.json",
        canonical="data/canonical/train.jsonl",
    output:
        grammar_data("{grammar}"),
        expand("data/{{grammar}}/meta_{design}.jsonl", design=META_DESIGNS),
        manifest="data/{grammar}/manifest.json",
    params:
        settings=lambda w: settings(f"grammars.{w.grammar}", "data"),
    conda:
        CONDA_ENV
    log:
        "logs/generate_data/{grammar}.log",
    shell:
        "metaexamples generate-data --grammar {wildcards.grammar} --settings {params.settings:q} "
        "--tokens {input.tokens} --canonical {input.canonical} --out-dir data/{wildcards.grammar} "
        "2> {log}"
