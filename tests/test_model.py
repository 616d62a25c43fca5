"""BPTT against central differences, hand-computed cases, and the reference API."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frnn_cli import model
from frnn_cli.gradcheck import check_gradients, numerical_gradient
from frnn_cli.model import FullyRecurrentNetwork

# The bound. The five-point stencil with eps = 1e-3 has truncation error ~eps^4 and
# rounding error ~1e-16 |L| / eps, both ~1e-12, so even gradients of 1e-4 meet it.
REL_TOL = 1e-7


def _random_problem(seed, B, T, D, I, K, per_step, scale=0.6):
    rng = np.random.default_rng(seed)
    params = model.init_params(D, I, K, rng, init_scale=scale)
    x = rng.normal(size=(B, T, D))
    y = rng.random((B, T, K) if per_step else (B, K))
    return params, x, y


def _max_rel_error(params, x, y, eps=1e-3):
    _, cache = model.forward(params, x, y)
    grads = model.backward(params, cache)
    res = check_gradients(lambda: model.forward(params, x, y)[0], params, grads, eps=eps, thresh=1.0, order=4)
    return {r.name: r.rel for r in res}


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 4),
    T=st.integers(1, 20),
    D=st.integers(1, 3),
    I=st.integers(1, 6),
    K=st.integers(1, 3),
    per_step=st.booleans(),
)
def test_bptt_matches_finite_differences_random_shapes(seed, B, T, D, I, K, per_step):
    params, x, y = _random_problem(seed, B, T, D, I, K, per_step)
    rel = _max_rel_error(params, x, y)
    assert max(rel.values()) < REL_TOL, rel


@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("T", [1, 2, 20])
def test_bptt_matches_finite_differences_task_shapes(T, per_step):
    params, x, y = _random_problem(7, 5, T, 1, 8, 1, per_step)
    rel = _max_rel_error(params, x, y)
    assert max(rel.values()) < REL_TOL, rel


def _backward_without_recurrent_term(params, cache):
    """The widely copied wrong derivation: delta(t) = (1 - a^2) V^T psi(t) only."""
    V = params["V"]
    A, xt = cache.A, cache.x
    T, B, D = xt.shape
    psi = (0.5 * (1 + np.tanh(0.5 * cache.z)) - cache.y) / B
    delta = np.zeros_like(A[1:])
    delta[T - 1] = (1 - A[T] ** 2) * (psi @ V)
    d2 = delta.reshape(T * B, -1)
    return {"W": d2.T @ xt.reshape(T * B, D), "R": d2.T @ A[:-1].reshape(T * B, -1), "V": psi.T @ A[T]}


@pytest.mark.parametrize("T", [2, 10])
def test_check_detects_missing_recurrent_term(T):
    """The finite-difference check must tell the correct BPTT from the wrong one."""
    params, x, y = _random_problem(3, 4, T, 1, 6, 1, False, scale=0.8)
    _, cache = model.forward(params, x, y)
    wrong = _backward_without_recurrent_term(params, cache)
    res = check_gradients(lambda: model.forward(params, x, y)[0], params, wrong, eps=1e-5, thresh=1e-6)
    failed = {r.name for r in res if not r.passed}
    # At T = 2 dR only has the term delta(2) a(1)^T (a(0) = 0), so only dW is wrong there.
    expected = {"W"} if T == 2 else {"W", "R"}
    assert failed == expected, [(r.name, r.rel) for r in res]


def test_hand_computed_T2():
    """One unit, two steps, worked out on paper."""
    W, R, V = 0.5, -0.3, 2.0
    x1, x2, y = 1.0, 0.4, 1.0
    a1 = np.tanh(W * x1)
    a2 = np.tanh(W * x2 + R * a1)
    z = V * a2
    L = np.log1p(np.exp(-z))  # y = 1
    psi = 1 / (1 + np.exp(-z)) - y
    d2 = (1 - a2**2) * V * psi
    d1 = (1 - a1**2) * R * d2
    expect = {"W": d1 * x1 + d2 * x2, "R": d2 * a1, "V": psi * a2}

    net = FullyRecurrentNetwork(1, 1, 1, rng=0)
    net.W[:] = W
    net.R[:] = R
    net.V[:] = V
    loss = net.forward(np.array([[x1], [x2]]), np.array([y]))
    dW, dR, dV = net.backward()
    assert loss == pytest.approx(L, rel=1e-14)
    for name, got in (("W", dW), ("R", dR), ("V", dV)):
        assert got.item() == pytest.approx(expect[name], rel=1e-12), name


def test_loss_is_stable_for_huge_logits():
    net = FullyRecurrentNetwork(1, 2, 1, rng=0)
    net.V[:] = 1e4  # saturating: z ~ +-1e4
    net.W[:] = 5.0
    loss = net.forward(np.array([[[1.0]], [[-1.0]]]), np.array([[0.0], [1.0]]))
    assert np.isfinite(loss) and loss == pytest.approx(2e4 * np.tanh(5.0), rel=1e-6)
    net.backward()
    assert np.all(np.isfinite(net.dV))


def test_unbatched_equals_batch_of_one(rng):
    net = FullyRecurrentNetwork(1, 4, 2, rng=rng, init_scale=0.5)
    x = rng.normal(size=(6, 1))
    y = rng.random(2)
    l1 = net.forward(x, y)
    g1 = [g.copy() for g in net.backward()]
    l2 = net.forward(x[None], y[None])
    g2 = net.backward()
    assert l1 == l2
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)


def test_batch_loss_is_the_mean_of_sequence_losses(rng):
    net = FullyRecurrentNetwork(1, 4, 1, rng=rng, init_scale=0.5)
    x = rng.normal(size=(3, 5, 1))
    y = rng.random((3, 1))
    each = [net.forward(x[i], y[i]) for i in range(3)]
    assert net.forward(x, y) == pytest.approx(np.mean(each), rel=1e-13)


def test_update_is_gradient_descent(rng):
    net = FullyRecurrentNetwork(1, 3, 1, rng=rng, init_scale=0.5)
    before = {k: v.copy() for k, v in net.params.items()}
    net.forward(rng.normal(size=(2, 4, 1)), np.array([[1.0], [0.0]]))
    grads = dict(zip("WRV", net.backward()))
    net.update(0.25)
    for k in "WRV":
        np.testing.assert_allclose(net.params[k], before[k] - 0.25 * grads[k], rtol=0, atol=1e-15)


def test_reference_initialisation_range_and_shapes():
    net = FullyRecurrentNetwork(1, 32, 1, rng=0)
    assert net.W.shape == (32, 1) and net.R.shape == (32, 32) and net.V.shape == (1, 32)
    allw = np.concatenate([p.ravel() for p in net.params.values()])
    assert allw.dtype == np.float64
    assert np.abs(allw).max() <= 0.01
    # U(-0.01, 0.01) has variance 0.01^2 / 3; 1088 draws pin it within ~15 %.
    assert allw.var() == pytest.approx(0.01**2 / 3, rel=0.15)


def test_orthogonal_init_has_unit_spectral_norm(rng):
    p = model.init_params(1, 16, 1, rng, init="orthogonal")
    np.testing.assert_allclose(p["R"] @ p["R"].T, np.eye(16), atol=1e-12)


def test_numerical_gradient_restores_parameters_even_on_error():
    theta = np.array([1.0, 2.0, 3.0])
    original = theta.copy()
    calls = {"n": 0}

    def f():
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("boom")
        return float((theta**2).sum())

    with pytest.raises(RuntimeError):
        numerical_gradient(f, theta, 1e-3)
    np.testing.assert_array_equal(theta, original)
    calls["n"] = -100
    g = numerical_gradient(f, theta, 1e-4)
    np.testing.assert_allclose(g, 2 * original, rtol=1e-8)
    np.testing.assert_array_equal(theta, original)


def test_shape_errors(rng):
    net = FullyRecurrentNetwork(1, 3, 1, rng=rng)
    with pytest.raises(ValueError, match=r"target y has shape \(2, 3, 1\) for x of shape \(2, 4, 1\); expected"):
        net.forward(np.zeros((2, 4, 1)), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="x must have shape"):
        net.forward(np.zeros((2, 4, 2)), np.zeros((2, 1)))
    with pytest.raises(RuntimeError, match="forward"):
        FullyRecurrentNetwork(1, 3, 1).backward()


def test_float32_long_T_matches_float64_and_flushes_the_vanished_error():
    """At T = 100 with the reference init the float32 error signal would go subnormal;
    backward flushes it to zero below tiny/eps, and the gradients still match float64."""
    rng = np.random.default_rng(0)
    p64 = model.init_params(1, 32, 1, rng)  # uniform +-0.01: ||R||_2 ~ 0.06
    x = rng.normal(size=(8, 100, 1))
    y = (rng.random((8, 1)) < 0.5).astype(np.float64)
    g64 = model.backward(p64, model.forward(p64, x, y)[1])
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    g32 = model.backward(p32, model.forward(p32, x.astype(np.float32), y.astype(np.float32))[1])
    assert g32["W"].dtype == np.float32
    for k in ("W", "R", "V"):
        err = np.linalg.norm(g32[k] - g64[k]) / np.linalg.norm(g64[k])
        assert err < 1e-5, (k, err)
    # The early deltas are exactly zero (flushed), never subnormal.
    d = np.abs(g32["delta"])
    assert np.all(d[:50] == 0.0), d[:50].max()
    assert not np.any((d > 0) & (d < np.finfo(np.float32).tiny))
