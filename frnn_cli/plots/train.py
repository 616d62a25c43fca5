"""Figures of one training run: learning curves and gradient norms against the step.

Input is plain data: a sequence of evaluation records, each a mapping with the columns of
``metrics.csv`` (:data:`frnn_cli.train.METRICS_COLUMNS`), as :func:`frnn_cli.runs.read_metrics`
returns them or ``EvalRecord.as_dict()`` gives them; NaN marks a missing value (there is
no training loss or gradient at step 0) and is left out of the curves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from frnn_cli.plots import positive as _positive
from frnn_cli.plots import save_png

#: Chance level of the task's loss: the cross-entropy of always answering 0.5, ln 2 nats.
CHANCE_LOSS = math.log(2.0)
DPI = 120


def _column(history: Sequence[Mapping[str, float]], name: str) -> np.ndarray:
    return np.array([float(r[name]) for r in history], dtype=np.float64)


def _two_panels(title: str) -> tuple[Figure, object, object]:
    """A figure with two stacked panels sharing the step axis (fixed margins: faster than a layout engine)."""
    fig = Figure(figsize=(8, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    fig.subplots_adjust(left=0.125, right=0.975, top=0.935, bottom=0.085, hspace=0.08)
    fig.suptitle(title, fontsize=10)
    return fig, top, bottom


def _save(fig: Figure, path: str | Path) -> Path:
    return save_png(fig, path, dpi=DPI)


def _loss_scale(ax, values: np.ndarray) -> None:
    """Log scale when the losses span more than a factor 5 (a run that learns), else linear
    (a run that stays at chance: a log axis over 0.6930..0.6933 has unreadable tick labels)."""
    v = values[np.isfinite(values) & (values > 0)]
    if v.size and v.max() / v.min() > 5:
        ax.set_yscale("log")
    else:
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)


def learning_curves_figure(
    history: Sequence[Mapping[str, float]],
    title: str,
    best_step: int | None = None,
    test_accuracy: float | None = None,
    verdict: str | None = None,
    x_label: str = "training step (parameter updates)",
    best_label: str | None = None,
) -> Figure:
    """The figure of :func:`plot_learning_curves`, not yet drawn to a file (same parameters but ``path``).

    The accuracy axis starts at 0.35, or lower when a value is lower (a diverged run's 0.0).
    """
    step = _column(history, "step")
    fig, ax_loss, ax_acc = _two_panels(f"Learning curves: {title}")

    ax_loss.plot(step, _positive(_column(history, "train_loss")), "o-", ms=3, color="tab:blue",
                 label="training loss (mean since previous evaluation)")
    ax_loss.plot(step, _positive(_column(history, "val_loss")), "s-", ms=3, color="tab:orange",
                 label="validation loss")
    ax_loss.axhline(CHANCE_LOSS, color="gray", ls="--", lw=1, label=f"chance: ln 2 = {CHANCE_LOSS:.3f}")
    _loss_scale(ax_loss, np.concatenate([_column(history, "train_loss"), _column(history, "val_loss"), [CHANCE_LOSS]]))
    ax_loss.set_ylabel("cross-entropy loss (nats per sequence)")
    ax_loss.grid(True, which="both", alpha=0.3)
    ax_loss.legend(fontsize=8, loc="best")

    acc = _column(history, "val_acc")
    ax_acc.plot(step, acc, "s-", ms=3, color="tab:orange", label="validation accuracy")
    ax_acc.axhline(0.5, color="gray", ls="--", lw=1, label="chance: 0.5")
    if best_step is not None:
        for ax in (ax_loss, ax_acc):
            ax.axvline(best_step, color="tab:green", ls=":", lw=1.5)
        ax_acc.plot([], [], color="tab:green", ls=":", label=best_label or f"best validation checkpoint (step {best_step})")
        if test_accuracy is not None:
            label = f"test accuracy of that checkpoint: {test_accuracy:.3f}"
            if verdict:
                label += f"\n({verdict})"
            ax_acc.plot([best_step], [test_accuracy], "*", ms=14, color="tab:green", label=label)
    # From 0.35 normally, but lower when a value is lower: a diverged run's accuracy of 0.0
    # must be drawn, not clipped off the chart.
    shown = [v for v in [*acc, test_accuracy] if v is not None and v == v]
    ax_acc.set_ylim(min([0.35, *(v - 0.05 for v in shown)]), 1.05)
    ax_acc.set_ylabel("accuracy (fraction correct)")
    ax_acc.set_xlabel(x_label)
    ax_acc.grid(True, alpha=0.3)
    ax_acc.legend(fontsize=8, loc="best")
    return fig


def plot_learning_curves(
    history: Sequence[Mapping[str, float]],
    path: str | Path,
    title: str,
    best_step: int | None = None,
    test_accuracy: float | None = None,
    verdict: str | None = None,
    x_label: str = "training step (parameter updates)",
    best_label: str | None = None,
) -> Path:
    """Loss and accuracy against training step, with the chance levels: ``learning_curves.png``.

    Top panel: training loss (mean over each evaluation interval) and validation loss, in
    nats per sequence, log scale, with the chance loss ln 2. Bottom panel: validation
    accuracy with the chance line 0.5, the best checkpoint's step, and its test accuracy.

    Parameters
    ----------
    history : sequence of mappings with "step", "train_loss", "val_loss", "val_acc"
    path : str or Path
        PNG file to write (its folder must exist).
    title : str
        The run's setting, e.g. ``frnn_cli.train.describe(cfg)``.
    best_step : int, optional
        Step of the best validation checkpoint (drawn as a vertical line).
    test_accuracy : float, optional
        The best checkpoint's test accuracy (drawn as a star at ``best_step``).
    verdict : str, optional
        E.g. "better than chance at alpha=0.01" (shown in the legend).
    x_label, best_label : str, optional
        The x axis's name and the best line's legend entry (random guessing: "trials drawn",
        "network tested (trial 34)"); default: training steps and the best checkpoint.

    Returns
    -------
    Path of the written file.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    fig = learning_curves_figure(history, title, best_step, test_accuracy, verdict, x_label, best_label)
    return _save(fig, path)


def plot_gradient_norms(
    history: Sequence[Mapping[str, float]],
    path: str | Path,
    title: str,
    T: int,
    x_label: str = "training step (parameter updates)",
) -> Path:
    """Gradient norms, ||R||_2 and the Jacobian norm against training step: ``gradient_norms.png``.

    Top panel: the mean Euclidean norm of each parameter's training gradient
    ||dL/dW||, ||dL/dR||, ||dL/dV|| over each evaluation interval. Bottom panel: the
    spectral norm ||R||_2, the measured ||da(T)/da(1)||_2 (median over validation
    sequences) and its bound ||R||_2^(T-1) (Bengio et al. 1994; Pascanu et al. 2013), with
    the line 1 that separates vanishing from exploding. Both panels log scale.

    Parameters
    ----------
    history : sequence of mappings with "step", "grad_norm_W", "grad_norm_R",
        "grad_norm_V", "R_spectral_norm", "jacobian_norm"
    path : str or Path
        PNG file to write.
    title : str
        The run's setting.
    T : int
        Sequence length (for the bound's exponent).
    x_label : str, optional
        The x axis's name (random guessing: "trials drawn").

    Returns
    -------
    Path of the written file.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    step = _column(history, "step")
    fig, ax_g, ax_j = _two_panels(f"Gradient norms: {title}")

    # At small weights ||dL/dW|| and ||dL/dV|| (and sometimes ||dL/dR||) are almost equal, so
    # each series has its own shape, from wide and pale at the back to thin at the front:
    # V a wide pale band, R dashed with large open squares, W a thin solid line with dots on
    # top. Any two that coincide still show both (a band or open squares around the line).
    for name, colour, style, shape in (
        ("V", "tab:purple", dict(ls="-", lw=7, alpha=0.35, solid_capstyle="round", zorder=2), "wide pale band"),
        ("R", "tab:red", dict(ls="--", lw=1.2, marker="s", ms=6, mfc="none", mew=1.2, zorder=3), "dashed, open squares"),
        ("W", "tab:blue", dict(ls="-", lw=1.2, marker="o", ms=2.5, zorder=4), "thin line, dots"),
    ):
        ax_g.plot(step, _positive(_column(history, f"grad_norm_{name}")), color=colour, **style,
                  label=f"||dL/d{name}|| ({shape})")
    ax_g.set_yscale("log")
    ax_g.set_ylabel("training gradient norm\n(Frobenius, mean since the last evaluation)")
    ax_g.grid(True, which="both", alpha=0.3)
    ax_g.legend(fontsize=8, loc="best", framealpha=0.6)

    r_norm = _column(history, "R_spectral_norm")
    with np.errstate(over="ignore"):
        bound = r_norm ** (T - 1)
    ax_j.plot(step, _positive(bound), "-", lw=5, color="tab:green", alpha=0.25,
              label=f"bound on it: ||R||_2^(T-1) = ||R||_2^{T - 1}")
    ax_j.plot(step, _positive(_column(history, "jacobian_norm")), "s-", ms=3, color="tab:green",
              label=f"||da(T)/da(1)||_2, T={T} (median over validation sequences)")
    ax_j.plot(step, _positive(r_norm), "o-", ms=3, color="tab:red", label="||R||_2 (largest singular value of R)")
    ax_j.axhline(1.0, color="gray", ls="--", lw=1, label="1 (below: the gradient path vanishes)")
    ax_j.set_yscale("log")
    ax_j.set_ylabel("norm (dimensionless)")
    ax_j.set_xlabel(x_label)
    ax_j.grid(True, which="both", alpha=0.3)
    ax_j.legend(fontsize=8, loc="best", framealpha=0.6)
    return _save(fig, path)
