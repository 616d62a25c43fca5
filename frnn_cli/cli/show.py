"""How a sweep's and a comparison's answers read on screen: tables and final lines.

A terminal gets Rich tables; a log or a pipe (stdout not a terminal) gets the same content as
plain lines, one per table row, that ``grep`` can find (:func:`print_table`). Both ``frnn
sweep`` and ``frnn compare`` follow this rule.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

#: What each learning mechanism means, in the words of the final lines.
HOW_WORDS = {
    "gradient": "by gradient descent in its stable regime",
    "latch": "only by a weight blow-up into a latch (not by carrying the error back through time)",
    "guess": "only by random weight guessing (no gradient at all)",
    "readout": "only by the read-out, with R frozen at its random values (a reservoir: nothing carried back through time)",
}
EDGE_MARK = {"smallest": "↓", "largest": "↑"}

#: Cell marks of the comparison table, with their colours on a terminal.
COMPARE_MARKS = {"gradient": "✓", "latch": "L", "guess": "G", "readout": "V", "no": "✗", "skipped": "–", "failed": "!"}
_MARK_STYLE = {"gradient": "green", "latch": "yellow", "guess": "cyan", "readout": "blue", "no": "red",
               "skipped": "dim", "failed": "red"}
#: The comparison table's legend, one entry per mark or column.
COMPARE_LEGEND = (
    "✓ learned by gradient descent in its stable regime, at some tuned setting",
    "L learned only by a weight blow-up into a latch",
    "G learned (beat chance) by random weight guessing; the network tested need not have solved the "
    "screening set",
    "V learned by the read-out alone (R frozen)",
    "✗ not learned",
    "– skipped (failed at two T before)",
    "! no job finished",
    "max T (gradient): the longest T learned any way (by gradient)",
    "at max T: median steps (trials, for guessing) of the chosen seeds at that T",
)


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


def print_table(console: Console, table: FittedTable) -> None:
    """Print ``table`` on a terminal, else its plain lines (a log keeps no box drawing).

    Parameters
    ----------
    console : rich.console.Console
        Where to print; ``console.is_terminal`` decides the form.
    table : FittedTable
    """
    if console.is_terminal:
        console.print(table)
    else:
        for line in table.lines:
            console.print(line, markup=False, highlight=False)


@dataclass
class Column:
    """One column of a :class:`FittedTable`.

    Attributes
    ----------
    header : str
        The header of the full table (may hold a line break).
    justify : str
        "left", "center" or "right".
    fold : bool
        May wrap onto more lines, at spaces, when the table is too wide for the terminal. A
        column that is not folded always gets its full width (the axis, the tuned values, the
        marks of a comparison).
    narrow_header : str, optional
        The header when the table is laid out narrow (default: ``header``); its words wrap in a
        folded column.
    """

    header: str
    justify: str = "right"
    fold: bool = False
    narrow_header: str | None = None


def _plain_width(markup: str) -> int:
    """Cells of the widest line of ``markup`` once its Rich tags are removed."""
    return max(cell_len(line) for line in Text.from_markup(markup).plain.split("\n"))


class FittedTable:
    """A table that lays itself out for the width it is printed at, never squeezing its key columns.

    Rich fits a table that is too wide by shrinking the columns that may wrap, and only when
    none may, every column alike -- which, with every column ``no_wrap``, left the sweep
    table's T column empty at 80 terminal columns and lr as "2…". This renderable prints:

    1. the full table (a box, every cell on one line) when it fits;
    2. else the narrow form: no vertical lines, narrow headers and cells (per-seed values
       separated by spaces), the columns marked ``fold`` free to wrap and every other one
       held at its full width (``min_width``), so that Rich's own fitting wraps only the
       folded ones;
    3. else, when even the key columns do not fit, the plain lines a log gets.

    Parameters
    ----------
    columns : list of Column
    rows : list of list of str
        The cells (Rich markup) of the full table.
    lines : list of str
        The plain-line form (:func:`print_table`'s ``lines``).
    narrow_rows : list of list of str, optional
        The cells of the narrow form (default: ``rows``).
    title, caption : str, optional
    """

    def __init__(self, columns: list[Column], rows: list[list[str]], lines: list[str], *,
                 narrow_rows: list[list[str]] | None = None, title: str | None = None,
                 caption: str | None = None) -> None:
        self.columns, self.rows, self.lines = columns, rows, lines
        self.narrow_rows = narrow_rows if narrow_rows is not None else rows
        self.title, self.caption = title, caption

    def _table(self, narrow: bool) -> Table:
        rows = self.narrow_rows if narrow else self.rows
        if narrow:
            table = Table(title=self.title, caption=self.caption, box=box.SIMPLE_HEAD, show_edge=False,
                          padding=(0, 1, 0, 0))
        else:
            table = Table(title=self.title, caption=self.caption)
        for j, c in enumerate(self.columns):
            header = (c.narrow_header or c.header) if narrow else c.header
            fold = narrow and c.fold
            full = max([_plain_width(header), *(_plain_width(r[j]) for r in rows)])
            table.add_column(header, justify=c.justify, no_wrap=not fold, min_width=None if fold else full)
        for row in rows:
            table.add_row(*row)
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for narrow in (False, True):
            table = self._table(narrow)
            # Rich's measure of a table: its width with every cell on one line (maximum), and
            # with the wrapping columns at their longest word, the others whole (minimum).
            need = table.__rich_measure__(console, options.update(width=10**6))
            if (need.minimum if narrow else need.maximum) <= width:
                yield table
                return
        yield from (Text(line) for line in self.lines)


# ---------------------------------------------------------------------------------------
# frnn sweep


def _setting_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt(v)}" for k, v in values.items())


def by_gradient(row: dict[str, Any], tuned: list[str]) -> str:
    """Whether an axis value was learned when only runs that learned by gradient count, and at
    which setting when it is not the one the table shows: "yes", "yes, lr=0.01" or "no"."""
    g = row.get("gradient") or {}
    if not g.get("learned"):
        return "no"
    other = {k: g[k] for k in tuned if k in g and g[k] != row.get(k)}
    return "yes, " + _setting_text(other) if other else "yes"


def _sweep_title(summary: dict[str, Any]) -> str:
    return f"Per {summary['axis']}: the chosen setting and its test accuracy per seed"


def _sweep_caption(summary: dict[str, Any]) -> str:
    return (f"learned = a majority of seeds beat chance at alpha={summary['alpha']:g}; ↑/↓: the chosen value is the "
            "largest/smallest of its grid; div: diverged seeds (count as failed); by gradient: learned when only runs "
            "that learned by gradient count (with the setting of that answer where it is not the one shown); "
            "p-values in summary.csv")


def _sweep_cells(summary: dict[str, Any], row: dict[str, Any], narrow: bool = False) -> list[tuple[str, str]] | None:
    """(column, text) of one judged axis value, without markup; None for a row without results.

    Per-seed values are joined by "/" (``100/200``), or in the ``narrow`` form of a terminal
    table by spaces, where they may wrap (``100 200``).
    """
    if "test_acc" not in row:
        return None
    axis, tuned = summary["axis"], summary["tuned"]
    edges = row.get("at_edge", {})
    best = "trials/seed" if summary.get("unit") == "trials" else "best step/seed"
    sep = " " if narrow else "/"
    beat = f"{sum(row['better_than_chance'])}/{len(row['better_than_chance'])}"
    if row.get("n_diverged"):
        beat += f", {row['n_diverged']} div" if narrow else f" ({row['n_diverged']} div)"
    last = " ↑" if edges.get("steps") else ""
    return [
        (axis, fmt(row[axis])),
        *[(k, fmt(row[k]) + (f" {EDGE_MARK[edges[k]]}" if k in edges else "")) for k in tuned],
        (best, sep.join(fmt(s) for s in row["best_step"]) + last),
        ("val acc", f"{row['val_acc']:.3f}"),
        ("test acc/seed", sep.join("–" if math.isnan(a) else f"{a:.2f}" for a in row["test_acc"])),
        ("> chance", beat),
        ("learned", "yes" if row["learned"] else "no"),
        ("how", row.get("how", "none") if row["learned"] else "–"),
        ("by gradient", by_gradient(row, tuned)),
    ]


def _unjudged(row: dict[str, Any]) -> str:
    """Why an axis value has no verdict: "skipped (<reason>)" or "no job finished"."""
    if row.get("status") == "skipped":
        return f"skipped ({row['reason']})" if row.get("reason") else "skipped"
    return "no job finished"


def sweep_table(summary: dict[str, Any], title: str | None = None) -> FittedTable:
    """One row per axis value: the chosen setting (↑/↓ at an edge of its grid), best steps,
    validation accuracy, test accuracy per seed, seeds beating chance, how they learned and
    whether (at which setting) gradient descent alone learned it.

    On a narrow terminal the axis and the tuned values keep their full width; the other
    columns wrap (:class:`FittedTable`).

    Parameters
    ----------
    summary : dict from :func:`frnn_cli.experiment.sweep.summarize`
    title : str, optional

    Returns
    -------
    FittedTable (a Rich renderable; :func:`sweep_lines` is its plain form)
    """
    axis, tuned = summary["axis"], summary["tuned"]
    trials = summary.get("unit") == "trials"
    columns = [
        Column(axis), *[Column(k) for k in tuned],
        Column("trials/seed" if trials else "best step/seed", fold=True,
               narrow_header="trials per seed" if trials else "best step per seed"),
        Column("val acc", fold=True),
        Column("test acc/seed", fold=True, narrow_header="test acc per seed"),
        *[Column(name, fold=True) for name in ("> chance", "learned", "how", "by gradient")],
    ]
    rows, narrow_rows = [], []
    for row in summary["rows"]:
        cells = _sweep_cells(summary, row)
        if cells is None:
            style = "dim" if row.get("status") == "skipped" else "red"
            texts = [fmt(row[axis]), *["–"] * (len(tuned) + 4), f"[{style}]{_unjudged(row)}[/]", "–", "–"]
            rows.append(texts)
            narrow_rows.append(texts)
            continue
        texts = [text for _, text in cells]
        narrow = [text for _, text in _sweep_cells(summary, row, narrow=True)]
        if row["learned"]:
            texts[-3] = narrow[-3] = "[green]yes[/]"
        rows.append(texts)
        narrow_rows.append(narrow)
    return FittedTable(columns, rows, sweep_lines(summary, title), narrow_rows=narrow_rows,
                       title=title or _sweep_title(summary), caption=_sweep_caption(summary))


def sweep_lines(summary: dict[str, Any], title: str | None = None) -> list[str]:
    """The content of :func:`sweep_table` as plain lines: the title, one line per axis value
    (``T=4  lr=1  best step/seed 300/200  ...  learned yes  how gradient  by gradient yes``),
    and the legend.

    Parameters
    ----------
    summary : dict from :func:`frnn_cli.experiment.sweep.summarize`
    title : str, optional

    Returns
    -------
    list of str (no markup)
    """
    axis = summary["axis"]
    lines = [title or _sweep_title(summary)]
    for row in summary["rows"]:
        cells = _sweep_cells(summary, row)
        if cells is None:
            lines.append(f"{axis}={fmt(row[axis])}  {_unjudged(row)}")
            continue
        (_, value), *rest = cells
        keyed = [f"{name}={text}" for name, text in rest[:len(summary["tuned"])]]
        named = [f"{name} {text}" for name, text in rest[len(summary["tuned"]):]]
        lines.append("  ".join([f"{axis}={value}", *keyed, *named]))
    lines.append(_sweep_caption(summary))
    return lines


def _gradient_elsewhere(summary: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Lines for axis values learned by gradient only at another setting than the one shown
    (the table's choice, over all mechanisms, learned there otherwise), grouped by that
    setting and mechanism."""
    axis, tuned = summary["axis"], summary["tuned"]
    groups: dict[tuple[str, str], list] = {}
    for r in rows:
        if r["learned"] and r["gradient"]["learned"] and r.get("how") != "gradient":
            setting = _setting_text({k: r["gradient"][k] for k in tuned if k in r["gradient"]}) or "the same setting"
            groups.setdefault((setting, r.get("how", "latch")), []).append(r[axis])
    lines = []
    for (setting, how), values in groups.items():
        words = HOW_WORDS.get(how, f"by {how}").removeprefix("only ")
        lines.append(f"  {axis} = {compact(values)}: by gradient with {setting}; the table shows the setting chosen "
                     f"over all mechanisms, which learned {words}")
    return lines


def answer_lines(summary: dict[str, Any]) -> list[str]:
    """The sweep's answer in words: the longest axis value learned, split by how it was learned,
    and a warning when a tuned value sat at the edge of its grid.

    An axis value whose chosen setting (the table's) learned otherwise than by gradient, while
    another setting learned it by gradient, is named with that other setting, so the lines never
    call an axis value "learned by gradient" that the table shows as a latch without saying where.

    Parameters
    ----------
    summary : dict from :func:`frnn_cli.experiment.sweep.summarize`

    Returns
    -------
    list of str (Rich markup)
    """
    axis = summary["axis"]
    rows = [r for r in summary["rows"] if "test_acc" in r]
    best, contiguous = summary["max_T"], summary.get("max_T_contiguous")
    name = f"maximal {axis}" if axis == "T" else f"largest {axis}"
    if best is None:
        lines = [f"{name} better than chance: [bold]none[/] (no {axis} value was learned)"]
    else:
        swept = sorted(r[axis] for r in summary["rows"])
        lines = [f"{name} better than chance: [bold]{fmt(best)}[/] ({_learned_from_start(axis, swept, contiguous)})"]
        g_best = summary.get("max_T_gradient")
        other = [r for r in rows if r["learned"] and not r["gradient"]["learned"]]
        elsewhere = _gradient_elsewhere(summary, rows)
        if not other and not elsewhere:
            lines.append(f"every learned {axis} was learned {HOW_WORDS['gradient']}")
        else:
            # Both kinds of line can be due: a value learned by gradient only at another
            # setting than the table shows, and values learned only otherwise.
            every = f" (every learned {axis}, some at another setting than the table shows)" if not other else ""
            lines.append(f"{HOW_WORDS['gradient']}: [bold]{fmt(g_best) if g_best is not None else 'none'}[/]{every}")
            lines.extend(elsewhere)
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
    if last and summary.get("unit") == "trials":  # random guessing: "steps" is its number of trials
        lines.append(f"note: at {axis} = {compact(last)} some seeds drew every trial (steps) without one solving the "
                     "screening set, and were tested with their best candidate: more trials might help")
    elif last:
        lines.append(f"note: a best checkpoint was the run's last step at {axis} = {compact(last)}: more steps might help")
    return lines


def _learned_from_start(axis: str, swept: list[Any], contiguous: Any) -> str:
    """The run of learned values from the smallest one swept (``swept``, increasing), in words
    that claim no value that was not swept: "every T from 1 up to 4 learned" when the sweep ran
    each integer between, else "every T swept from 1 up to 10 learned: 1, 10"."""
    if contiguous is None:
        return f"the smallest {axis}, {fmt(swept[0])}, was not learned"
    run = swept[:swept.index(contiguous) + 1]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in run) and run == list(range(run[0], run[-1] + 1)):
        return f"every {axis} from {fmt(run[0])} up to {fmt(contiguous)} learned"
    return f"every {axis} swept from {fmt(run[0])} up to {fmt(contiguous)} learned: {compact(run)}"


# ---------------------------------------------------------------------------------------
# frnn compare


def compare_mark(row: dict[str, Any]) -> str:
    """The key of :data:`COMPARE_MARKS` for one recipe's row at one T."""
    if row.get("status") == "skipped":
        return "skipped"
    if "test_acc" not in row:
        return "failed"
    if not row["learned"]:
        return "no"
    if row["gradient"]["learned"]:
        return "gradient"
    return row.get("how") if row.get("how") in COMPARE_MARKS else "latch"


def _answers(rs: dict[str, Any]) -> tuple[str, str]:
    """The recipe's max T any way and by gradient, as text ("none" when not learned)."""
    return tuple(fmt(rs[k]) if rs[k] is not None else "none" for k in ("max_T", "max_T_gradient"))


def max_T_cost(sweep: dict[str, Any], max_T: Any) -> str:
    """Median steps (trials, for random guessing) of the chosen seeds at the recipe's max T
    ("" when there is none), e.g. "1,200 steps"."""
    row = next((row for row in sweep["rows"] if row["T"] == max_T), None)
    counts = [v for v in (row or {}).get("best_step", []) if v is not None]
    if not counts:
        return ""
    m = statistics.median(counts)
    unit = sweep.get("unit", "steps")
    return f"{m:,.0f} {unit}" if m == int(m) else f"{m:,.1f} {unit}"


COMPARE_TITLE = "Which remedy carries the bit how far: learned better than chance, per recipe and T"


def compare_table(names: list[str], T: list[int], summary: dict[str, Any],
                  sweeps: dict[str, dict[str, Any]]) -> FittedTable:
    """Recipes x T: one mark per cell (:data:`COMPARE_MARKS`), both answers and the cost at max T.

    On a narrow terminal the recipe names and the marks keep their full width; the last two
    columns wrap (:class:`FittedTable`).

    Parameters
    ----------
    names : list of str, the recipes in the comparison's order
    T : list of int, the T grid
    summary : dict, the comparison's summary.json content
    sweeps : dict recipe name -> its sweep summary

    Returns
    -------
    FittedTable (a Rich renderable; :func:`compare_lines` is its plain form)
    """
    columns = [Column("recipe", justify="left"), *[Column(str(t), justify="center") for t in T],
               Column("max T (gradient)", fold=True), Column("at max T", fold=True)]
    rows = []
    for name in names:
        s, rs = sweeps[name], summary["recipes"][name]
        marks = {row["T"]: compare_mark(row) for row in s["rows"]}
        cells = [f"[{_MARK_STYLE[marks[t]]}]{COMPARE_MARKS[marks[t]]}[/]" if t in marks else "" for t in T]
        any_way, gradient = _answers(rs)
        rows.append([name, *cells, f"{any_way} ({gradient})", max_T_cost(s, rs["max_T"])])
    return FittedTable(columns, rows, compare_lines(names, T, summary, sweeps), title=COMPARE_TITLE,
                       caption="; ".join(COMPARE_LEGEND))


def compare_lines(names: list[str], T: list[int], summary: dict[str, Any], sweeps: dict[str, dict[str, Any]]) -> list[str]:
    """The content of :func:`compare_table` as plain lines: the title, one line per recipe
    (``reference: 1 ✓  2 ✓  3 ✓  4 L  max T 4 (gradient 3)  at max T 100 steps``) and the legend,
    one entry a line.

    Parameters
    ----------
    names, T, summary, sweeps : as for :func:`compare_table`

    Returns
    -------
    list of str (no markup)
    """
    lines = [COMPARE_TITLE]
    for name in names:
        s, rs = sweeps[name], summary["recipes"][name]
        marks = {row["T"]: COMPARE_MARKS[compare_mark(row)] for row in s["rows"]}
        cells = [f"{t} {marks[t]}" for t in T if t in marks]
        cost = max_T_cost(s, rs["max_T"])
        any_way, gradient = _answers(rs)
        tail = f"max T {any_way} (gradient {gradient})" + (f"  at max T {cost}" if cost else "")
        lines.append(f"{name}: " + "  ".join([*cells, tail]))
    lines.append("legend:")
    lines.extend(f"  {entry}" for entry in COMPARE_LEGEND)
    return lines
