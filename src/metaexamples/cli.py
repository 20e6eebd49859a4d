"""`metaexamples <stage>`: one subcommand per pipeline stage.

Each subcommand lives in `metaexamples.commands.<module>` with `configure(parser)` and
`run(args)`; this file only wires them together, so commands import their heavy
dependencies (torch, transformers) only when they run.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from metaexamples.scale.runtime import keep_freed_memory

# subcommand -> module under metaexamples.commands
COMMANDS = {
    "fetch-assets": "assets",
    "build-canonical": "canonical",
    "prepare-model": "model",
    "select-tokens": "tokens",
    "generate-data": "data",
    "validate-config": "validate",
    "train": "train",
    "nim": "nim",
    "evaluate": "evaluate",
    "summarize": "summarize",
    "contrast": "contrast",
    "power": "power",
    "plot": "plot",
    "with-gpus": "gpus",
    "clean-checkpoints": "checkpoints",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metaexamples", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="STAGE")
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"metaexamples.commands.{module}")
        p = sub.add_parser(name, help=mod.__doc__.splitlines()[0], description=mod.__doc__)
        mod.configure(p)
        p.set_defaults(run=mod.run)
    return parser


def describe_error(err: BaseException) -> str:
    """One line for the log: an OSError says which file (and what was done with it).

    `io.FileWriteError` already reads "writing PATH: reason"; a plain OSError that carries
    a file name becomes "PATH: reason" (Python's own text quotes it after the errno); one
    without a name (a write to an open file) keeps its text and the cause it came from.
    """
    from metaexamples.io import FileWriteError

    if isinstance(err, FileWriteError):
        return str(err)
    if isinstance(err, OSError) and err.filename is not None:
        names = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
        return f"{names}: {err.strerror or err}"
    cause = err.__cause__
    if cause is not None and str(cause) not in str(err):
        return f"{err} ({type(cause).__name__}: {cause})"
    return str(err)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    keep_freed_memory()
    try:
        args.run(args)
    except (ValueError, RuntimeError, OSError) as err:
        logging.getLogger("metaexamples").error("%s", describe_error(err))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
