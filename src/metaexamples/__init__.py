"""Controlled fine-tuning experiments on synthetic grammars, metaexamples and Nim."""

__version__ = "0.1.0"
