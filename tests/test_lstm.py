"""The LSTM's BPTT against central differences, a hand-computed case, a plain reference loop,
PyTorch's nn.LSTM, the carousel, float32, and its error-flow Jacobians."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frnn_cli import lstm, vanishing_lstm
from frnn_cli.gradcheck import GradientCheckError, check_gradients
from frnn_cli.lstm import LSTMNetwork

# The five-point stencil at eps = 1e-3 has truncation error ~eps^4 and rounding error
# ~1e-16 |L| / eps; measured relative errors are 1e-12..3e-10, so 1e-7 fails only on a bug.
REL_TOL = 1e-7
NAMES = ("W", "R", "b", "V")


def _sigma(s):
    return 1.0 / (1.0 + np.exp(-s))


def _random_problem(seed, B, T, D, I, K, per_step, scale=0.6):
    """Weights of order 1 and random biases, so every gate is away from 0 and 1."""
    rng = np.random.default_rng(seed)
    params = lstm.init_params(D, I, K, rng, init_scale=scale)
    params["b"] += rng.normal(0.0, 0.5, size=params["b"].shape)
    x = rng.normal(size=(B, T, D))
    y = rng.random((B, T, K) if per_step else (B, K))
    return params, x, y


def _max_rel_error(params, x, y, eps=1e-3):
    _, cache = lstm.forward(params, x, y)
    grads = lstm.backward(params, cache)
    res = check_gradients(lambda: lstm.forward(params, x, y)[0], params, grads, eps=eps, thresh=1.0, order=4)
    return {r.name: r.rel for r in res}


# ---------------------------------------------------------------------------------------
# Gradients against finite differences


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 4),
    T=st.integers(1, 12),
    D=st.integers(1, 3),
    I=st.integers(1, 5),
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
    params, x, y = _random_problem(7, 5, T, 1, 6, 1, per_step)
    rel = _max_rel_error(params, x, y)
    assert max(rel.values()) < REL_TOL, rel


def test_hand_computed_T2_one_cell():
    """I = D = K = 1, two steps, every derivative written out by the chain rule."""
    w = {"o": 0.7, "i": -0.4, "f": 0.3, "g": 1.2}
    r = {"o": -0.5, "i": 0.8, "f": 0.6, "g": -0.9}
    bb = {"o": 0.1, "i": -0.2, "f": 1.0, "g": 0.05}
    v, x1, x2, y = 1.5, 1.0, -0.6, 1.0
    # Forward: a(0) = c(0) = 0.
    o1, i1, f1 = (_sigma(w[k] * x1 + bb[k]) for k in "oif")
    g1 = np.tanh(w["g"] * x1 + bb["g"])
    c1 = i1 * g1
    a1 = o1 * np.tanh(c1)
    o2, i2, f2 = (_sigma(w[k] * x2 + r[k] * a1 + bb[k]) for k in "oif")
    g2 = np.tanh(w["g"] * x2 + r["g"] * a1 + bb["g"])
    c2 = f2 * c1 + i2 * g2
    a2 = o2 * np.tanh(c2)
    z = v * a2
    L = np.log1p(np.exp(-z))  # y = 1
    # Backward.
    psi = _sigma(z) - y
    da2 = v * psi
    dc2 = da2 * o2 * (1 - np.tanh(c2) ** 2)
    ds2 = {"o": da2 * np.tanh(c2) * o2 * (1 - o2), "i": dc2 * g2 * i2 * (1 - i2),
           "f": dc2 * c1 * f2 * (1 - f2), "g": dc2 * i2 * (1 - g2**2)}
    da1 = sum(r[k] * ds2[k] for k in "oifg")
    dc1 = da1 * o1 * (1 - np.tanh(c1) ** 2) + f2 * dc2  # the carousel term f(2) delta_c(2)
    ds1 = {"o": da1 * np.tanh(c1) * o1 * (1 - o1), "i": dc1 * g1 * i1 * (1 - i1),
           "f": 0.0, "g": dc1 * i1 * (1 - g1**2)}  # c(0) = 0: no gradient for f(1)
    expect = {
        "W": [ds1[k] * x1 + ds2[k] * x2 for k in "oifg"],
        "R": [ds2[k] * a1 for k in "oifg"],  # a(0) = 0
        "b": [ds1[k] + ds2[k] for k in "oifg"],
        "V": [psi * a2],
    }

    net = LSTMNetwork(1, 1, 1, rng=0)
    net.W[:, 0] = [w[k] for k in "oifg"]
    net.R[:, 0] = [r[k] for k in "oifg"]
    net.b[:] = [bb[k] for k in "oifg"]
    net.V[:] = v
    loss = net.forward(np.array([[x1], [x2]]), 1)
    grads = dict(zip(NAMES, net.backward()))
    assert loss == pytest.approx(L, rel=1e-14)
    for name in NAMES:
        np.testing.assert_allclose(grads[name].ravel(), expect[name], rtol=1e-12, atol=1e-17, err_msg=name)


# ---------------------------------------------------------------------------------------
# A plain reference (one step at a time, row vectors, each gate on its own line)


def _reference(params, x, y, carousel=True):
    """Loss and gradients by a textbook loop; ``carousel=False`` drops f(t+1) delta_c(t+1)."""
    W, R, b, V = (params[k] for k in NAMES)
    B, T, _ = x.shape
    I = R.shape[1]
    rows = {k: lstm.gate_rows(k, I) for k in "oifg"}
    a, c = np.zeros((B, I)), np.zeros((B, I))
    hist = []
    for t in range(T):
        s = x[:, t] @ W.T + a @ R.T + b
        o, i, f = (_sigma(s[:, rows[k]]) for k in "oif")
        g = np.tanh(s[:, rows["g"]])
        c_prev, a_prev = c, a
        c = f * c_prev + i * g
        a = o * np.tanh(c)
        hist.append((o, i, f, g, c_prev, c, a_prev, a))
    z = a @ V.T
    loss = float((np.logaddexp(0, z) - y * z).sum() / B)
    psi = (_sigma(z) - y) / B
    grads = {k: np.zeros_like(params[k]) for k in NAMES}
    grads["V"] = psi.T @ a
    da, dc_next, f_next = psi @ V, np.zeros((B, I)), np.zeros((B, I))
    for t in reversed(range(T)):
        o, i, f, g, c_prev, c, a_prev, _ = hist[t]
        tc = np.tanh(c)
        dc = da * o * (1 - tc**2) + (f_next * dc_next if carousel else 0.0)
        ds = np.empty((B, 4 * I))
        ds[:, rows["o"]] = da * tc * o * (1 - o)
        ds[:, rows["i"]] = dc * g * i * (1 - i)
        ds[:, rows["f"]] = dc * c_prev * f * (1 - f)
        ds[:, rows["g"]] = dc * i * (1 - g**2)
        grads["W"] += ds.T @ x[:, t]
        grads["R"] += ds.T @ a_prev
        grads["b"] += ds.sum(axis=0)
        da, dc_next, f_next = ds @ R, dc, f
    return loss, grads


@pytest.mark.parametrize("B, T, D, I, K", [(1, 1, 1, 1, 1), (3, 7, 2, 4, 1), (2, 30, 1, 8, 2)])
def test_matches_plain_reference_loop(B, T, D, I, K):
    params, x, y = _random_problem(11, B, T, D, I, K, False)
    loss, cache = lstm.forward(params, x, y)
    grads = lstm.backward(params, cache)
    ref_loss, ref = _reference(params, x, y)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    for k in NAMES:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-15, err_msg=k)


# ---------------------------------------------------------------------------------------
# The notebook API through RecurrentNetwork


@pytest.fixture
def restore_backward():
    original = LSTMNetwork.backward
    yield original
    LSTMNetwork.backward = original


def test_grad_check_passes_and_catches_a_backward_without_the_carousel(restore_backward):
    net = LSTMNetwork(1, 4, 1, rng=3, init_scale=0.5)
    x = np.random.default_rng(3).normal(size=(2, 8, 1))
    net.forward(x, np.array([[1.0], [0.0]]))
    results = net.grad_check(1e-7, 1e-7)
    assert [r.name for r in results] == list(NAMES) and all(r.passed for r in results)

    def no_carousel(self):  # a plausible bug: delta_c(t) forgets f(t+1) delta_c(t+1)
        xb, yb = self._batch
        g = _reference(self.params, xb, yb, carousel=False)[1]
        return tuple(g[k] for k in NAMES)

    LSTMNetwork.backward = no_carousel
    with pytest.raises(GradientCheckError, match=r"gradient check failed for (W|R|b)\["):
        net.grad_check(1e-7, 1e-7)


def test_notebook_calls_scalar_target_and_update(rng):
    net = LSTMNetwork(2, 3, 1, rng=rng, init_scale=0.5)
    x = rng.uniform(-1, 1, (6, 2))
    assert net.forward(x[None], np.array([[1.0]])) == net.forward(x, 1)  # one sequence = a batch of one
    dW, dR, db, dV = net.backward()
    assert (dW.shape, dR.shape, db.shape, dV.shape) == ((12, 2), (12, 3), (12,), (1, 3))
    before = {k: v.copy() for k, v in net.params.items()}
    grads = dict(zip(NAMES, (g.copy() for g in (dW, dR, db, dV))))
    net.update(0.25)
    for k in NAMES:
        np.testing.assert_allclose(net.params[k], before[k] - 0.25 * grads[k], rtol=0, atol=1e-15)
    # The batch loss is the mean of the sequences' losses.
    xb = rng.normal(size=(3, 5, 2))
    yb = rng.random((3, 1))
    each = [net.forward(xb[i], yb[i]) for i in range(3)]
    assert net.forward(xb, yb) == pytest.approx(np.mean(each), rel=1e-13)


def test_init_params_forget_bias_shapes_and_errors(rng):
    p = lstm.init_params(2, 5, 3, rng, forget_bias=1.5)
    assert {k: v.shape for k, v in p.items()} == {"W": (20, 2), "R": (20, 5), "b": (20,), "V": (3, 5)}
    expected_b = np.zeros(20)
    expected_b[10:15] = 1.5  # rows of f in the order o, i, f, g
    np.testing.assert_array_equal(p["b"], expected_b)
    assert lstm.gate_rows("f", 5) == slice(10, 15)
    assert max(np.abs(p[k]).max() for k in ("W", "R", "V")) <= 0.01
    q = lstm.init_params(1, 6, 1, rng, init="orthogonal")
    for k in range(4):
        blk = q["R"][6 * k : 6 * (k + 1)]
        np.testing.assert_allclose(blk @ blk.T, np.eye(6), atol=1e-12)
    for bad, match in ((dict(I=0), "I must be"), (dict(init="xavier"), "init must be"),
                       (dict(init_scale=-1.0), "init_scale"), (dict(forget_bias=np.nan), "forget_bias")):
        kw = dict(D=1, I=3, K=1, rng=rng) | bad
        with pytest.raises(ValueError, match=match):
            lstm.init_params(**kw)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, D=1\)"):
        lstm.forward(p | lstm.init_params(1, 5, 3, rng), np.zeros((2, 4, 2)), np.zeros((2, 3)))


# ---------------------------------------------------------------------------------------
# The carousel, final logits, float32


def _latch(T, I=2):
    """f held at 1 (bias +50), i open only at step 1 (x(1) = 1, x(t > 1) = 0), R = 0."""
    params = {"W": np.zeros((4 * I, 1)), "R": np.zeros((4 * I, I)), "b": np.zeros(4 * I), "V": np.ones((1, I))}
    rows = {k: lstm.gate_rows(k, I) for k in "oifg"}
    params["b"][rows["f"]] = 50.0  # sigma(50) = 1 - 2e-22: exactly 1.0 in float64
    params["W"][rows["i"]] = 100.0
    params["b"][rows["i"]] = -50.0  # i(1) = sigma(50) = 1, i(t > 1) = sigma(-50) ~ 2e-22
    params["W"][rows["g"]] = 1.0  # g(1) = tanh(1), g(t > 1) = tanh(0) = 0
    x = np.zeros((3, T, 1))
    x[:, 0, 0] = 1.0
    return params, x


def test_forget_gate_at_one_and_closed_input_gate_keep_the_cell_and_its_error():
    T = 50
    params, x = _latch(T)
    st = lstm.run_forward(params, x)
    np.testing.assert_array_equal(st.gate("f"), 1.0)
    np.testing.assert_array_equal(st.c[1:], np.tanh(1.0))  # c(t) = c(1) for every t, exactly
    _, cache = lstm.forward(params, x, np.ones((3, 1)))
    dc = lstm.backward(params, cache)["delta_c"]  # R = 0: the cell is the only path back
    np.testing.assert_array_equal(dc, np.broadcast_to(dc[-1], dc.shape))
    assert np.all(dc != 0)
    norms = vanishing_lstm.lstm_jacobian_norms(params, x)
    np.testing.assert_array_equal(norms["carousel"], 1.0)
    np.testing.assert_array_equal(norms["cc"], 1.0)  # dc(T)/dc(1) = prod diag(f) = identity


@pytest.mark.parametrize("T", [1, 2, 5, 6])
def test_final_logits_equal_forward_logits(T, rng):
    params, x, y = _random_problem(5, 4, T, 2, 3, 2, False)
    _, cache = lstm.forward(params, x, y)
    np.testing.assert_array_equal(lstm.final_logits(params, x), cache.z.T)
    _, cache = lstm.forward(params, x, np.zeros((4, T, 2)))
    np.testing.assert_array_equal(lstm.final_logits(params, x), cache.z[-1].T)


def test_float32_stays_float32_and_matches_float64():
    rng = np.random.default_rng(0)
    p64 = lstm.init_params(1, 16, 1, rng, init_scale=0.3)
    x = rng.normal(size=(8, 40, 1))
    y = (rng.random((8, 1)) < 0.5).astype(np.float64)
    l64, c64 = lstm.forward(p64, x, y)
    g64 = lstm.backward(p64, c64)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    l32, c32 = lstm.forward(p32, x.astype(np.float32), y.astype(np.float32))
    g32 = lstm.backward(p32, c32)
    arrays = {"G": c32.states.G, "TC": c32.states.TC, "H": c32.states.H, "z": c32.z} | g32
    assert {k: v.dtype for k, v in arrays.items()} == dict.fromkeys(arrays, np.dtype(np.float32))
    assert lstm.final_logits(p32, x.astype(np.float32)).dtype == np.float32
    assert l32 == pytest.approx(l64, rel=1e-6)
    for k in NAMES:
        err = np.linalg.norm(g32[k] - g64[k]) / np.linalg.norm(g64[k])
        assert err < 1e-5, (k, err)


def test_float32_flushes_a_vanished_error_instead_of_going_subnormal():
    """A forget gate near 0 (bias -6: f ~ 0.0025) shrinks delta_c by ~400 per step, so in
    float32 it would leave the normal range within ~15 steps; backward stops at tiny/eps^2."""
    rng = np.random.default_rng(1)
    p64 = lstm.init_params(1, 8, 1, rng, init_scale=0.05, forget_bias=-6.0)
    x = rng.normal(size=(4, 60, 1))
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    g64 = lstm.backward(p64, lstm.forward(p64, x, y)[1])
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    g32 = lstm.backward(p32, lstm.forward(p32, x.astype(np.float32), y.astype(np.float32))[1])
    for k in NAMES:
        err = np.linalg.norm(g32[k] - g64[k]) / np.linalg.norm(g64[k])
        assert err < 1e-5, (k, err)
    d = np.abs(g32["delta"])
    assert np.all(d[:30] == 0.0), d[:30].max()
    assert not np.any((d > 0) & (d < np.finfo(np.float32).tiny))


def test_grad_check_of_a_float32_network_uses_float64_differences():
    net = LSTMNetwork(1, 3, 1, rng=0, init_scale=0.5, dtype=np.float32)
    net.forward(np.random.default_rng(0).normal(size=(2, 5, 1)), np.array([[1.0], [0.0]]))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        results = net.grad_check(1e-6, 1e-6)
    assert any("float64 copy" in str(m.message) for m in w)
    assert all(r.passed for r in results)


# ---------------------------------------------------------------------------------------
# PyTorch's nn.LSTM + autograd, an independent implementation


@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("B, T, D, I, K", [(1, 1, 1, 1, 1), (3, 9, 2, 5, 1), (4, 25, 1, 8, 2)])
def test_matches_pytorch_lstm(B, T, D, I, K, per_step):
    torch = pytest.importorskip("torch", reason="torch not installed (optional: pip install '.[bench]')")
    params, x, y = _random_problem(21, B, T, D, I, K, per_step)
    loss, cache = lstm.forward(params, x, y)
    grads = lstm.backward(params, cache)

    # PyTorch's rows are i, f, g, o; frnn's o, i, f, g.
    to_torch = np.concatenate([np.arange(4 * I)[lstm.gate_rows(k, I)] for k in "ifgo"])
    net = torch.nn.LSTM(D, I, batch_first=True, dtype=torch.float64)
    lin = torch.nn.Linear(I, K, bias=False, dtype=torch.float64)
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(params["W"][to_torch]))
        net.weight_hh_l0.copy_(torch.from_numpy(params["R"][to_torch]))
        half = params["b"][to_torch] / 2  # the two bias vectors add up to frnn's b
        net.bias_ih_l0.copy_(torch.from_numpy(half))
        net.bias_hh_l0.copy_(torch.from_numpy(half))
        lin.weight.copy_(torch.from_numpy(params["V"]))
    out, (h, _) = net(torch.from_numpy(x))
    z = lin(out) if per_step else lin(h[-1])
    t_loss = torch.nn.functional.binary_cross_entropy_with_logits(z, torch.from_numpy(y), reduction="sum") / B
    t_loss.backward()
    back = np.argsort(to_torch)
    theirs = {
        "W": net.weight_ih_l0.grad.numpy()[back],
        "R": net.weight_hh_l0.grad.numpy()[back],
        "b": net.bias_ih_l0.grad.numpy()[back],
        "b_hh": net.bias_hh_l0.grad.numpy()[back],
        "V": lin.weight.grad.numpy(),
    }
    assert loss == pytest.approx(t_loss.item(), rel=1e-13)
    for k, g in theirs.items():
        mine = grads[k.split("_")[0]]
        scale = np.abs(mine).max()
        assert np.abs(g - mine).max() <= 1e-12 * scale, (k, np.abs(g - mine).max(), scale)


# ---------------------------------------------------------------------------------------
# The error flow: Jacobians of the state (a, c)


@pytest.mark.parametrize("seed, scale", [(0, 0.3), (1, 0.8), (2, 1.5)])
def test_lstm_jacobians_match_finite_differences(seed, scale):
    params, x, _ = _random_problem(seed, 2, 7, 2, 3, 1, False, scale=scale)
    I = 3
    M = vanishing_lstm.lstm_jacobians(params, x)  # (T, B, 2I, 2I)
    st_ = lstm.run_forward(params, x)
    a1, c1 = st_.a[1].copy(), st_.c[1].copy()
    A, C = vanishing_lstm.lstm_run_from_state(params, x, a1, c1)
    np.testing.assert_allclose(A, st_.a[1:], rtol=0, atol=1e-15)
    np.testing.assert_allclose(C, st_.c[1:], rtol=0, atol=1e-15)
    eps = 1e-6
    M_num = np.empty_like(M)
    for j in range(2 * I):
        plus, minus = (a1.copy(), c1.copy()), (a1.copy(), c1.copy())
        half, col = (0, j) if j < I else (1, j - I)
        plus[half][:, col] += eps
        minus[half][:, col] -= eps
        (Ap, Cp), (Am, Cm) = vanishing_lstm.lstm_run_from_state(params, x, *plus), vanishing_lstm.lstm_run_from_state(params, x, *minus)
        M_num[:, :, :I, j] = (Ap - Am) / (2 * eps)
        M_num[:, :, I:, j] = (Cp - Cm) / (2 * eps)
    err = np.abs(M - M_num).max()
    assert err < 1e-8, f"max |M - M_fd| = {err:.3g}"
    np.testing.assert_array_equal(M[0], np.broadcast_to(np.eye(2 * I), M[0].shape))
    norms = vanishing_lstm.lstm_jacobian_norms(params, x)
    t, b = 6, 1
    expect = {"state": M[t, b], "aa": M[t, b, :I, :I], "ac": M[t, b, :I, I:], "cc": M[t, b, I:, I:]}
    for k, m in expect.items():
        assert norms[k][t, b] == pytest.approx(np.linalg.svd(m, compute_uv=False)[0], rel=1e-12), k
    f = st_.gate("f")[1 : t + 1, b]  # f(2) .. f(t+1)
    assert norms["carousel"][t, b] == pytest.approx(np.prod(f, axis=0).max(), rel=1e-12)


def test_lstm_summary_errors_are_per_sequence_bptt_errors():
    params, x, _ = _random_problem(4, 5, 12, 1, 4, 1, False)
    y = np.array([[1.0], [0.0], [1.0], [1.0], [0.0]])
    s = vanishing_lstm.lstm_summarize(params, x, y)
    single = np.array([np.linalg.norm(lstm.backward(params, lstm.forward(params, x[b : b + 1], y[b : b + 1])[1])
                                      ["delta_c"][:, 0], axis=1) for b in range(5)])  # (n, T)
    np.testing.assert_allclose(s.error_c_median, np.median(single, axis=0), rtol=1e-12)
    np.testing.assert_allclose(s.error_c_max, single.max(axis=0), rtol=1e-12)
    norms = vanishing_lstm.lstm_jacobian_norms(params, x)
    np.testing.assert_allclose(s.jacobian_median["cc"], np.median(norms["cc"], axis=1), rtol=1e-12)
    assert s.n == 5 and list(s.t) == list(range(1, 13))
