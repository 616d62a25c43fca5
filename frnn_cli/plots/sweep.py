"""Figures of ``frnn sweep``: accuracy, tuning heat map, learning curves and norms against the axis.

Each function takes plain data (the sweep summary, per-axis-value curves and norms) and writes
one PNG with :func:`frnn_cli.plots.save_png`. Axis values are drawn at evenly spaced positions
labelled with the values themselves, so nothing is ever drawn at a value that was not run
(T = 1, 2, 5, 10, 100 or init_scale = 0.01, 0.3, 1 read as plainly as T = 1..20).

Colours say how a learned run learned: green = by gradient descent in its stable regime,
orange = by a weight blow-up into a latch, blue = by the read-out alone (R frozen), cyan = by
random weight guessing; grey = not better than chance.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from frnn_cli.experiment.verdict import min_correct_for_significance
from frnn_cli.plots import positive, save_png

#: Colour of each learning mechanism (and of runs that did not learn).
HOW_COLOURS = {"gradient": "tab:green", "latch": "tab:orange", "readout": "tab:blue", "guess": "tab:cyan",
               "none": "0.55"}
HOW_LABELS = {
    "gradient": "learned by gradient (stable regime)",
    "latch": "learned by weight blow-up into a latch",
    "readout": "learned by the read-out alone (R frozen)",
    "guess": "learned by random weight guessing",
    "none": "not better than chance",
}
#: Values that are exactly 0 on a log axis (an underflowed Jacobian) are drawn at this floor.
LOG_FLOOR = 1e-300


def _save(fig: Figure, path: Path) -> Path:
    return save_png(fig, path, dpi=110, tight=True)


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _axis_label(axis: str) -> str:
    return "sequence length T" if axis == "T" else axis


def _extent(axis: str) -> str:
    """"longest" for a sequence length, "largest" for any other axis (an init scale is not long)."""
    return "longest" if axis == "T" else "largest"


def _subtitle(summary: dict[str, Any], base: dict[str, Any]) -> str:
    """The fixed part of the setting: hidden size, initialisation, optimizer, frozen weights,
    seeds, test size and alpha. A key the sweep varies (the axis or a tuned key) is left out:
    the base config's value of it was never run as such."""
    swept = {summary["axis"], *summary.get("tuned", [])}
    parts = [] if "hidden" in swept else [f"hidden={base['hidden']}"]
    if "init" not in swept:
        scale = "" if "init_scale" in swept else f" ±{base['init_scale']:g}"
        parts.append(f"init uniform{scale}" if base["init"] == "uniform" else f"init {base['init']}")
    if "optimizer" not in swept:
        parts.append(f"optimizer={base['optimizer']}")
    if "freeze" not in swept and base.get("freeze", "none") != "none":
        parts.append(f"{base['freeze']} frozen")
    parts += [f"{summary['seeds']} seeds", f"test n={summary['n_test']}", f"alpha={summary['alpha']:g}"]
    return ", ".join(parts)


def _positions(values: list[Any]) -> dict[Any, int]:
    return {v: i for i, v in enumerate(values)}


def _set_ticks(ax, values: list[Any]) -> None:
    every = max(1, math.ceil(len(values) / 25))
    ticks = list(range(0, len(values), every))
    ax.set_xticks(ticks, [_fmt(values[i]) for i in ticks])
    ax.set_xlim(-0.6, len(values) - 0.4)


def _edge_note(summary: dict[str, Any]) -> str | None:
    """'tuned value at the grid's edge at T = 4, 5: the optimum may lie outside', or None."""
    axis = summary["axis"]
    at = [e[axis] for e in summary.get("edges") or [] if any(k != axis and k != "steps" for k in e)]
    if not at:
        return None
    shown = ", ".join(_fmt(v) for v in at[:8]) + (", ..." if len(at) > 8 else "")
    return f"tuned value at the grid's edge at {axis} = {shown}: the optimum may lie outside the grid"


def _mark_unjudged(ax, summary: dict[str, Any], pos: dict[Any, int]) -> None:
    """Mark axis values without a verdict where their points would be: a grey cross at the
    bottom and the word "skipped" (frnn compare's rule) or "no job finished" above it, so an
    empty column never reads as a value that was run and not learned."""
    axis = summary["axis"]
    labelled: set[str] = set()
    for r in summary["rows"]:
        if "test_acc" in r:
            continue
        skipped = r.get("status") == "skipped"
        word = "skipped" if skipped else "no job finished"
        label = ("skipped: not run, frnn compare's rule (not learned at two T before)" if skipped
                 else "no job finished (failed or missing)")
        colour = "0.45" if skipped else "tab:red"
        ax.plot([pos[r[axis]]], [0.0], "x", color=colour, ms=9, mew=2, clip_on=False, zorder=5,
                transform=ax.get_xaxis_transform(), label=label if label not in labelled else None)
        labelled.add(label)
        ax.text(pos[r[axis]], 0.06, word, transform=ax.get_xaxis_transform(), rotation=90, ha="center", va="bottom",
                fontsize=8, color=colour)


def accuracy_vs_axis(summary: dict[str, Any], base: dict[str, Any], path: Path) -> Path:
    """Test accuracy per seed (points) and mean (line) against the axis, with chance, the
    significance threshold of the one-sided binomial test, and both answers marked: the
    longest T (for another axis: the largest value) learned, and the same by gradient descent.
    An axis value without a verdict is marked "skipped" (frnn compare's rule) or "no job
    finished" at the bottom of its column.

    Parameters
    ----------
    summary : dict from :func:`frnn_cli.experiment.sweep.summarize`
    base : dict, the sweep's base config (``config.to_dict``)
    path : Path of the PNG

    Returns
    -------
    Path
    """
    axis = summary["axis"]
    rows = [r for r in summary["rows"] if "test_acc" in r]
    values = [r[axis] for r in summary["rows"]]
    pos = _positions(values)
    fig = Figure(figsize=(10, 4.8))
    ax = fig.subplots()
    xs = np.array([pos[r[axis]] for r in rows], dtype=float)
    seeds = summary["seeds"]
    for s in range(seeds):
        offset = (s - (seeds - 1) / 2) * 0.12
        ys = np.array([r["test_acc"][s] if s < len(r["test_acc"]) else np.nan for r in rows], dtype=float)
        ax.scatter(xs + offset, ys, s=16, alpha=0.6, color="tab:blue", zorder=3,
                   label="test accuracy, one seed" if s == 0 else None)
    ax.plot(xs, [r["test_acc_mean"] for r in rows], "-", color="tab:blue", lw=1.5, zorder=2, label="mean over seeds")
    for how in ("gradient", "latch", "readout", "guess"):
        hit = [r for r in rows if r["learned"] and r.get("how", "gradient") == how]
        if hit:
            ax.scatter([pos[r[axis]] for r in hit], [r["test_acc_mean"] for r in hit], marker="o", s=90,
                       facecolors="none", edgecolors=HOW_COLOURS[how], lw=2, zorder=4,
                       label=f"chosen setting {HOW_LABELS[how]}")
    g_hit = [pos[r[axis]] for r in rows if r.get("gradient", {}).get("learned")]
    if g_hit:
        ax.scatter(g_hit, np.full(len(g_hit), 1.02), marker="v", s=28, color=HOW_COLOURS["gradient"], zorder=4,
                   clip_on=False, label="learned by gradient with some tuned setting")
    ax.axhline(0.5, color="k", ls="--", lw=1, label="chance (0.5)")
    n, alpha = summary["n_test"], summary["alpha"]
    thr = min_correct_for_significance(n, alpha) / n
    ax.axhline(thr, color="tab:red", ls=":", lw=1.2, label=f"significance threshold ({thr:.3f}: p < {alpha:g} on n={n})")
    best, g_best = summary["max_T"], summary.get("max_T_gradient")
    if best is not None:
        ax.axvline(pos[best], color="tab:purple", ls="-.", lw=1.2, label=f"{_extent(axis)} {axis} learned: {_fmt(best)}")
    if g_best is not None and g_best != best:
        ax.axvline(pos[g_best], color="tab:green", ls="--", lw=1.2, label=f"... by gradient: {_fmt(g_best)}")
    ax.set_xlabel(_axis_label(axis))
    ax.set_ylabel("test accuracy (fraction correct)")
    low = min([0.35, *(a - 0.05 for r in rows for a in r["test_acc"] if a == a)])
    ax.set_ylim(low, 1.04)
    _set_ticks(ax, values)
    _mark_unjudged(ax, summary, pos)
    head = f"{_extent(axis).capitalize()} {axis} learned better than chance: {_fmt(best) if best is not None else 'none'}"
    if g_best != best:
        head += f" (by gradient descent: {_fmt(g_best) if g_best is not None else 'none'})"
    ax.set_title(f"{head}\n{_subtitle(summary, base)}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    note = _edge_note(summary)
    if note:
        fig.text(0.01, -0.02, "\u26a0 " + note, fontsize=9, color="tab:red", ha="left", va="top")
    return _save(fig, path)


def tuning_heatmap(summary: dict[str, Any], base: dict[str, Any], path: Path, key: str = "lr") -> Path:
    """Mean validation accuracy (over seeds; a failed or diverged seed counts as chance) for
    every axis value x value of ``key``.

    A star marks the chosen cell, but only where the axis value was learned (at chance the
    choice is noise); a green ring marks the choice of the gradient-only answer where it
    differs and learned. Cells with a diverged seed carry "div"; a column that frnn compare's
    rule skipped says "skipped".

    Parameters
    ----------
    summary : dict from :func:`frnn_cli.experiment.sweep.summarize`
    base : dict, the sweep's base config (``config.to_dict``)
    path : Path of the PNG
    key : str, the tuned key on the vertical axis

    Returns
    -------
    Path
    """
    axis = summary["axis"]
    settings = summary["settings"]
    xs = [r[axis] for r in summary["rows"]]
    ys = sorted({s["setting"].get(key) for s in settings if s["setting"].get(key) is not None})
    grid = np.full((len(ys), len(xs)), np.nan)
    div = np.zeros_like(grid, dtype=bool)
    for s in settings:
        if s["setting"].get(key) is None or s["setting"][axis] not in xs:
            continue
        i, j = ys.index(s["setting"][key]), xs.index(s["setting"][axis])
        # Several settings per cell when more keys are swept: show the best of them.
        if np.isnan(grid[i, j]) or s["val_acc"] > grid[i, j]:
            grid[i, j] = s["val_acc"]
        div[i, j] |= s["n_diverged"] > 0
    fig = Figure(figsize=(max(6, 0.45 * len(xs) + 2), max(3, 0.5 * len(ys) + 1.8)))
    ax = fig.subplots()
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=0.5, vmax=1.0)
    for i in range(len(ys)):
        for j in range(len(xs)):
            text = "div" if div[i, j] else ("" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}")
            colour = "w" if div[i, j] or not grid[i, j] >= 0.8 else "k"
            ax.text(j, i - 0.22, text, ha="center", va="center", fontsize=6.5, color=colour)
    for j, r in enumerate(summary["rows"]):
        if r.get("status") == "skipped":  # frnn compare's rule: nothing ran in this column
            ax.text(j, (len(ys) - 1) / 2, "skipped", rotation=90, ha="center", va="center", fontsize=8, color="0.35")
    for r in summary["rows"]:
        g = r.get("gradient", {})
        if r.get("learned") and r.get(key) in ys:
            ax.plot([xs.index(r[axis])], [ys.index(r[key]) + 0.12], marker="*", ms=12, mfc="white", mec="black", mew=1.0)
        if g.get("learned") and g.get(key) in ys and g.get(key) != r.get(key):
            ax.plot([xs.index(r[axis])], [ys.index(g[key]) + 0.12], marker="o", ms=10, mfc="none",
                    mec=HOW_COLOURS["gradient"], mew=2.0)
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(-0.5, len(ys) - 0.5)
    ax.set_xticks(range(len(xs)), [_fmt(x) for x in xs])
    ax.set_yticks(range(len(ys)), [_fmt(y) for y in ys])
    ax.set_xlabel(_axis_label(axis))
    ax.set_ylabel("learning rate" if key == "lr" else key)
    fig.colorbar(im, ax=ax, label="validation accuracy (mean over seeds)")
    note = f"\u2605 the chosen {key} where {axis} was learned (none marked at chance)"
    if any(r.get("gradient", {}).get("learned") and r["gradient"].get(key) != r.get(key) for r in summary["rows"]):
        note += f"; \u25cb the {key} of the gradient-only answer"
    if div.any():
        note += "; div: a seed diverged (counts as chance)"
    ax.set_title(f"Tuning: mean validation accuracy per {axis} and {key}\n{note}", fontsize=9)
    return _save(fig, path)


def learning_curves(summary: dict[str, Any], base: dict[str, Any],
                    curves: dict[Any, list[tuple[np.ndarray, np.ndarray, str]]], path: Path) -> Path:
    """Validation accuracy against update step, one small panel per axis value, one line per
    seed of the chosen setting, coloured by how that seed learned (grey: not better than
    chance), with the chance line 0.5 in every panel.

    Parameters
    ----------
    summary : dict from :func:`frnn_cli.experiment.sweep.summarize`
    base : dict, the sweep's base config (``config.to_dict``)
    curves : dict axis value -> list of (steps (N,), val_acc (N,), mechanism) per seed
    path : Path of the PNG

    Returns
    -------
    Path
    """
    axis = summary["axis"]
    rows = {r[axis]: r for r in summary["rows"]}
    keys = [r[axis] for r in summary["rows"] if r[axis] in curves]
    if len(keys) > 40:  # keep panels readable: 40 evenly spread axis values
        keys = [keys[i] for i in np.linspace(0, len(keys) - 1, 40).round().astype(int)]
    n = max(len(keys), 1)
    ncols = min(n, 5)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(2.4 * ncols + 0.6, 1.9 * nrows + 1.2))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)).ravel()
    tuned = summary["tuned"]
    seen: set[str] = set()
    lows = [float(np.nanmin(acc)) for k in keys for _, acc, _ in curves[k] if np.isfinite(acc).any()]
    low = min([0.35, *(v - 0.05 for v in lows)])
    for ax, k in zip(axes, keys):
        for steps, acc, how in curves[k]:
            ax.plot(steps, acc, color=HOW_COLOURS.get(how, "0.55"), lw=1.1, alpha=0.85,
                    label=HOW_LABELS.get(how) if how not in seen else None)
            seen.add(how)
        ax.axhline(0.5, color="k", ls="--", lw=0.7)
        r = rows[k]
        chosen = ", ".join(f"{t}={_fmt(r[t])}" for t in tuned if t in r)
        beat = f"{sum(r['better_than_chance'])}/{len(r['better_than_chance'])}" if "better_than_chance" in r else "–"
        ax.set_title(f"{axis}={_fmt(k)}  {chosen}  ({beat} > chance)", fontsize=7.5)
        ax.set_ylim(low, 1.05)
        ax.grid(alpha=0.3)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel("val. accuracy", fontsize=8)
    for ax in axes[max(0, len(keys) - ncols):len(keys)]:
        ax.set_xlabel("update step", fontsize=8)
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles + [axes[0].lines[-1]] if keys else handles, labels + ["chance (0.5)"] if keys else labels,
               loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, 1.0 - 1.0 / (1.9 * nrows + 1.2)))
    fig.suptitle(f"Validation accuracy of the chosen setting at each {axis}, one line per seed\n"
                 f"{_subtitle(summary, base)}", fontsize=9, y=1.0)
    fig.subplots_adjust(hspace=0.45, wspace=0.08, top=1.0 - 1.15 / (1.9 * nrows + 1.2))
    return _save(fig, path)


def gradient_norms_vs_axis(summary: dict[str, Any], base: dict[str, Any], norms: dict[Any, dict[str, float]],
                           path: Path) -> Path:
    """Gradient-path diagnostics against the axis (medians over the chosen setting's seeds).

    Left: ||R||_2 at initialisation and at the best checkpoint, and ||dL/dW|| over the first
    evaluation interval. dL/dW sums the error of every step, delta(t) x(t); the steps near
    T dominate it, so it does not vanish with T -- the part from x(1), the only step that
    carries the class, is ||da(T)/da(1)||_2 times smaller (right panel). Right: the Jacobian
    norm ||da(T)/da(1)||_2 at initialisation and at the best checkpoint, with the bound
    ||R||_2^(T-1) at initialisation. A value that underflowed to exactly 0 is drawn at the
    floor 1e-300 with a down-pointing triangle; lines that coincide are drawn with different
    markers and sizes so the lower one stays visible.

    Parameters
    ----------
    norms : dict axis value -> {"grad_W_first", "R_init", "R_best", "jac_init", "jac_best"}

    Returns
    -------
    Path
    """
    axis = summary["axis"]
    values = [r[axis] for r in summary["rows"] if r[axis] in norms]
    xs = np.arange(len(values), dtype=float)

    def col(name: str) -> np.ndarray:
        return np.array([norms[k].get(name, np.nan) for k in values], dtype=float)

    def draw(ax, y, style: dict, label: str) -> None:
        y = np.asarray(y, dtype=float)
        ax.plot(xs, positive(y), label=label, **style)
        zero = y == 0
        if zero.any():
            ax.plot(xs[zero], np.full(int(zero.sum()), LOG_FLOOR), ls="none", marker="v", ms=9,
                    color=style.get("color"), mec="k", label=f"{label}: exactly 0 (underflow), drawn at 1e-300")

    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    draw(ax1, col("R_init"), dict(color="k", ls=":", marker="s", ms=7, mfc="none"), "||R||_2 at initialisation")
    draw(ax1, col("R_best"), dict(color="tab:orange", ls="-", marker="o", ms=4), "||R||_2 at the best checkpoint")
    draw(ax1, col("grad_W_first"), dict(color="tab:blue", ls="-", marker="^", ms=4),
         "||dL/dW|| in the first steps (all t; not the error from t=1)")
    ax1.set_yscale("log")
    ax1.set_ylabel("norm (log scale)")
    ax1.set_title("The recurrent weights, and the gradient of W", fontsize=10)
    jac_init, jac_best = col("jac_init"), col("jac_best")
    draw(ax2, jac_init, dict(color="tab:blue", ls="-", marker="s", ms=7, mfc="none"), "||da(T)/da(1)||_2 at initialisation")
    draw(ax2, jac_best, dict(color="tab:orange", ls="-", marker="o", ms=4), "||da(T)/da(1)||_2 at the best checkpoint")
    if axis == "T":
        T = np.array(values, dtype=float)
        ax2.plot(xs, positive(col("R_init") ** (T - 1)), "k:", label="bound ||R||_2^(T-1) at initialisation")
    dtype = base.get("dtype", "float64")
    eps = float(np.finfo(dtype).eps)
    ax2.axhline(eps, color="tab:red", ls="--", lw=0.8,
                label=f"{dtype} precision ({eps:.2g}): below it, no learning by gradient")
    ax2.set_yscale("log")
    ax2.set_ylabel("||da(T)/da(1)||_2 (log scale)")
    ax2.set_title("How much of the error at a(T) reaches a(1), the only step with the class", fontsize=9.5)
    for ax in (ax1, ax2):
        ax.set_xlabel(_axis_label(axis))
        _set_ticks(ax, values)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7.5)
    fig.suptitle(f"The vanishing gradient across the sweep (medians over seeds of the chosen setting)\n"
                 f"{_subtitle(summary, base)}", fontsize=10)
    return _save(fig, path)
