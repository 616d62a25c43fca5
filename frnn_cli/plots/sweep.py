"""Figures of ``frnn sweep``: accuracy, tuning heat map, learning curves and norms against T.

Each function takes plain data (the sweep summary and per-T curves) and writes one PNG with
:func:`frnn_cli.plots.save_png`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import offset_copy

from frnn_cli.experiment.verdict import min_correct_for_significance
from frnn_cli.plots import positive, save_png
from frnn_cli.plots.train import CHANCE_LOSS as LN2



def _save(fig: Figure, path: Path) -> Path:
    return save_png(fig, path, dpi=110, tight=True)


def _subtitle(summary: dict[str, Any], base: dict[str, Any]) -> str:
    return (
        f"hidden={base['hidden']}, init={base['init']}"
        + (f" ±{base['init_scale']:g}" if base["init"] == "uniform" else "")
        + f", optimizer={base['optimizer']}, {summary['seeds']} seeds, test n={summary['n_test']}, alpha={summary['alpha']:g}"
    )


def accuracy_vs_T(summary: dict[str, Any], base: dict[str, Any], path: Path) -> Path:
    """Test accuracy per seed (points) and mean (line) against the axis, with chance,
    the significance threshold of the one-sided binomial test, and ``max_T`` marked.

    Parameters
    ----------
    summary : dict from :func:`frnn_cli.sweep.summarize`
    base : dict, the sweep's base config (``config.to_dict``)
    path : Path of the PNG

    Returns
    -------
    Path
    """
    axis = summary["axis"]
    rows = [r for r in summary["rows"] if "test_acc" in r]
    fig = Figure(figsize=(10, 4.8))
    ax = fig.subplots()
    xs = np.array([r[axis] for r in rows], dtype=float)
    seeds = summary["seeds"]
    for s in range(seeds):
        offset = (s - (seeds - 1) / 2) * 0.12
        ys = np.array([r["test_acc"][s] if s < len(r["test_acc"]) else np.nan for r in rows], dtype=float)
        ax.scatter(xs + offset, ys, s=18, alpha=0.7, color="tab:blue", label="test accuracy, one seed" if s == 0 else None)
    means = np.array([r["test_acc_mean"] for r in rows], dtype=float)
    ax.plot(xs, means, "-", color="tab:blue", lw=2, label="mean over seeds")
    learned = [r for r in rows if r["learned"]]
    if learned:
        ax.scatter([r[axis] for r in learned], [r["test_acc_mean"] for r in learned], marker="o", s=80,
                   facecolors="none", edgecolors="tab:green", lw=1.5, label="learned (majority of seeds beat chance)")
    ax.axhline(0.5, color="k", ls="--", lw=1, label="chance (0.5)")
    n, alpha = summary["n_test"], summary["alpha"]
    thr = min_correct_for_significance(n, alpha) / n
    ax.axhline(thr, color="tab:red", ls=":", lw=1.2, label=f"significance threshold ({thr:.3f}: p < {alpha:g} on n={n})")
    if summary["max_T"] is not None:
        ax.axvline(summary["max_T"], color="tab:green", ls="-.", lw=1.2, label=f"max {axis} = {summary['max_T']}")
    ax.set_xlabel(f"sequence length {axis}" if axis == "T" else axis)
    ax.set_ylabel("test accuracy (fraction correct)")
    ax.set_ylim(0.35, 1.03)
    if axis == "T":
        ax.set_xticks(xs)
    ax.set_title(f"Longest {axis} learned better than chance: {summary['max_T']}\n{_subtitle(summary, base)}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(fig, path)


def tuning_heatmap(summary: dict[str, Any], base: dict[str, Any], path: Path, key: str = "lr") -> Path:
    """Mean validation accuracy (over seeds) for every axis value x value of ``key``.

    The chosen cell per axis value carries a star and its accuracy in bold (a star per column
    stays readable when neighbouring columns choose the same value, where outlines merge into
    a grid). Cells with a diverged seed read "div"; the subtitle explains "div" only when
    such a cell exists.

    Parameters
    ----------
    summary : dict from :func:`frnn_cli.sweep.summarize`
    base : dict, the sweep's base config (``config.to_dict``)
    path : Path of the PNG
    key : str, the tuned key on the vertical axis

    Returns
    -------
    Path
    """
    axis = summary["axis"]
    settings = summary["settings"]
    xs = sorted({s["setting"][axis] for s in settings})
    ys = sorted({s["setting"].get(key) for s in settings if s["setting"].get(key) is not None})
    grid = np.full((len(ys), len(xs)), np.nan)
    div = np.zeros_like(grid, dtype=bool)
    for s in settings:
        if s["setting"].get(key) is None:
            continue
        i, j = ys.index(s["setting"][key]), xs.index(s["setting"][axis])
        # Several settings per cell when more keys are swept: show the best of them.
        if np.isnan(grid[i, j]) or s["val_acc"] > grid[i, j]:
            grid[i, j] = s["val_acc"]
        div[i, j] |= s["n_diverged"] > 0
    chosen = np.zeros_like(grid, dtype=bool)
    for r in summary["rows"]:
        if key in r and r[axis] in xs and r[key] in ys:
            chosen[ys.index(r[key]), xs.index(r[axis])] = True
    fig = Figure(figsize=(max(6, 0.45 * len(xs) + 2), max(3, 0.5 * len(ys) + 1.6)))
    ax = fig.subplots()
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=0.5, vmax=1.0)
    star_at = offset_copy(ax.transData, fig=fig, y=5.5, units="points")
    text_below_star = offset_copy(ax.transData, fig=fig, y=-6.5, units="points")
    for i in range(len(ys)):
        for j in range(len(xs)):
            text = "div" if div[i, j] else ("" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}")
            colour = "w" if div[i, j] or not grid[i, j] >= 0.8 else "k"
            if chosen[i, j]:
                # White star with a black edge: visible on both ends of viridis.
                ax.plot([j], [i], marker="*", ms=13, mfc="white", mec="black", mew=1.0, transform=star_at)
                ax.text(j, i, text, ha="center", va="center", fontsize=8, fontweight="bold", color=colour,
                        transform=text_below_star)
            else:
                ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color=colour)
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(-0.5, len(ys) - 0.5)
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_yticks(range(len(ys)), [f"{y:g}" if isinstance(y, float) else str(y) for y in ys])
    ax.set_xlabel(f"sequence length {axis}" if axis == "T" else axis)
    ax.set_ylabel("learning rate" if key == "lr" else key)
    fig.colorbar(im, ax=ax, label="validation accuracy (mean over seeds)")
    note = f"\u2605 bold: the chosen {key} at each {axis}"
    if div.any():
        note += "; div: a seed diverged"
    ax.set_title(f"Tuning: mean validation accuracy per {axis} and {key}\n{note}", fontsize=9)
    return _save(fig, path)


def learning_curves(summary: dict[str, Any], base: dict[str, Any], curves: dict[Any, list[tuple[np.ndarray, np.ndarray]]],
                    path: Path) -> Path:
    """Validation loss against update step for the chosen setting at every axis value,
    one discrete colour per axis value; ln 2 (the loss of always answering 0.5) marked.

    The chance line is thin and drawn behind the curves, so a run that stays at chance
    (loss ln 2) is visible on top of it. A loss of exactly 0 is marked by a triangle on the
    bottom edge. The step axis ends at the last step drawn.

    Parameters
    ----------
    summary : dict from :func:`frnn_cli.sweep.summarize`
    base : dict, the sweep's base config (``config.to_dict``)
    curves : dict axis value -> list of (steps (N,), val_loss (N,)) arrays, one per seed
    path : Path of the PNG

    Returns
    -------
    Path
    """
    axis = summary["axis"]
    keys = sorted(curves)
    fig = Figure(figsize=(8, 4.8))
    ax = fig.subplots()
    # One colour per axis value (the values are discrete, e.g. integer T): colour by rank,
    # with a colour bar of len(keys) bands ticked with the values themselves.
    n = max(len(keys), 1)
    cmap = matplotlib.colormaps["viridis"].resampled(n)
    norm = BoundaryNorm(np.arange(n + 1) - 0.5, n)
    last_step = None
    zero_label = "loss exactly 0 (below the log axis)"
    for rank, k in enumerate(keys):
        for steps, loss in curves[k]:
            steps, loss = np.asarray(steps, dtype=float), np.asarray(loss, dtype=float)
            # A loss of exactly 0 (a saturated, perfect network) has no place on a log axis:
            # leave it out of the line and mark it on the bottom edge instead.
            ax.plot(steps, positive(loss), color=cmap(norm(rank)), lw=1.2, alpha=0.8, marker=".", ms=3, zorder=3,
                    clip_on=False)  # the limits hold every point: no half-clipped end points
            zero = loss == 0
            if zero.any():
                ax.plot(steps[zero], np.zeros(int(zero.sum())), ls="none", marker="v", ms=6, color=cmap(norm(rank)),
                        mec="k", mew=0.5, transform=ax.get_xaxis_transform(), clip_on=False, zorder=4,
                        label=zero_label)
                zero_label = None
            finite = steps[np.isfinite(steps)]
            if finite.size:
                last_step = finite.max() if last_step is None else max(last_step, finite.max())
    ax.axhline(LN2, color="0.45", ls="--", lw=0.8, zorder=1.6, label="ln 2 = 0.693 (chance: predict 0.5)")
    ax.set_yscale("log")
    if last_step is not None and last_step > 0:
        ax.set_xlim(0, last_step)
    ax.set_xlabel("update step")
    ax.set_ylabel("validation loss (nats per sequence, log scale)")
    sm = ScalarMappable(norm=norm, cmap=cmap)
    cbar = fig.colorbar(sm, ax=ax, label=f"sequence length {axis}" if axis == "T" else axis)
    every = max(1, math.ceil(len(keys) / 15))
    ticks = list(range(0, len(keys), every))
    cbar.set_ticks(ticks, labels=[f"{keys[t]:g}" if isinstance(keys[t], float) else str(keys[t]) for t in ticks])
    cbar.minorticks_off()
    ax.set_title(f"Validation loss of the chosen setting at each {axis} (one line per seed)\n{_subtitle(summary, base)}",
                 fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    return _save(fig, path)


def gradient_norms_vs_T(summary: dict[str, Any], base: dict[str, Any], norms: dict[Any, dict[str, float]],
                        path: Path) -> Path:
    """Gradient-path diagnostics against the axis (medians over the chosen setting's seeds).

    Left: the norm of dL/dW during the first evaluation interval (how much error reaches
    the input weights, which see the class at t = 1) and ||R||_2 at the best checkpoint.
    Right: ||da(T)/da(1)||_2 at initialisation and at the best checkpoint, with the bound
    ||R||_2^(T-1) at initialisation.

    Parameters
    ----------
    norms : dict axis value -> {"grad_W_first", "R_init", "R_best", "jac_init", "jac_best"}

    Returns
    -------
    Path
    """
    axis = summary["axis"]
    keys = sorted(norms)
    xs = np.array(keys, dtype=float)

    def col(name: str) -> np.ndarray:
        return np.array([norms[k].get(name, np.nan) for k in keys], dtype=float)

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.semilogy(xs, col("grad_W_first"), "o-", label="||dL/dW||, first steps of training")
    ax1.semilogy(xs, col("R_best"), "s-", label="||R||_2 at the best checkpoint")
    ax1.semilogy(xs, col("R_init"), "k:", label="||R||_2 at initialisation")
    ax1.set_xlabel(f"sequence length {axis}" if axis == "T" else axis)
    ax1.set_ylabel("norm (log scale)")
    ax1.set_title("Error reaching W, and the recurrent weights", fontsize=10)
    if axis == "T":
        ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.grid(alpha=0.3, which="both")
    ax1.legend(fontsize=8)
    ax2.semilogy(xs, col("jac_init"), "o-", label="||da(T)/da(1)||_2 at initialisation")
    ax2.semilogy(xs, col("jac_best"), "s-", label="||da(T)/da(1)||_2 at the best checkpoint")
    if axis == "T":
        ax2.semilogy(xs, col("R_init") ** (xs - 1), "k:", label="bound ||R||_2^(T-1) at initialisation")
    ax2.set_xlabel(f"sequence length {axis}" if axis == "T" else axis)
    ax2.set_ylabel("||da(T)/da(1)||_2 (log scale)")
    ax2.set_title("How much of a(1) reaches a(T) (median over validation sequences)", fontsize=10)
    ax2.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=8)
    fig.suptitle(f"The vanishing gradient across the sweep (medians over seeds of the chosen setting)\n"
                 f"{_subtitle(summary, base)}", fontsize=10)
    return _save(fig, path)
