"""Figures (matplotlib, Agg): the only part of frnn that draws.

One module per command: :mod:`.train` (a run's learning curves and gradient norms),
:mod:`.sweep` (accuracy, tuning, curves and norms against T), :mod:`.vanishing` (Jacobian
norms and their bound). Every function builds a :class:`matplotlib.figure.Figure` directly
(no pyplot: no global figure registry, no display), and :func:`save_png` renders it with the
Agg canvas and writes it atomically, so an interrupted command never leaves half a PNG.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np

_backend = os.environ.get("MPLBACKEND")
if _backend is not None and "matplotlib" not in sys.modules:
    # matplotlib validates $MPLBACKEND at import and fails on a name it does not know.
    # frnn draws on Agg canvases only, so import with Agg and then hand a valid choice back
    # to matplotlib for whoever else uses it in this process.
    os.environ["MPLBACKEND"] = "agg"
    try:
        import matplotlib
    finally:
        os.environ["MPLBACKEND"] = _backend
    try:
        matplotlib.rcParams["backend"] = _backend
    except ValueError:
        pass
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from frnn_cli.runs import atomic_write_bytes


def save_png(fig: Figure, path: str | Path, dpi: int = 110, tight: bool = False) -> Path:
    """Render ``fig`` with the Agg canvas and write it to ``path`` atomically as PNG.

    The figure is cleared afterwards so its memory is released at once.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    fig.clf()
    return atomic_write_bytes(path, buf.getvalue())


def positive(v: np.ndarray) -> np.ndarray:
    """Values for a log axis: NaN where the value is not > 0 (the line breaks there)."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v > 0, v, np.nan)
