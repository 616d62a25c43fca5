"""How a sweep's answer reads on screen: its table and its final lines (used by sweep and compare)."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

#: What each learning mechanism means, in the words of the final lines.
HOW_WORDS = {
    "gradient": "by gradient descent in its stable regime",
    "latch": "only by a weight blow-up into a latch (not by carrying the error back through time)",
    "guess": "only by random weight guessing (no gradient at all)",
    "readout": "only by the read-out, with R frozen at its random values (a reservoir: nothing carried back through time)",
}
EDGE_MARK = {"smallest": "↓", "largest": "↑"}


def fmt(v: Any) -> str:
    """A cell: "–" for None/NaN, %g for floats."""
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:g}"
    return "–" if v is None else str(v)


def compact(values: list[Any]) -> str:
    """Axis values as text, runs of consecutive integers as ranges: [4, 5, 6, 9] -> "4..6, 9"."""
    out: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while (j + 1 < len(values) and isinstance(values[j], int) and isinstance(values[j + 1], int)
               and values[j + 1] == values[j] + 1):
            j += 1
        out.append(f"{values[i]}..{values[j]}" if j > i + 1 else ", ".join(fmt(v) for v in values[i:j + 1]))
        i = j + 1
    return ", ".join(out)


def sweep_table(summary: dict[str, Any], title: str | None = None) -> Table:
    """One row per axis value: the chosen setting (↑/↓ at an edge of its grid), best steps,
    validation accuracy, test accuracy per seed, seeds beating chance, how they learned."""
    axis, tuned = summary["axis"], summary["tuned"]
    table = Table(
        title=title or f"Per {axis}: the chosen setting and its test accuracy per seed",
        caption=(f"learned = a majority of seeds beat chance at alpha={summary['alpha']:g}; ↑/↓: the chosen value is "
                 "the largest/smallest of its grid; div: diverged seeds (count as failed); p-values in summary.csv"),
    )
    table.add_column(axis, justify="right", no_wrap=True)
    for k in tuned:
        table.add_column(k, justify="right", no_wrap=True)
    best = "trials/seed" if summary.get("unit") == "trials" else "best step/seed"
    for col in (best, "val acc", "test acc/seed", "> chance", "learned", "how"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in summary["rows"]:
        if "test_acc" not in row:
            table.add_row(fmt(row[axis]), *["–"] * len(tuned), "–", "–", "–", "–", "[red]no job finished[/]", "–")
            continue
        edges = row.get("at_edge", {})
        steps = "/".join(fmt(s) for s in row["best_step"]) + (" ↑" if edges.get("steps") else "")
        beat = f"{sum(row['better_than_chance'])}/{len(row['better_than_chance'])}"
        if row.get("n_diverged"):
            beat += f" ({row['n_diverged']} div)"
        table.add_row(
            fmt(row[axis]),
            *[fmt(row[k]) + (f" {EDGE_MARK[edges[k]]}" if k in edges else "") for k in tuned],
            steps,
            f"{row['val_acc']:.3f}",
            "/".join("–" if math.isnan(a) else f"{a:.2f}" for a in row["test_acc"]),
            beat,
            "[green]yes[/]" if row["learned"] else "no",
            row.get("how", "none") if row["learned"] else "–",
        )
    return table


def answer_lines(summary: dict[str, Any]) -> list[str]:
    """The sweep's answer in words: the longest axis value learned, split by how it was learned,
    and a warning when a tuned value sat at the edge of its grid."""
    axis = summary["axis"]
    rows = [r for r in summary["rows"] if "test_acc" in r]
    best, contiguous = summary["max_T"], summary.get("max_T_contiguous")
    name = f"maximal {axis}" if axis == "T" else f"largest {axis}"
    if best is None:
        lines = [f"{name} better than chance: [bold]none[/] (no {axis} value was learned)"]
    else:
        first = rows[0][axis] if rows else None
        upto = f"every {axis} from {fmt(first)} up to {fmt(contiguous)} learned" if contiguous is not None else (
            f"the smallest {axis}, {fmt(first)}, was not learned")
        lines = [f"{name} better than chance: [bold]{fmt(best)}[/] ({upto})"]
        g_best = summary.get("max_T_gradient")
        other = [r for r in rows if r["learned"] and not r["gradient"]["learned"]]
        if not other:
            lines.append(f"every learned {axis} was learned {HOW_WORDS['gradient']}")
        else:
            lines.append(f"{HOW_WORDS['gradient']}: [bold]{fmt(g_best) if g_best is not None else 'none'}[/]")
            by_how: dict[str, list] = {}
            for r in other:
                by_how.setdefault(r.get("how", "latch"), []).append(r[axis])
            for how, values in by_how.items():
                lines.append(f"  {axis} = {compact(values)} learned {HOW_WORDS.get(how, how)}; see README, 'How a network learned'")
    unlearned = [r[axis] for r in rows if not r["learned"]]
    for key in summary["tuned"]:
        values = [r[key] for r in rows if key in r]
        grid = sorted({s["setting"][key] for s in summary.get("settings", []) if key in s["setting"]}, key=str)
        numeric = [v for v in grid if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if unlearned and values and len(numeric) == len(grid) and len(numeric) > 1:
            lines.append(f"{axis} = {compact(unlearned)} not learned with any {key} from {fmt(min(numeric))} to "
                         f"{fmt(max(numeric))} (the choice there is noise; a wider grid may change this)")
    edges = summary.get("edges") or []
    for key in [k for k in summary["tuned"] if any(k in e for e in edges)]:
        for side in ("largest", "smallest"):
            at = [e[axis] for e in edges if e.get(key) == side]
            if at:
                lines.append(f"note: the chosen {key} was the {side} of its grid at {axis} = {compact(at)} (learned there): "
                             "the optimum may lie outside the grid")
    last = [e[axis] for e in edges if e.get("steps")]
    if last:
        lines.append(f"note: a best checkpoint was the run's last step at {axis} = {compact(last)}: more steps might help")
    return lines
