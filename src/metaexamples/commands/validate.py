"""Check a config file and print the resolved configuration (defaults filled in)."""

from __future__ import annotations

import argparse

import yaml

from metaexamples.config import load_config


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default="config.yaml")


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    print(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True), end="")
