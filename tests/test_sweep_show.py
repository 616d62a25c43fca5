"""What a sweep says about itself: the closing lines against the table, and the plots' wording."""

from __future__ import annotations

import pytest

from frnn_cli import config
from frnn_cli.cli.show import answer_lines, sweep_lines
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
