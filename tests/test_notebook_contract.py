"""The course notebook's own calls, unchanged, and the gradient check of the model's own backward."""


import numpy as np
import pytest

from frnn_cli.gradcheck import GradientCheckError
from frnn_cli.model import FullyRecurrentNetwork

T, D, I, K = 10, 3, 5, 1


@pytest.fixture
def restore_backward():
    """Put the class's backward back after a test assigns its own."""
    original = FullyRecurrentNetwork.backward
    yield original
    FullyRecurrentNetwork.backward = original


@pytest.mark.parametrize("seed", range(10))
def test_notebook_sequence_runs_unchanged_and_passes_at_reference_init(seed, restore_backward):
    np.random.seed(seed)  # the notebook draws its input from the global generator
    model = FullyRecurrentNetwork(D, I, K, rng=seed)
    loss = model.forward(np.random.uniform(-1, 1, (T, D)), 1)
    assert 0.69 < loss < 0.70, loss  # weights of 0.01: z ~ 0, the loss is ln 2

    def my_backward(self):  # a student's backward: here a correct one, via the reference
        return restore_backward(self)

    FullyRecurrentNetwork.backward = my_backward
    dW, dR, dV = model.backward()
    assert (dW.shape, dR.shape, dV.shape) == ((I, D), (I, I), (K, I))
    results = model.grad_check(1e-7, 1e-7)
    assert [r.name for r in results] == ["W", "R", "V"] and all(r.passed for r in results)
    # The gradients here are ~1e-6 in size: the absolute criterion is met with a margin...
    assert max(r.max_abs for r in results) < 1e-8, [(r.name, r.max_abs) for r in results]
    W_before = model.W.copy()
    model.update(0.001)
    np.testing.assert_array_equal(model.W, W_before - 0.001 * dW)


def test_relative_criterion_is_an_option_and_fails_on_tiny_gradients():
    """...while a relative bound of 1e-7 on gradients of ~1e-6 is not reachable with eps = 1e-7."""
    model = FullyRecurrentNetwork(D, I, K, rng=0)
    model.forward(np.random.default_rng(0).uniform(-1, 1, (T, D)), 1)
    with pytest.raises(GradientCheckError, match=r"relative error > thresh 1e-07"):
        model.grad_check(1e-7, 1e-7, relative=True)
    assert all(r.passed and r.relative for r in model.grad_check(1e-7, 1e-3, relative=True))


def _wrong_in_dR(original):
    def backward(self):
        dW, dR, dV = original(self)
        self.dR = dR * 1.05  # a 5 % error in dR
        return dW, self.dR, dV

    return backward


def test_grad_check_catches_a_wrong_backward_assigned_on_the_class(restore_backward):
    model = FullyRecurrentNetwork(D, I, K, rng=3, init_scale=0.5)
    model.forward(np.random.default_rng(3).uniform(-1, 1, (T, D)), 1)
    assert all(r.passed for r in model.grad_check(1e-7, 1e-7))
    FullyRecurrentNetwork.backward = _wrong_in_dR(restore_backward)
    with pytest.raises(GradientCheckError) as info:
        model.grad_check(1e-7, 1e-7)
    msg = str(info.value)
    assert msg.startswith("gradient check failed for R["), msg
    assert "numerical" in msg and "analytic" in msg and "absolute difference" in msg and "relative error" in msg
    assert "Likely cause: the backward pass" in msg, msg


def test_grad_check_catches_a_wrong_backward_assigned_on_the_instance():
    model = FullyRecurrentNetwork(D, I, K, rng=4, init_scale=0.5)
    model.forward(np.random.default_rng(4).uniform(-1, 1, (T, D)), 1)
    model.backward = _wrong_in_dR(FullyRecurrentNetwork.backward).__get__(model)
    with pytest.raises(GradientCheckError, match=r"for R\[.*Likely cause: the backward pass"):
        model.grad_check(1e-7, 1e-7)


def test_a_backward_that_only_sets_attributes_is_checked(restore_backward):
    def sets_only(self):
        dW, dR, dV = restore_backward(self)
        self.dW, self.dR, self.dV = dW, dR, dV * 0.9

    model = FullyRecurrentNetwork(D, I, K, rng=5, init_scale=0.5)
    model.forward(np.random.default_rng(5).uniform(-1, 1, (T, D)), 1)
    FullyRecurrentNetwork.backward = sets_only
    with pytest.raises(GradientCheckError, match=r"for V\["):
        model.grad_check(1e-7, 1e-7)


def test_grad_check_restores_weights_and_cache():
    model = FullyRecurrentNetwork(D, I, K, rng=6, init_scale=0.5)
    x = np.random.default_rng(6).uniform(-1, 1, (T, D))
    loss = model.forward(x, 1)
    before = {k: v.copy() for k, v in model.params.items()}
    g_before = [g.copy() for g in model.backward()]
    model.grad_check(1e-7, 1e-7)
    for k in before:
        np.testing.assert_array_equal(model.params[k], before[k])
    for a, b in zip(g_before, model.backward()):
        np.testing.assert_array_equal(a, b)
    assert model.forward(x, 1) == loss


@pytest.mark.parametrize("eps, cause", [(1e-12, "eps is too small for float64"), (3e-1, "eps is too large")])
def test_failure_names_a_numerical_cause_not_bptt(eps, cause):
    model = FullyRecurrentNetwork(D, I, K, rng=7, init_scale=0.5)
    model.forward(np.random.default_rng(7).uniform(-1, 1, (T, D)), 1)
    with pytest.raises(GradientCheckError) as info:
        model.grad_check(eps, 1e-7)
    assert cause in str(info.value) and "the backward pass" not in str(info.value), str(info.value)


def test_float32_network_is_checked_on_a_float64_copy_with_a_warning():
    model = FullyRecurrentNetwork(D, I, K, rng=8, dtype=np.float32)
    model.forward(np.random.default_rng(8).uniform(-1, 1, (T, D)), 1)
    with pytest.warns(RuntimeWarning, match="float64 copy"):
        results = model.grad_check(1e-7, 1e-7)
    assert all(r.passed for r in results), [(r.name, r.max_abs) for r in results]
    assert model.W.dtype == np.float32


@pytest.mark.parametrize("hidden, steps, scale", [(16, 10, 1.0), (32, 50, 0.5)])
def test_a_correct_float32_network_with_large_gradients_passes(hidden, steps, scale):
    # Gradients of order 0.1-1: float32 BPTT rounds them by ~1e-6, ten times thresh. The check
    # must not blame the backward for that (it runs the same backward on a float64 copy).
    model = FullyRecurrentNetwork(3, hidden, 1, rng=0, init_scale=scale, dtype=np.float32)
    rng = np.random.default_rng(0)
    model.forward(rng.uniform(-1, 1, (8, steps, 3)), (rng.random(8) < 0.5) * 1.0)
    dW32, dR32, dV32 = model.backward()
    twin = FullyRecurrentNetwork(3, hidden, 1, rng=0, init_scale=scale)
    twin.W, twin.R, twin.V = (a.astype(np.float64) for a in (model.W, model.R, model.V))
    twin.forward(*(a.astype(np.float64) for a in model._batch))
    rounding = max(np.max(np.abs(a - b)) for a, b in zip((dW32, dR32, dV32), twin.backward()))
    assert rounding > 1e-7  # float32 alone would fail an absolute check at 1e-7
    with pytest.warns(RuntimeWarning, match=f"by up to {rounding:.1e}"):
        results = model.grad_check(1e-7, 1e-7)
    assert all(r.passed for r in results), [(r.name, r.max_abs) for r in results]


def test_a_wrong_float32_backward_is_still_caught(restore_backward):
    model = FullyRecurrentNetwork(D, I, K, rng=3, init_scale=0.5, dtype=np.float32)
    model.forward(np.random.default_rng(3).uniform(-1, 1, (T, D)), 1)
    FullyRecurrentNetwork.backward = _wrong_in_dR(restore_backward)
    with pytest.warns(RuntimeWarning), pytest.raises(GradientCheckError, match=r"for R\[.*Likely cause: the backward pass"):
        model.grad_check(1e-7, 1e-7)
    # An instance's own bound method is re-bound to the float64 copy, and caught too.
    FullyRecurrentNetwork.backward = restore_backward
    model.backward = _wrong_in_dR(restore_backward).__get__(model)
    with pytest.warns(RuntimeWarning), pytest.raises(GradientCheckError, match=r"for R\["):
        model.grad_check(1e-7, 1e-7)
    # A closure over the float32 network cannot run on a copy: refused, with the way out.
    model.backward = lambda: restore_backward(model)
    with pytest.raises(ValueError, match="assign the function on the class"):
        model.grad_check(1e-7, 1e-7)


@pytest.mark.parametrize(
    "x_shape, y, y_expected",
    [
        ((T, D), 1, np.ones((1, 1))),
        ((T, D), np.array(0.0), np.zeros((1, 1))),
        ((T, D), np.array([1.0]), np.ones((1, 1))),
        ((T, D), np.ones((T, 1)), np.ones((1, T, 1))),
        ((4, T, D), 1, np.ones((4, 1))),
        ((4, T, D), np.array([1, 0, 1, 0]), np.array([[1.0], [0], [1], [0]])),
        ((4, T, D), np.zeros((4, 1)), np.zeros((4, 1))),
    ],
)
def test_target_forms_give_the_loss_of_the_explicit_form(x_shape, y, y_expected):
    model = FullyRecurrentNetwork(D, I, K, rng=9, init_scale=0.5)
    x = np.random.default_rng(9).uniform(-1, 1, x_shape)
    xb = x[None] if x.ndim == 2 else x
    assert model.forward(x, y) == model.forward(xb, y_expected)


@pytest.mark.parametrize("y", [np.zeros(3), np.zeros((T, 2)), np.zeros((2, 1)), [[[1.0]]]])
def test_target_of_another_shape_is_a_value_error_naming_the_shapes(y):
    model = FullyRecurrentNetwork(D, I, K, rng=0)
    with pytest.raises(ValueError, match=r"target y has shape .* for x of shape \(10, 3\); expected a scalar or"):
        model.forward(np.zeros((T, D)), y)


def test_scalar_target_needs_a_single_output():
    model = FullyRecurrentNetwork(D, I, 2, rng=0)
    with pytest.raises(ValueError, match=r"expected \(K,\)=\(2,\) or \(T, K\)=\(10, 2\)"):
        model.forward(np.zeros((T, D)), 1)
