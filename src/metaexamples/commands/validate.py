"""Check config files and print the resolved configuration (defaults filled in).

`metaexamples validate-config my.yaml` checks what `snakemake --configfile my.yaml` would
run: my.yaml merged over the base config (config.yaml, as the Snakefile loads it), mappings
key by key and lists replaced, then the same checks as the workflow's before any job.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from metaexamples.config import load_config


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configfiles", nargs="*", type=Path, metavar="CONFIGFILE",
                        help="files merged over the base in order, like --configfile")
    parser.add_argument("--base", type=Path, default=Path("config.yaml"),
                        help="the Snakefile's config (default: config.yaml)")


def run(args: argparse.Namespace) -> None:
    config = load_config(args.base, *args.configfiles)
    print(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True), end="")
