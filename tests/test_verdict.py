"""The verdict rules: how a run learned, how settings rank, grid edges, and the split answer."""

from __future__ import annotations

import math

import pytest

from frnn_cli.config import Config
from frnn_cli.experiment import verdict
from frnn_cli.experiment.sweep import summary_csv
from frnn_cli.train import train

EPS64 = 2.220446049250313e-16
NAN = float("nan")


def _history(*rows):
    """Evaluation records from (step, largest batch loss, val_acc, R, J[, R_jump]) tuples."""
    return [
        {"step": r[0], "train_loss_max": r[1], "val_loss": 0.6931, "val_acc": r[2], "R_spectral_norm": r[3],
         "jacobian_norm": r[4], "R_jump": r[5] if len(r) > 5 else (NAN if r[0] == 0 else 1.0)}
        for r in rows
    ]


def test_gradient_when_the_error_signal_was_representable_and_R_grew_moderately():
    h = _history((0, NAN, 0.5, 0.06, 1e-3), (100, 0.69, 0.52, 0.2, 1e-2), (200, 0.5, 0.9, 0.7, 0.3), (300, 0.1, 1.0, 1.0, 0.5))
    m = verdict.learning_mechanism(h, EPS64, learned=True)
    # The event is the first evaluation at 0.5 + (1.0 - 0.5) / 2 = 0.75 or more: step 200.
    assert (m.label, m.step, m.R_norm, m.jacobian, m.loss_peak, m.R_jump) == ("gradient", 200, 0.7, 0.3, 0.69, 1.0)
    assert m.R_growth == pytest.approx(0.7 / 0.06)


def test_latch_when_the_error_signal_was_below_float_precision():
    h = _history((0, NAN, 0.5, 0.06, 1e-28), (25, 0.6, 1.0, 40.0, 1e-141))
    m = verdict.learning_mechanism(h, EPS64, learned=True)
    assert m.label == "latch" and "below the precision" in m.reason and m.jacobian == 1e-28, m
    # The same run in float32 terms: 1e-28 is below float32's 1.2e-7 as well.
    assert verdict.learning_mechanism(h, 1.2e-7, learned=True).label == "latch"


def test_latch_when_one_update_threw_R_into_saturation():
    h = _history((0, NAN, 0.5, 0.06, 0.06), (5, 0.5, 1.0, 3.0, 0.3, verdict.JUMP_MAX + 0.1))
    m = verdict.learning_mechanism(h, EPS64, learned=True)
    assert m.label == "latch" and "one update multiplied ||R||_F by 2.6" in m.reason, m
    h[1]["R_jump"] = verdict.JUMP_MAX - 0.1
    assert verdict.learning_mechanism(h, EPS64, learned=True).label == "gradient"


def test_at_T_1_a_blow_up_is_not_a_latch_there_is_no_time_to_carry():
    h = _history((0, NAN, 0.5, 0.06, 1.0), (5, 40.0, 1.0, 0.06, 1.0, verdict.JUMP_MAX * 10))
    assert verdict.how_learned(h, True, T=2).label == "latch"
    m = verdict.how_learned(h, True, T=1, best_step=5)
    assert (m.label, m.step) == ("gradient", 5) and "T = 1" in m.reason, m
    assert verdict.how_learned(h, True, T=1, freeze="W+R").label == "readout"  # only V learned, still
    assert verdict.how_learned(h, False, T=1).label == "none"


def test_latch_when_R_blew_up_gradually():
    h = _history((0, NAN, 0.5, 0.06, 0.06), (500, 0.5, 1.0, 0.06 * (verdict.GROWTH_MAX + 1), 0.3))
    m = verdict.learning_mechanism(h, EPS64, learned=True)
    assert m.label == "latch" and "grew x101" in m.reason, m
    h[1]["R_spectral_norm"] = 0.06 * (verdict.GROWTH_MAX - 1)
    assert verdict.learning_mechanism(h, EPS64, learned=True).label == "gradient"


def test_latch_when_the_loss_was_catapulted_uphill_first():
    ln2 = math.log(2)
    h = _history((0, NAN, 0.5, 0.06, 0.1), (25, ln2 * (verdict.LOSS_EXCURSION + 1), 0.5, 1.0, 0.1), (50, 0.1, 1.0, 2.0, 0.1))
    m = verdict.learning_mechanism(h, EPS64, learned=True)
    assert m.label == "latch" and "catapult" in m.reason, m
    h[1]["train_loss_max"] = ln2 * (verdict.LOSS_EXCURSION - 1)
    assert verdict.learning_mechanism(h, EPS64, learned=True).label == "gradient"


def test_none_when_not_learned_and_initial_separation_is_described():
    h = _history((0, NAN, 0.95, 1.0, 0.8), (5, 0.1, 1.0, 1.0, 0.8))
    assert verdict.learning_mechanism(h, EPS64, learned=False).label == "none"
    m = verdict.learning_mechanism(h, EPS64, learned=True)
    assert m.label == "gradient" and m.step == 0 and "already at initialisation" in m.reason


@pytest.mark.parametrize(
    "keys, label",
    [(dict(T=2, lr=1.0), "gradient"), (dict(T=20, lr=81.0, seed=1, n_val=200, n_test=500), "latch")],
    ids=["T2-lr1", "T20-lr81"],
)
def test_the_rule_on_real_runs_of_both_kinds(keys, label):
    from frnn_cli.runs import train_summary

    cfg = Config(**keys)
    summary = train_summary(train(cfg), cfg)
    assert summary["test"]["better_than_chance"], summary["test"]
    assert summary["mechanism"]["label"] == label, summary["mechanism"]


def _run(status="completed", val_acc=0.5, correct=100, n=200, label="none", best_step=100, steps_done=1500,
         stop_reason="converged", R=0.06, J=1e-5):
    return {"status": status, "steps_done": steps_done, "stop_reason": stop_reason,
            "best": {"val_acc": val_acc, "val_loss": 0.69 - (val_acc - 0.5), "step": best_step,
                     "R_spectral_norm": R, "jacobian_norm": J},
            "test": {"correct": correct, "n": n}, "mechanism": {"label": label}}


def _members(table):
    """{setting: [(job_id, summary), ...]} from {(T, lr): [summary, ...]}."""
    return {(("T", T), ("lr", lr)): [(f"T{T}_lr{lr}_r{i}", s) for i, s in enumerate(runs)]
            for (T, lr), runs in table.items()}


def test_a_setting_with_one_diverged_seed_beats_a_setting_at_chance():
    """The issue's case: lr = 81 solved T = 10 with 2 of 3 seeds and diverged with the third."""
    solved = _run(val_acc=1.0, correct=200, label="latch")
    chance = _run(val_acc=0.53, correct=101)
    members = _members({(10, 1.0): [chance, chance, chance],
                        (10, 81.0): [solved, solved, _run(status="diverged", val_acc=1.0, correct=200)]})
    s = verdict.summarize("T", {"T": [10], "lr": [1.0, 81.0]}, 3, 0.01, members)
    (row,) = s["rows"]
    # Mean validation accuracy with the diverged seed at chance: (1 + 1 + 0.5) / 3 > 0.53.
    assert row["lr"] == 81.0 and row["val_acc"] == pytest.approx(2.5 / 3)
    assert row["better_than_chance"] == [True, True, False] and row["learned"] and row["n_diverged"] == 1
    assert row["how"] == "latch" and row["mechanism"] == ["latch", "latch", "none"]
    assert s["max_T"] == 10 and s["max_T_gradient"] is None
    assert row["at_edge"] == {"lr": "largest"}


def test_gradient_answer_chooses_its_own_setting():
    """lr = 81 latches with a lower loss; the gradient-only answer must find lr = 1."""
    members = _members({
        (3, 1.0): [_run(val_acc=0.99, correct=198, label="gradient")] * 3,
        (3, 81.0): [_run(val_acc=1.0, correct=200, label="latch")] * 3,
        (3, 0.1): [_run(val_acc=0.5, correct=100)] * 3,
    })
    s = verdict.summarize("T", {"T": [3], "lr": [0.1, 1.0, 81.0]}, 3, 0.01, members)
    (row,) = s["rows"]
    assert (row["lr"], row["how"], row["learned"]) == (81.0, "latch", True)
    assert row["gradient"]["lr"] == 1.0 and row["gradient"]["learned"] is True
    assert (s["max_T"], s["max_T_gradient"]) == (3, 3)
    assert row["at_edge"] == {"lr": "largest"}


def test_edges_interior_and_last_step():
    assert verdict.grid_edges({"lr": 0.3}, {"lr": [0.1, 0.3, 1.0]}, ["lr"]) == {}
    assert verdict.grid_edges({"lr": 0.1}, {"lr": [0.1, 0.3, 1.0]}, ["lr"]) == {"lr": "smallest"}
    assert verdict.grid_edges({"optimizer": "adam"}, {"optimizer": ["sgd", "adam"]}, ["optimizer"]) == {}
    last = dict(best_step=1500, stop_reason="steps")
    members = _members({(4, 1.0): [_run(val_acc=0.9, correct=180, label="gradient", **last)] * 2,
                        (4, 3.0): [_run()] * 2, (4, 0.3): [_run()] * 2})
    s = verdict.summarize("T", {"T": [4], "lr": [0.3, 1.0, 3.0]}, 2, 0.01, members)
    assert s["rows"][0]["at_edge"] == {"steps": "last"} and s["edges"] == [{"T": 4, "steps": "last"}]
    # At chance the best step is noise: no warning.
    members[(("T", 4), ("lr", 1.0))] = [(f"j{i}", _run(val_acc=0.6, correct=100, **last)) for i in range(2)]
    s = verdict.summarize("T", {"T": [4], "lr": [0.3, 1.0, 3.0]}, 2, 0.01, members)
    assert s["rows"][0]["at_edge"] == {} and s["edges"] == []


def test_summary_csv_is_exactly_this():
    members = _members({
        (2, 1.0): [_run(val_acc=1.0, correct=200, label="gradient")] * 2,
        (2, 81.0): [_run(val_acc=1.0, correct=200, label="latch"), _run(status="diverged")],
    })
    s = verdict.summarize("T", {"T": [2], "lr": [1.0, 81.0]}, 2, 0.01, members)
    p = verdict.chance_test(200, 200, 0.01).p_value
    assert summary_csv(s) == (
        "T,lr,at_edge,best_step,val_acc,test_acc_mean,test_acc,p_value,better_than_chance,mechanism,learned,how,"
        "learned_by_gradient,gradient_lr\n"
        f"2,1,lr=smallest,100;100,1,1,1;1,{p:.6g};{p:.6g},true;true,gradient;gradient,true,gradient,true,1\n"
    )


def test_an_unlearned_axis_value_has_no_edge_and_the_answer_names_the_grid_tried():
    from frnn_cli.cli.show import answer_lines

    members = _members({
        (2, 0.1): [_run(val_acc=0.9, correct=190, label="gradient")] * 3,
        (2, 81.0): [_run(val_acc=1.0, correct=200, label="latch")] * 3,
        (5, 0.1): [_run(val_acc=0.52, correct=101)] * 3,
        (5, 81.0): [_run(val_acc=1.0, correct=200, label="latch")] * 3,
        (6, 0.1): [_run(val_acc=0.53, correct=99)] * 3,
        (6, 81.0): [_run(val_acc=0.51, correct=100)] * 3,
    })
    s = verdict.summarize("T", {"T": [2, 5, 6], "lr": [0.1, 81.0]}, 3, 0.01, members)
    s["n_test"] = 200
    assert [r["at_edge"] for r in s["rows"]] == [{"lr": "largest"}, {"lr": "largest"}, {}]
    # T = 2 is shown with lr 81 (a latch) but was learned by gradient at lr 0.1, while T = 5 was
    # learned only by a latch: the lines name both, T = 2 with the lr of its gradient answer.
    # Only T = 2 and 5 were swept up to 5: the first line names them, not "every T from 2 to 5".
    assert [line.replace("[bold]", "").replace("[/]", "") for line in answer_lines(s)] == [
        "maximal T better than chance: 5 (every T swept from 2 up to 5 learned: 2, 5)",
        "by gradient descent in its stable regime: 2",
        "  T = 2: by gradient with lr=0.1; the table shows the setting chosen over all mechanisms, which learned by "
        "a weight blow-up into a latch (not by carrying the error back through time)",
        "  T = 5 learned only by a weight blow-up into a latch (not by carrying the error back through time); "
        "see README, 'How a network learned'",
        "T = 6 not learned with any lr from 0.1 to 81 (the choice there is noise; a wider grid may change this)",
        "note: the chosen lr was the largest of its grid at T = 2, 5 (learned there): the optimum may lie outside the grid",
    ]
