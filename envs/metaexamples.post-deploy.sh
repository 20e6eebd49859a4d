#!/usr/bin/env bash
# Run by Snakemake once, inside the freshly built envs/metaexamples.yaml environment, from
# the workflow's working directory (the repository root): install the package itself,
# editable, so rules run this checkout's code (`metaexamples <stage>`).
set -euo pipefail
if [ ! -f pyproject.toml ] || ! grep -q '^name = "metaexamples"' pyproject.toml; then
  echo "post-deploy: run snakemake from the metaexamples repository root (cwd: $PWD)" >&2
  exit 1
fi
python -m pip install --no-deps --no-build-isolation -e .
