"""model=lstm and optimizer=guess through the training loop, the CLI and the run folders."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from helpers import expect_exit
from helpers import msg as _msg

from frnn_cli import guess, networks, stacked
from frnn_cli.config import Config
from frnn_cli.runs import run_train_job
from frnn_cli.data import sample_batch
from frnn_cli.train import STREAMS, evaluate, paper_criteria, train

FAST = dict(n_val=128, n_test=400, eval_every=25)


def test_the_lstm_learns_T_20_through_the_training_loop(tmp_path):
    cfg = Config(model="lstm", T=20, optimizer="adam", lr=0.01, init_scale=0.1, forget_bias=5.0, steps=300, **FAST)
    summary = run_train_job(cfg, tmp_path, plots=False)
    assert summary["test"]["better_than_chance"] and summary["network"] == "lstm", summary["test"]
    assert summary["mechanism"]["label"] == "gradient", summary["mechanism"]
    with np.load(tmp_path / "model.npz") as f:
        assert sorted(f.files) == ["R", "V", "W", "b"] and f["W"].shape == (128, 1) and f["b"].shape == (128,)
    # ST1 and ST2 are counted in training sequences at evaluation steps: multiples of 25 x 32.
    st1, st2 = summary["st1_sequences"], summary["st2_sequences"]
    assert st1 is not None and st1 % (25 * 32) == 0 and (st2 is None or st2 >= st1), (st1, st2)


def test_paper_criteria_on_hand_made_logits():
    def logits(params, x):
        return params["z"]

    y = np.array([[1.0], [0.0], [1.0]])
    big = {"z": np.array([[10.0], [-10.0], [10.0]])}  # |sigmoid(z) - y| = 4.5e-5 each
    small = {"z": np.array([[1.0], [-1.0], [1.0]])}  # all right, error 0.27 each
    wrong = {"z": np.array([[1.0], [1.0], [1.0]])}
    x = np.zeros((3, 2, 1))
    assert paper_criteria(big, x, y, logits) == (True, True)
    assert paper_criteria(small, x, y, logits) == (True, False)
    assert paper_criteria(wrong, x, y, logits) == (False, False)


def test_guessing_solves_and_its_winner_can_be_redrawn():
    cfg = Config(optimizer="guess", T=100, hidden=5, init_scale=1.0, steps=2000, **FAST)
    r = train(cfg)
    assert r.stop_reason == "solved" and r.trials == r.steps_done and r.test.better_than_chance, r.test
    seed = np.random.SeedSequence(cfg.seed).spawn(len(STREAMS))[0]
    again = guess.draw_trial(r.trials - 1, seed, 1, 5, 1, "uniform", 1.0)
    for k in ("W", "R", "V"):
        np.testing.assert_array_equal(again[k], r.params[k])
    assert r.best.step == r.trials and all(h.train_loss != h.train_loss for h in r.history)  # no gradient, no loss
    assert r.trial == r.trials - 1


def test_a_guessing_run_that_gives_up_stores_and_names_the_most_accurate_trial(tmp_path):
    # 32 hidden, weights +-10, T = 100: no trial of 100 solves the screening set (seed 0).
    cfg = Config(optimizer="guess", T=100, init_scale=10.0, steps=100, **FAST)
    summary = run_train_job(cfg, tmp_path, plots=False)
    assert summary["stop_reason"] == "steps" and summary["trials"] == 100, summary["stop_reason"]
    # Independently: draw every trial one by one, score it on the screening set with the model's
    # own forward pass, and take the first of the most accurate.
    ss = np.random.SeedSequence(cfg.seed).spawn(len(STREAMS))
    x, y = sample_batch(np.random.default_rng(ss[STREAMS.index("screen")]), cfg.screen_n, cfg.T)
    with np.errstate(all="ignore"):
        correct = [evaluate(guess.draw_trial(k, ss[0], 1, 32, 1, "uniform", 10.0), x, y)[1] for k in range(100)]
    k = int(np.argmax(correct))
    assert max(correct) < cfg.screen_n and summary["trial"] == k, (summary["trial"], k, max(correct))
    assert summary["mechanism"]["label"] == "none" or f"trial {k + 1}" in summary["mechanism"]["reason"]
    assert summary["model"] == f"model.npz: W, R, V of the network drawn at trial {k + 1} (k = {k})"
    with np.load(tmp_path / "model.npz") as f:
        again = guess.draw_trial(k, ss[0], 1, 32, 1, "uniform", 10.0)
        for name in ("W", "R", "V"):
            np.testing.assert_array_equal(f[name], again[name])


def test_guessing_an_lstm_uses_its_stacked_forward_pass():
    rng = np.random.default_rng(3)
    cands = [networks.get("lstm").init_params(1, 4, 1, rng, init_scale=1.0, forget_bias=1.0) for _ in range(5)]
    stack = {k: np.stack([c[k] for c in cands]) for k in cands[0]}
    x = rng.normal(size=(7, 12, 1))
    z = stacked.stacked_lstm_logits(stack, x, block=2)
    for n, c in enumerate(cands):
        np.testing.assert_allclose(z[n], networks.get("lstm").final_logits(c, x), rtol=1e-10, atol=1e-12)
    r = train(Config(model="lstm", optimizer="guess", T=10, hidden=4, init_scale=1.0, steps=500, **FAST))
    assert r.trials is not None and sorted(r.params) == ["R", "V", "W", "b"]


def test_gradcheck_and_vanishing_take_model_lstm(cli, tmp_path):
    r = cli("gradcheck", "model=lstm", "T=6", "hidden=3")
    expect_exit(r, 0)
    assert "Gradient check (lstm" in r.stdout and "all parameters pass" in r.stdout, _msg(r)
    r = cli("vanishing", "model=lstm", "T=12", "n=6", "forget_bias=5", "--runs-dir", str(tmp_path))
    expect_exit(r, 0)
    (folder,) = tmp_path.iterdir()
    header = (folder / "vanishing.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["t", "lstm_state_median"] and "rnn_jacobian_norm_median" in header
    rows = [line.split(",") for line in (folder / "vanishing.csv").read_text().splitlines()[1:]]
    assert len(rows) == 12 and float(rows[0][1]) == pytest.approx(1.0)
    assert json.loads((folder / "meta.json").read_text())["model"] == "lstm"


def test_vanishing_reads_a_trained_lstm_run(cli, tmp_path):
    cfg = Config(model="lstm", T=5, optimizer="adam", lr=0.01, init_scale=0.1, steps=50, **FAST)
    run_train_job(cfg, tmp_path / "run", plots=False)
    r = cli("vanishing", "--run", str(tmp_path / "run"), "n=4", "--runs-dir", str(tmp_path / "out"))
    expect_exit(r, 0)
    assert "trained with adam" in r.stdout and "LSTM" in r.stdout, _msg(r)
    # Naming the run's own model is no change; another model is.
    r = cli("vanishing", "--run", str(tmp_path / "run"), "model=lstm", "n=4", "--runs-dir", str(tmp_path / "same"))
    expect_exit(r, 0)
    r = cli("vanishing", "--run", str(tmp_path / "run"), "model=rnn", "n=4", "--runs-dir", str(tmp_path / "other"))
    expect_exit(r, 2)
    assert "model: cannot be changed with --run" in r.stderr and not (tmp_path / "other").exists(), _msg(r)


def test_vanishing_puts_a_trained_rnn_beside_a_trained_lstm(cli, tmp_path):
    run_train_job(Config(model="lstm", T=5, optimizer="adam", lr=0.01, init_scale=0.1, steps=50, **FAST),
                  tmp_path / "lstm", plots=False)
    run_train_job(Config(T=5, lr=3.0, hidden=8, steps=50, **FAST), tmp_path / "rnn", plots=False)
    r = cli("vanishing", "--run", str(tmp_path / "lstm"), "--beside", str(tmp_path / "rnn"), "T=7", "n=4",
            "--runs-dir", str(tmp_path / "both"))
    expect_exit(r, 0)
    assert "8 units, trained with sgd, lr=3" in r.stdout, _msg(r)
    # The RNN columns are the trained RNN's own measurement on the same sequences (both runs have seed 0).
    r = cli("vanishing", "--run", str(tmp_path / "rnn"), "T=7", "n=4", "--runs-dir", str(tmp_path / "alone"))
    expect_exit(r, 0)
    (both,), (alone,) = (tmp_path / "both").iterdir(), (tmp_path / "alone").iterdir()
    beside = list(csv.DictReader((both / "vanishing.csv").open()))
    own = list(csv.DictReader((alone / "vanishing.csv").open()))
    assert [b["rnn_jacobian_norm_median"] for b in beside] == [o["jacobian_norm_median"] for o in own]
    assert json.loads((both / "meta.json").read_text())["rnn_run"] == str((tmp_path / "rnn").resolve())
    for args, fragment in ((["model=lstm", "--beside", str(tmp_path / "lstm")], "is a run of model=lstm"),
                           (["--beside", str(tmp_path / "rnn")], "only beside an LSTM (it puts a trained RNN next "
                                                                   "to it); give model=lstm"),
                           (["--run", str(tmp_path / "rnn"), "--beside", str(tmp_path / "lstm")],
                            "the network of --run is an RNN; --run takes the LSTM run and --beside the RNN run"),
                           (["model=lstm", "--beside", str(tmp_path / "nowhere")], "is not a folder")):
        r = cli("vanishing", "T=5", "n=2", *args, "--runs-dir", str(tmp_path / "bad"))
        expect_exit(r, 2)
        assert fragment in r.stderr and not (tmp_path / "bad").exists(), _msg(r)


def test_a_guessing_sweep_counts_trials(cli, tmp_path):
    r = cli("sweep", "T=1,2", "optimizer=guess", "hidden=5", "init_scale=1", "steps=200", "n_val=64", "n_test=200",
            "--seeds", "2", "--workers", "1", "--runs-dir", str(tmp_path))
    expect_exit(r, 0)
    assert "trials/seed" in r.stdout and "random weight guessing" not in r.stderr, _msg(r)
    (d,) = tmp_path.iterdir()
    summary = json.loads((d / "summary.json").read_text())
    assert summary["unit"] == "trials" and [row["how"] for row in summary["rows"]] == ["guess", "guess"]
    assert summary["max_T"] == 2 and summary["max_T_gradient"] is None
    # No learning rate to tune: one job per (T, seed), and the trial counts under their own name.
    assert summary["n_jobs"] == 4 and summary["tuned"] == [], (summary["n_jobs"], summary["tuned"])
    rows = list(csv.DictReader((d / "summary.csv").open()))
    trials = [[json.loads((d / "jobs" / j / "summary.json").read_text())["trials"] for j in row["best_job"]]
              for row in summary["rows"]]
    assert [r["trials"] for r in rows] == [";".join(map(str, t)) for t in trials] and "best_step" not in rows[0]


@pytest.mark.parametrize("words, fragment", [
    (["optimizer=guess", "freeze=W"], "optimizer=guess draws every weight afresh"),
    (["model=lstm", "freeze=b+W+R+V"], "freezes every parameter"),
    (["model=rnn", "freeze=b"], "this model has no parameter 'b'"),
])
def test_settings_wrong_together_are_refused_before_any_folder(cli, tmp_path, words, fragment):
    r = cli("train", *words, "--runs-dir", str(tmp_path))
    expect_exit(r, 2)
    assert fragment in r.stderr and not any(tmp_path.iterdir()), _msg(r)


def test_a_frozen_R_learns_by_the_readout_alone(tmp_path):
    cfg = Config(T=8, freeze="W+R", init_scale=0.3, lr=3.0, steps=600, **FAST)
    summary = run_train_job(cfg, tmp_path, plots=False)
    assert summary["test"]["better_than_chance"], summary["test"]
    assert summary["mechanism"]["label"] == "readout" and "R frozen" in summary["mechanism"]["reason"]
    with np.load(tmp_path / "model.npz") as f:  # W and R never moved from their initial draw
        init = networks.get("rnn").init_params(1, 32, 1, np.random.default_rng(np.random.SeedSequence(0).spawn(6)[0]),
                                               init_scale=0.3)
        np.testing.assert_array_equal(f["R"], init["R"])
        np.testing.assert_array_equal(f["W"], init["W"])
        assert not np.array_equal(f["V"], init["V"])
