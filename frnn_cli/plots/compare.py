"""Figures of ``frnn compare``: accuracy against T per recipe, the longest T per recipe, and why.

Each function takes the recipe names (in the comparison's order) and each recipe's sweep
summary (:func:`frnn_cli.experiment.sweep.summarize`), and writes one PNG. T is drawn on a log
axis (the default grid runs 1, 2, 3, 4, 5, 10, 20, 50, 100). A skipped T (the recipe failed at
two T before it) is drawn as a grey cross at the bottom of the panel, never as a failure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import ScaledTranslation

from frnn_cli.experiment.verdict import min_correct_for_significance
from frnn_cli.plots import positive, save_png


def _colours(names: list[str]) -> dict[str, Any]:
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">")
_LINES = ("-", "--", "-.", ":")


def _styles(names: list[str]) -> dict[str, dict[str, Any]]:
    """Per recipe: colour, marker, line style, and a small multiplicative offset of T.

    Recipes that choose the same jobs give identical curves (the reference and large_lr at
    large T); the offset (a few per cent of T on the log axis) and distinct markers keep the
    lower one visible.
    """
    colours = _colours(names)
    n = len(names)
    return {
        name: {"color": colours[name], "marker": _MARKERS[i % len(_MARKERS)], "ls": _LINES[i % len(_LINES)],
               "shift": 1.0 + 0.035 * (i - (n - 1) / 2)}
        for i, name in enumerate(names)
    }


def _median(values: list[float]) -> float:
    values = [v for v in values if v is not None and v == v]
    return float(np.median(values)) if values else math.nan


def _save(fig: Figure, path: Path) -> Path:
    return save_png(fig, path, dpi=110, tight=True)


def accuracy_vs_T(names: list[str], sweeps: dict[str, dict[str, Any]], path: Path) -> Path:
    """Mean test accuracy of the chosen setting against T, one line per recipe, with chance and
    the significance threshold; filled markers where T was learned (a ring where only by a
    latch), grey crosses where it was skipped.

    Returns
    -------
    Path
    """
    styles = _styles(names)
    fig = Figure(figsize=(10, 5.2))
    ax = fig.subplots()
    n_test = alpha = None
    skipped_label = "skipped (failed at two T before)"
    for name in names:
        s, st = sweeps[name], styles[name]
        n_test, alpha = s.get("n_test"), s.get("alpha")
        run = [r for r in s["rows"] if "test_acc" in r]
        xs = np.array([r["T"] for r in run], dtype=float) * st["shift"]
        ax.plot(xs, [r["test_acc_mean"] for r in run], ls=st["ls"], color=st["color"], lw=1.4, label=name)
        for x, r in zip(xs, run):
            if r["learned"]:
                grad = r["gradient"]["learned"]
                ax.plot([x], [r["test_acc_mean"]], st["marker"], ms=7, color=st["color"],
                        mfc=st["color"] if grad else "white", mew=1.6)
        skipped = [r["T"] * st["shift"] for r in s["rows"] if r.get("status") == "skipped"]
        if skipped:
            ax.plot(skipped, [0.0] * len(skipped), "x", color=st["color"], ms=6, mew=1.5, clip_on=False,
                    transform=ax.get_xaxis_transform(), label=skipped_label)
            skipped_label = None
    ax.axhline(0.5, color="k", ls="--", lw=1, label="chance (0.5)")
    if n_test and alpha:
        thr = min_correct_for_significance(int(n_test), float(alpha)) / n_test
        ax.axhline(thr, color="tab:red", ls=":", lw=1.2, label=f"significance ({thr:.3f}: p < {alpha:g}, n={n_test})")
    ax.plot([], [], "o", color="0.3", ms=7, label="learned by gradient descent at some tuned setting (filled marker)")
    ax.plot([], [], "o", color="0.3", mfc="white", ms=7, mew=1.6,
            label="learned only otherwise: a latch, the read-out alone, guessing (open marker)")
    ax.set_xscale("log")
    Ts = sorted({r["T"] for s in sweeps.values() for r in s["rows"]})
    ax.set_xticks(Ts, [str(t) for t in Ts])
    ax.minorticks_off()
    ax.set_ylim(0.35, 1.03)
    ax.set_xlabel("sequence length T (log scale)")
    ax.set_ylabel("mean test accuracy of the chosen setting")
    ax.set_title("Which remedy carries the bit how far: test accuracy against T, per recipe\n"
                 "(recipes at the same point are drawn a few per cent apart in T)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(fig, path)


def max_T(names: list[str], sweeps: dict[str, dict[str, Any]], path: Path) -> Path:
    """The longest T learned per recipe as horizontal bars, sorted: the full bar any way, the
    inner bar by gradient descent in its stable regime.

    Returns
    -------
    Path
    """
    colours = _colours(names)

    def key(name: str) -> tuple:
        s = sweeps[name]
        return (s["max_T"] or 0, s.get("max_T_gradient") or 0)

    order = sorted(names, key=key)
    fig = Figure(figsize=(8, 0.45 * len(order) + 1.8))
    ax = fig.subplots()
    ys = np.arange(len(order))
    full = [sweeps[n]["max_T"] or 0 for n in order]
    grad = [sweeps[n].get("max_T_gradient") or 0 for n in order]
    words = {0: "none"}
    ax.barh(ys, full, color=[colours[n] for n in order], alpha=0.35, edgecolor="0.3")
    ax.barh(ys, grad, height=0.4, color=[colours[n] for n in order], edgecolor="k")
    legend = [Patch(facecolor="0.6", alpha=0.35, edgecolor="0.3", label="longest T learned, any way (wide bar)"),
              Patch(facecolor="0.4", edgecolor="k", label="... by gradient descent in its stable regime (narrow bar)")]
    for y, f, g in zip(ys, full, grad):
        text = f"{words.get(f, f)}" if f == g else f"{words.get(f, f)} (gradient: {words.get(g, g)})"
        ax.text(max(f, 1) * 1.08, y, text, va="center", fontsize=8)
    ax.set_yticks(ys, order)
    ax.set_xscale("log")
    Ts = sorted({r["T"] for s in sweeps.values() for r in s["rows"]})
    ax.set_xticks(Ts, [str(t) for t in Ts])
    ax.minorticks_off()
    ax.set_xlim(0.8, max(Ts) * 2.5)
    ax.set_xlabel("longest T learned better than chance (log scale; 0 = none, drawn as no bar)")
    ax.set_title("The longest sequence length each recipe learns", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    # Below the x label at a fixed distance (in inches), whatever the figure's height.
    below = ax.transAxes + ScaledTranslation(0, -0.5, fig.dpi_scale_trans)
    ax.legend(handles=legend, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, ncol=2,
              frameon=False)
    return _save(fig, path)


def why(names: list[str], sweeps: dict[str, dict[str, Any]], path: Path) -> Path:
    """Why each row reads as it does: ||R||_2 at the best checkpoint (left) and the measured
    ||da(T)/da(1)||_2 there (right) against T, one line per recipe (medians over the chosen
    setting's seeds). The right panel's precision line (the runs' dtype) marks where the error from
    step 1 can no longer take part in the gradient; a value that underflowed to 0 is drawn at
    1e-300 with a down triangle.

    Returns
    -------
    Path
    """
    styles = _styles(names)
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for name in names:
        st = styles[name]
        run = [r for r in sweeps[name]["rows"] if "R_best" in r]
        xs = np.array([r["T"] for r in run], dtype=float) * st["shift"]
        R = np.array([_median(r["R_best"]) for r in run], dtype=float)
        J = np.array([_median(r["jacobian_best"]) for r in run], dtype=float)
        line = dict(color=st["color"], marker=st["marker"], ls=st["ls"], ms=5, label=name)
        ax1.plot(xs, positive(R), **line)
        ax2.plot(xs, positive(J), **line)
        zero = J == 0
        if zero.any():
            ax2.plot(xs[zero], np.full(int(zero.sum()), 1e-300), "v", color=st["color"], ms=8, mec="k")
    ax1.axhline(1.0, color="k", ls=":", lw=1, label="||R||_2 = 1")
    for dtype in sorted({s.get("dtype", "float64") for s in sweeps.values()}):
        eps = float(np.finfo(dtype).eps)
        ax2.axhline(eps, color="tab:red", ls="--" if dtype == "float32" else ":", lw=0.9,
                    label=f"{dtype} precision ({eps:.2g})")
    ax2.plot([], [], "v", color="0.4", mec="k", label="exactly 0 (underflow), drawn at 1e-300")
    for ax, label, title in (
        (ax1, "||R||_2 at the best checkpoint (log)", "The recurrent weights the recipe ends with"),
        (ax2, "||da(T)/da(1)||_2 at the best checkpoint (log)", "How much of a(1) still reaches a(T)"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        Ts = sorted({r["T"] for s in sweeps.values() for r in s["rows"]})
        ax.set_xticks(Ts, [str(t) for t in Ts])
        ax.minorticks_off()
        ax.set_xlabel("sequence length T (log scale)")
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.suptitle("Why: the vanishing gradient behind each row (medians over the chosen setting's seeds)", fontsize=10)
    return _save(fig, path)
