"""List, and with --remove delete, stale temporary checkpoints (``<key>/.step-N.tmp`` and deeper).

A checkpoint is written to ``CHECKPOINT_ROOT/<run key>/.step-N.tmp`` and renamed to
``step-N``; a save that was killed or hit a full disk leaves the temporary behind. A
training run removes those of its own run key when it starts, so only temporaries under
keys that never train again (the settings or inputs changed) stay; this lists them with
their sizes. Temporaries modified within --min-age minutes are left alone: a running job
may be writing them.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint-root",
        type=Path,
        default=Path("checkpoints"),
        help="the trainers' --checkpoint-root (default: checkpoints)",
    )
    parser.add_argument(
        "--min-age",
        type=float,
        default=60.0,
        help="minutes since the last write before a temporary counts as stale (default: 60)",
    )
    parser.add_argument("--remove", action="store_true", help="delete what is listed")


def run(args: argparse.Namespace) -> None:
    from metaexamples.training.checkpoints import directory_bytes, stale_temporaries

    if args.min_age < 0:
        raise ValueError(f"--min-age: {args.min_age} must be >= 0 minutes")
    stale = stale_temporaries(args.checkpoint_root, min_age_s=args.min_age * 60)
    total = 0
    for path in stale:
        size = directory_bytes(path)
        total += size
        if args.remove:
            shutil.rmtree(path)
            log.info("removed %s (%.1f MB)", path, size / 1e6)
        else:
            log.info("stale %s (%.1f MB)", path, size / 1e6)
    verb = "removed" if args.remove else "found (rerun with --remove to delete them)"
    log.info(
        "%d stale temporary checkpoint(s) under %s, %.1f MB, %s",
        len(stale),
        args.checkpoint_root,
        total / 1e6,
        verb if stale else "nothing to do",
    )
