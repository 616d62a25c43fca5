"""What a sweep says about itself: the closing lines against the table, and the plots' wording."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from frnn_cli import config
from frnn_cli.cli.show import answer_lines, sweep_lines, sweep_table
from frnn_cli.experiment import plan, sweep
from frnn_cli.plots import sweep as plots_sweep


def _job(val_acc: float, correct: int, label: str) -> dict:
    """A finished job's summary.json as the verdict reads it (n_test = 200)."""
    return {"status": "completed", "steps_done": 300, "stop_reason": "converged",
            "best": {"val_acc": val_acc, "val_loss": 0.69 - (val_acc - 0.5), "step": 100},
            "test": {"correct": correct, "n": 200}, "mechanism": {"label": label}}


def _summary(words: list[str], outcome, axis: str | None = None) -> tuple[dict, dict]:
    """A sweep summary for the grid ``words`` whose job results come from ``outcome(setting)``."""
    spec = plan.resolve_spec(None, [*words, "n_test=200"], axis, 2)
    jobs = plan.plan(spec)
    return sweep.summarize(spec, jobs, {j.job_id: outcome(j.setting) for j in jobs}), config.to_dict(spec.base)


def _plain(lines: list[str]) -> list[str]:
    return [ln.replace("[bold]", "").replace("[/]", "") for ln in lines]


def test_the_closing_lines_say_where_gradient_descent_learned_when_the_table_shows_a_latch():
    """Adam at T = 10, 20: lr 0.03 latches with the best validation accuracy (the table's choice),
    lr 0.01 learns by gradient. The lines must not say "every learned T was learned by gradient"
    as if the table's rows were, and must name lr 0.01."""
    def outcome(setting):
        return _job(1.0, 200, "latch") if setting["lr"] == 0.03 else _job(0.95, 190, "gradient")

    summary, _ = _summary(["T=10,20", "optimizer=adam", "lr=0.01,0.03"], outcome)
    lines = _plain(answer_lines(summary))
    assert not any(ln.startswith("every learned T was learned by gradient") for ln in lines), lines
    assert lines[1] == ("by gradient descent in its stable regime: 20 (every learned T, some at another setting than "
                        "the table shows)"), lines
    assert lines[2].startswith("  T = 10, 20: by gradient with lr=0.01; the table shows the setting chosen over all "
                               "mechanisms, which learned by a weight blow-up into a latch"), lines
    # The table (here its plain form) shows the latch and the setting of the gradient answer.
    rows = [ln for ln in sweep_lines(summary) if ln.startswith("T=")]
    assert [ln.split("  ")[0:2] for ln in rows] == [["T=10", "lr=0.03 ↑"], ["T=20", "lr=0.03 ↑"]], rows
    assert all(ln.endswith("how latch  by gradient yes, lr=0.01") for ln in rows), rows


def test_when_the_chosen_setting_learned_by_gradient_the_lines_say_so_plainly():
    def outcome(setting):
        return _job(1.0, 200, "gradient") if setting["lr"] == 0.03 else _job(0.95, 190, "gradient")

    summary, _ = _summary(["T=10,20", "optimizer=adam", "lr=0.01,0.03"], outcome)
    lines = _plain(answer_lines(summary))
    assert lines[1] == "every learned T was learned by gradient descent in its stable regime", lines
    assert all(ln.endswith("how gradient  by gradient yes") for ln in sweep_lines(summary) if ln.startswith("T=")), lines


def _rendered(renderable, width: int) -> list[str]:
    """What a terminal of ``width`` columns shows, without colours."""
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def _latch_or_gradient(setting):
    """lr 27 latches at every T (the table's choice: validation accuracy 1); lr 1 learns T = 2 by gradient."""
    if setting["lr"] == 27:
        return _job(1.0, 200, "latch")
    return _job(0.95, 190, "gradient") if setting["T"] == 2 else _job(0.5, 100, "none")


def test_at_80_columns_the_sweep_table_keeps_the_axis_and_the_tuned_values_whole():
    """At 80 columns Rich used to shrink every column: T came out empty and lr as "2…". Each row
    of the narrow table starts with its T and its lr (with the edge mark) as summary.json has them,
    and every seed's test accuracy is shown; at 120 columns the full table, headers and all."""
    summary, _ = _summary(["T=1..4", "lr=1,27"], _latch_or_gradient)
    narrow = _rendered(sweep_table(summary), 80)
    assert max(len(ln) for ln in narrow) <= 80, narrow
    rows = [ln.split() for ln in narrow if ln[:1].isdigit()]
    assert [r[:3] for r in rows] == [[str(row["T"]), "27", "↑"] for row in summary["rows"]], narrow
    for r, row in zip(rows, summary["rows"]):
        assert r[5:8] == [f"{row['val_acc']:.3f}", *(f"{a:.2f}" for a in row["test_acc"])], (r, row)
    assert rows[1][-2:] == ["yes,", "lr=1"] and rows[2][-1] == "no", rows  # by gradient, on one line

    wide = _rendered(sweep_table(summary), 120)
    assert max(len(ln) for ln in wide) <= 120 and "best step/seed" in wide[2] and "by gradient" in wide[2], wide
    cells = [[c.strip() for c in ln.split("│")[1:-1]] for ln in wide if ln.startswith("│")]
    assert [c[:2] for c in cells] == [[str(row["T"]), "27 ↑"] for row in summary["rows"]], wide
    assert cells[1][-1] == "yes, lr=1", wide


def test_a_terminal_too_narrow_for_any_table_gets_the_plain_lines():
    summary, _ = _summary(["T=1..4", "lr=1,27"], _latch_or_gradient)
    shown = _rendered(sweep_table(summary), 40)
    assert " ".join(shown).split() == " ".join(sweep_lines(summary)).split(), shown


def test_the_closing_lines_name_the_gradient_setting_also_when_another_T_latched_only():
    """T = 2: the table shows lr 27 (a latch), lr 1 learned it by gradient; T = 1, 3, 4 latched
    only (lr 1 stays at chance there). Both kinds of line appear."""
    summary, _ = _summary(["T=1..4", "lr=1,27"], _latch_or_gradient)
    lines = _plain(answer_lines(summary))
    assert lines[:4] == [
        "maximal T better than chance: 4 (every T from 1 up to 4 learned)",
        "by gradient descent in its stable regime: 2",
        "  T = 2: by gradient with lr=1; the table shows the setting chosen over all mechanisms, which learned by a "
        "weight blow-up into a latch (not by carrying the error back through time)",
        "  T = 1, 3, 4 learned only by a weight blow-up into a latch (not by carrying the error back through time); "
        "see README, 'How a network learned'",
    ], lines


@pytest.mark.parametrize("grid, words", [
    ("T=1,10", "every T swept from 1 up to 10 learned: 1, 10"),
    ("T=1,2,3,5", "every T swept from 1 up to 5 learned: 1..3, 5"),
    ("T=1..3", "every T from 1 up to 3 learned"),
])
def test_the_first_line_claims_no_T_that_was_not_swept(grid, words):
    summary, _ = _summary([grid, "lr=1,3"], lambda s: _job(1.0, 200, "gradient"))
    assert _plain(answer_lines(summary))[0] == f"maximal T better than chance: {summary['max_T']} ({words})"


def _out_of_steps(label: str) -> dict:
    """A job that beat chance with its best at its last step (or trial) of all it had."""
    job = _job(1.0, 200, label)
    job.update(stop_reason="steps", steps_done=150)
    job["best"]["step"] = 150
    return job


def test_guessing_that_drew_every_trial_is_noted_in_trials_not_checkpoints():
    guess, _ = _summary(["T=20", "optimizer=guess", "steps=150"], lambda s: _out_of_steps("guess"))
    assert guess["unit"] == "trials" and guess["edges"] == [{"T": 20, "steps": "last"}]
    assert _plain(answer_lines(guess))[-1] == (
        "note: at T = 20 some seeds drew every trial (steps) without one solving the screening set, and were tested "
        "with their best candidate: more trials might help")
    sgd, _ = _summary(["T=20", "lr=1,3", "steps=150"], lambda s: _out_of_steps("gradient"))
    assert _plain(answer_lines(sgd))[-1] == (
        "note: a best checkpoint was the run's last step at T = 20: more steps might help")


@pytest.fixture
def drawn(monkeypatch):
    """The title and legend of every sweep figure drawn, read before it is saved."""
    seen: dict[str, tuple[str, list[str]]] = {}
    original = plots_sweep._save

    def keep(fig, path):
        ax = fig.axes[0]
        title = fig._suptitle.get_text() if fig._suptitle is not None else ax.get_title()
        seen[path.name] = (title, [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [])
        return original(fig, path)

    monkeypatch.setattr(plots_sweep, "_save", keep)
    return seen


def test_an_init_scale_axis_is_largest_not_longest_and_not_fixed_in_the_subtitle(tmp_path, drawn):
    def outcome(setting):
        return _job(1.0, 200, "readout") if setting["init_scale"] > 0.1 else _job(0.5, 100, "none")

    summary, base = _summary(["T=5", "init_scale=0.01,0.3,1", "freeze=W+R", "lr=1,3"], outcome, axis="init_scale")
    plots_sweep.accuracy_vs_axis(summary, base, tmp_path / "accuracy_vs_init_scale.png")
    plots_sweep.gradient_norms_vs_axis(summary, base, {}, tmp_path / "gradient_norms_vs_init_scale.png")
    title, legend = drawn["accuracy_vs_init_scale.png"]
    assert title.startswith("Largest init_scale learned better than chance: 1"), title
    assert "largest init_scale learned: 1" in legend and not any("longest" in label for label in legend), legend
    for name in drawn:  # base init_scale (0.01) was never run as such
        assert "±" not in drawn[name][0] and "init uniform" in drawn[name][0] and "W+R frozen" in drawn[name][0], name


def test_a_T_axis_keeps_longest_and_the_fixed_init_scale(tmp_path, drawn):
    summary, base = _summary(["T=1,2", "lr=1,3", "init_scale=0.3"], lambda s: _job(1.0, 200, "gradient"))
    plots_sweep.accuracy_vs_axis(summary, base, tmp_path / "accuracy_vs_T.png")
    title, legend = drawn["accuracy_vs_T.png"]
    assert title.startswith("Longest T learned better than chance: 2") and "init uniform ±0.3" in title, title
    assert "longest T learned: 2" in legend, legend
