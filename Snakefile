# metaexamples: synthetic-grammar and Nim fine-tuning experiments.
# Thin on purpose: configuration, validation and target lists live in
# workflow/rules/common.smk; each stage is one .smk; science is in src/metaexamples.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/scale.smk"
include: "workflow/rules/assets.smk"
include: "workflow/rules/tokens.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/nim.smk"


rule all:
    input:
        all_targets(),
    default_target: True
