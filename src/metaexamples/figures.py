"""Writing a figure, for both families: PNG, written atomically, then closed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only

from matplotlib.figure import Figure  # noqa: E402

from metaexamples.io import atomic_path  # noqa: E402

log = logging.getLogger(__name__)
DPI = 120


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write `fig` as PNG to `path` atomically and release it (pyplot's or not)."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    log.info("wrote %s", path)
    return Path(path)
