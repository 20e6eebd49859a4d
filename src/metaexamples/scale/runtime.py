"""Process-wide CPU settings every torch stage applies before it starts."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the kernel.

    A training step on CPU allocates and frees the (tokens x vocabulary) logits, hundreds
    of MB; by default glibc serves each such block with a fresh mmap, so every step pays
    page faults for it again. Measured on the default config (2 cores): one training job
    47 s -> 27 s, kernel time 38 s -> 4 s. Returns False where this is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    log.debug("glibc keeps freed memory: %s", ok)
    return ok


def set_threads(threads: int | None) -> None:
    """Torch CPU threads for this process (None: torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
