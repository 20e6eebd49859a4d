rule select_tokens:
    input:
        BASE_MODEL,
    output:
        tokens="data/tokens.json",
        audit="data/tokens_audit.tsv",
    params:
        size=CFG.alphabet.size,
        ranking=f"--{CFG.alphabet.ranking}" if CFG.alphabet.ranking != "rarity" else "",
        screen="" if CFG.alphabet.screen_undertrained else "--no-screen-undertrained",
    conda:
        CONDA_ENV
    log:
        "logs/select_tokens.log",
    shell:
        "metaexamples select-tokens --model-id {input} --size {params.size} {params.ranking} "
        "{params.screen} --out {output.tokens} --audit {output.audit} 2> {log}"
