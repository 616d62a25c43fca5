"""The training loop, optimizers, clipping, early stopping, verdict, and the run-folder job."""

import json
import math

import numpy as np
import pytest

from frnn_cli import runs
from frnn_cli import train as train_module
from frnn_cli.config import Config, load_config
from frnn_cli.data import sample_batch
from frnn_cli.model import backward, forward, init_params
from frnn_cli.optim import SGD, Adam, Momentum, clip_global_norm
from frnn_cli.train import JACOBIAN_SEQUENCES, METRICS_COLUMNS, streams, train, training_batches
from frnn_cli.vanishing import jacobian_norms

FAST = dict(n_val=200, n_test=400)


def _grads(rng, I=5):
    return {"W": rng.standard_normal((I, 1)), "R": rng.standard_normal((I, I)), "V": rng.standard_normal((1, I))}


# ---------------------------------------------------------------------------------------
# Optimizers and clipping, against the formulas written out independently


def test_sgd_step(rng):
    p, g = _grads(rng), _grads(rng)
    expected = {k: p[k] - 0.3 * g[k] for k in p}
    SGD(0.3).step(p, {k: v.copy() for k, v in g.items()})
    for k in p:
        np.testing.assert_allclose(p[k], expected[k], rtol=0, atol=1e-15, err_msg=k)


def test_momentum_two_steps(rng):
    p, g1, g2 = _grads(rng), _grads(rng), _grads(rng)
    lr, mu = 0.1, 0.9
    v1 = {k: -lr * g1[k] for k in p}
    v2 = {k: mu * v1[k] - lr * g2[k] for k in p}
    expected = {k: p[k] + v1[k] + v2[k] for k in p}
    opt = Momentum(lr, mu)
    opt.step(p, {k: v.copy() for k, v in g1.items()})
    opt.step(p, {k: v.copy() for k, v in g2.items()})
    for k in p:
        np.testing.assert_allclose(p[k], expected[k], rtol=1e-13, atol=1e-15, err_msg=k)


def test_adam_matches_algorithm_1(rng):
    """Three steps of Kingma & Ba's Algorithm 1 written literally (bias-corrected m_hat, v_hat)."""
    p, gs = _grads(rng), [_grads(rng) for _ in range(3)]
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    ref = {k: v.copy() for k, v in p.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    for t, g in enumerate(gs, start=1):
        for k in ref:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            m_hat, v_hat = m[k] / (1 - b1**t), v[k] / (1 - b2**t)
            ref[k] = ref[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    opt = Adam(lr, b1, b2, eps)
    for g in gs:
        opt.step(p, {k: x.copy() for k, x in g.items()})
    for k in p:
        np.testing.assert_allclose(p[k], ref[k], rtol=1e-12, atol=1e-15, err_msg=k)
    # The first Adam step moves every weight by about lr in the direction of -sign(g).
    p0 = _grads(np.random.default_rng(1))
    start = {k: x.copy() for k, x in p0.items()}
    Adam(lr).step(p0, {k: x.copy() for k, x in gs[0].items()})
    for k in p0:
        np.testing.assert_allclose(start[k] - p0[k], lr * np.sign(gs[0][k]), rtol=1e-6, err_msg=k)


def test_clip_global_norm(rng):
    g = _grads(rng)
    norm = math.sqrt(sum(float((x**2).sum()) for x in g.values()))
    before = {k: x.copy() for k, x in g.items()}
    assert clip_global_norm(g, norm, 2 * norm) == 1.0
    for k in g:
        assert np.array_equal(g[k], before[k]), k
    scale = clip_global_norm(g, norm, 0.5)
    after = math.sqrt(sum(float((x**2).sum()) for x in g.values()))
    assert after == pytest.approx(0.5, rel=1e-12) and scale == pytest.approx(0.5 / norm, rel=1e-12)
    for k in g:  # direction kept
        np.testing.assert_allclose(g[k], before[k] * (0.5 / norm), rtol=1e-14, err_msg=k)


# ---------------------------------------------------------------------------------------
# The loop


@pytest.fixture(scope="module")
def t2_result():
    """The default config (the reference setting at T = 2)."""
    return train(Config())


def test_default_config_learns_T2(t2_result):
    r = t2_result
    assert r.status == "completed" and r.divergence is None
    assert r.best.val_acc == 1.0, [(h.step, h.val_acc) for h in r.history]
    assert r.stop_reason == "converged" and r.history[-1].val_loss < Config().stop_loss
    assert r.test.accuracy == 1.0 and r.test.correct == r.test.n == Config().n_test
    assert r.test.better_than_chance and r.test.verdict == "better than chance at alpha=0.01"


def test_history_steps_and_columns(t2_result):
    steps = [h.step for h in t2_result.history]
    every = Config().eval_every
    assert steps == list(range(0, steps[-1] + 1, every)), steps
    assert tuple(t2_result.history[0].as_dict()) == METRICS_COLUMNS
    assert "jacobian_norm" in METRICS_COLUMNS
    first = t2_result.history[0]
    assert math.isnan(first.train_loss) and math.isnan(first.grad_norm_W)
    for h in t2_result.history[1:]:
        assert all(math.isfinite(v) for v in h.as_dict().values()), h


def test_best_checkpoint_is_the_best_record_and_its_weights(t2_result):
    r = t2_result
    key = max(r.history, key=lambda h: (h.val_acc, -h.val_loss))
    assert r.best == key and r.best_step == key.step
    # Recompute the validation loss of the returned weights independently: the validation
    # set from its own seed stream, the loss from the model's forward.
    x_val, y_val = sample_batch(streams(0)["val"], Config().n_val, 2)
    loss, _ = forward(r.params, x_val, y_val)
    assert loss == pytest.approx(r.best.val_loss, rel=1e-10), (loss, r.best.val_loss)


def test_early_stop_happened_at_the_first_qualifying_evaluation(t2_result):
    tol = Config().stop_loss
    qualifying = [h.step for h in t2_result.history if h.val_acc == 1.0 and h.val_loss < tol]
    assert qualifying == [t2_result.history[-1].step] == [t2_result.steps_done]


def test_first_evaluation_matches_a_hand_built_step():
    """Step 0 and step 1 records against quantities computed outside the loop."""
    cfg = Config(T=4, eval_every=1, steps=1, **FAST)
    r = train(cfg)
    rng = streams(cfg.seed)
    p = init_params(1, cfg.hidden, 1, rng["init"], init=cfg.init, init_scale=cfg.init_scale)
    x_val, _ = sample_batch(rng["val"], cfg.n_val, cfg.T)
    h0, h1 = r.history
    assert h0.R_spectral_norm == pytest.approx(np.linalg.svd(p["R"], compute_uv=False)[0], rel=1e-12)
    assert h0.jacobian_norm == pytest.approx(float(np.median(jacobian_norms(p, x_val[:JACOBIAN_SEQUENCES], end_only=True))), rel=1e-12)
    x, y = next(training_batches(rng["train"], cfg.batch_size, cfg.T))
    loss, cache = forward(p, x, y)
    g = backward(p, cache)
    assert h1.train_loss == pytest.approx(loss, rel=1e-12)
    for name in ("W", "R", "V"):
        assert getattr(h1, f"grad_norm_{name}") == pytest.approx(np.linalg.norm(g[name]), rel=1e-12), name


def test_training_batches_are_fresh_and_from_the_task_distribution():
    gen = training_batches(np.random.default_rng(3), 32, 5)
    xs = [next(gen) for _ in range(40)]  # crosses a chunk boundary
    x = np.concatenate([b[0] for b in xs])
    y = np.concatenate([b[1] for b in xs])
    assert x.shape == (1280, 5, 1) and y.shape == (1280, 1)
    assert np.array_equal(x[:, 0, 0], np.where(y[:, 0] == 1.0, 1.0, -1.0))
    assert len({b[0].tobytes() for b in xs}) == 40
    assert abs(y.mean() - 0.5) < 4 * 0.5 / math.sqrt(1280)
    assert abs(x[:, 1:, 0].var() - 0.2) < 0.02


def test_eval_every_does_not_change_the_training_trajectory():
    common = dict(T=3, steps=100, stop_loss=None, **FAST)
    a = {h.step: h for h in train(Config(eval_every=10, **common)).history}
    b = {h.step: h for h in train(Config(eval_every=50, **common)).history}
    for step in (0, 50, 100):
        assert (a[step].val_loss, a[step].R_spectral_norm) == (b[step].val_loss, b[step].R_spectral_norm), step


def test_same_seed_same_history_other_seed_different():
    cfg = Config(T=3, steps=60, eval_every=20, **FAST)
    first, second = train(cfg), train(cfg)
    text = runs.metrics_csv_text(first.history)
    assert text == runs.metrics_csv_text(second.history)
    assert all(np.array_equal(first.params[k], second.params[k]) for k in ("W", "R", "V"))
    assert first.test == second.test
    other = train(Config(T=3, steps=60, eval_every=20, seed=1, **FAST))
    assert runs.metrics_csv_text(other.history) != text


def test_patience_stops_after_that_many_evaluations_without_a_new_best():
    r = train(Config(T=10, patience=3, steps=1000, eval_every=25, **FAST))
    assert r.stop_reason == "patience" and r.steps_done < 1000
    after = [h for h in r.history if h.step > r.best.step]
    assert len(after) == 3, [(h.step, h.val_acc, h.val_loss) for h in r.history]


def test_diverging_setting_ends_as_diverged_without_raising():
    r = train(Config(T=5, lr=1e6, init_scale=3.0, **FAST))
    assert r.status == "diverged" and r.stop_reason == "diverged"
    assert r.divergence is not None and "diverge_loss" in r.divergence.reason
    assert r.steps_done == r.divergence.step - 1
    assert all(np.all(np.isfinite(v)) for v in r.params.values())
    assert 0 <= r.test.correct <= r.test.n


def test_nan_loss_is_diverged(monkeypatch):
    import dataclasses

    from frnn_cli import networks

    net = networks.get("rnn")
    calls = []

    def poisoned(params, x, y):
        loss, cache = net.forward(params, x, y)
        calls.append(1)
        return (float("nan") if len(calls) == 7 else loss), cache

    monkeypatch.setitem(networks._CACHE, "rnn", dataclasses.replace(net, forward=poisoned))
    r = train(Config(T=3, steps=50, **FAST))
    assert r.status == "diverged" and r.divergence.step == 7 and "non-finite training loss" in r.divergence.reason


def test_keyboard_interrupt_from_the_callback_propagates():
    seen = []

    def cb(rec):
        seen.append(rec.step)
        if rec.step == 50:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(Config(T=4, steps=500, **FAST), callback=cb)
    assert seen == [0, 25, 50]


def test_p_value_is_the_exact_binomial_tail():
    r = train(Config(T=8, steps=50, n_val=100, n_test=301))
    k, n = r.test.correct, r.test.n
    tail = sum(math.comb(n, j) for j in range(k, n + 1)) / 2**n
    assert r.test.p_value == pytest.approx(tail, rel=1e-9), (k, r.test.p_value, tail)
    assert r.test.better_than_chance == (tail < 0.01)


# ---------------------------------------------------------------------------------------
# The run-folder job


def test_run_train_job_interrupted_leaves_readable_files(tmp_path):
    def cb(rec):
        if rec.step == 50:
            raise KeyboardInterrupt

    cfg = Config(T=4, steps=500, **FAST)
    with pytest.raises(KeyboardInterrupt):
        runs.run_train_job(cfg, tmp_path, callback=cb)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["end_time"] and meta["last_evaluated_step"] == 50
    assert [r["step"] for r in runs.read_metrics(tmp_path / "metrics.csv")] == [0, 25, 50]
    assert load_config(tmp_path / "config.yaml") == cfg
    assert not (tmp_path / "summary.json").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_run_train_job_failure_is_recorded(tmp_path, monkeypatch):
    def boom(cfg, callback=None, on_best=None):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(train_module, "train", boom)
    with pytest.raises(RuntimeError):
        runs.run_train_job(Config(), tmp_path, plots=False)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["status"] == "failed" and meta["error"] == "RuntimeError: disk on fire"


def test_two_run_dirs_in_the_same_second_differ(tmp_path):
    from datetime import datetime

    now = datetime(2024, 1, 2, 3, 4, 5)
    a, b = runs.create_run_dir(tmp_path, "train", now), runs.create_run_dir(tmp_path, "train", now)
    assert a != b and a.name.startswith("2024-01-02_03-04-05-train-") and b.is_dir()
    sa = runs.run_train_job(Config(**FAST), a, plots=False)
    sb = runs.run_train_job(Config(**FAST), b, plots=False)
    assert sa["status"] == sb["status"] == "completed"
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
