"""Numerical gradient check by central differences.

For every entry theta_j of every parameter, the numerical derivative is

    g_num_j = (f(theta + eps e_j) - f(theta - eps e_j)) / (2 eps)

(truncation error O(eps^2), rounding error about machine-epsilon * |f| / eps), compared
with the analytic gradient g (here: BPTT). Per parameter we report

* ``max_abs``  -- max_j |g_num_j - g_j|, and the entry ``worst`` where it occurs;
* ``rel``      -- ||g_num - g||_2 / max(||g_num||_2 + ||g||_2, tiny), a norm-wise relative
  error in [0, 1]: 0 is perfect agreement, 1 means the two vectors have nothing in common
  (e.g. one of them is zero). This is the quantity that ``thresh`` bounds.

The check is generic: it needs a zero-argument loss function that reads the parameter
arrays, which it perturbs *in place* and always restores (``try/finally``), even when the
loss function raises. NumPy only. Method: the standard central-difference check, e.g.
CS231n "Gradient checks"; the norm-wise relative error follows Ng's UFLDL tutorial.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

_TINY = 1e-300


@dataclass(frozen=True)
class ParamCheck:
    """Result of the gradient check for one parameter array.

    Attributes
    ----------
    name : str
        Parameter name (``"W"``, ``"R"``, ``"V"``).
    shape : tuple of int
        Shape of the parameter, e.g. (I, D) for W.
    max_abs : float
        Largest absolute difference between numerical and analytic entries.
    rel : float
        Norm-wise relative error ||g_num - g||_2 / (||g_num||_2 + ||g||_2), in [0, 1].
    worst : tuple of int
        Index of the entry with the largest absolute difference.
    numeric : float
        Numerical derivative at ``worst``.
    analytic : float
        Analytic derivative at ``worst``.
    passed : bool
        ``rel <= thresh`` for the threshold the check was run with.
    """

    name: str
    shape: tuple[int, ...]
    max_abs: float
    rel: float
    worst: tuple[int, ...]
    numeric: float
    analytic: float
    passed: bool


class GradientCheckError(AssertionError):
    """A parameter's analytic gradient disagrees with central differences.

    The message names the parameter, the worst entry, and both values there.
    """


def numerical_gradient(f: Callable[[], float], theta: np.ndarray, eps: float, order: int = 2) -> np.ndarray:
    """Finite-difference gradient of ``f`` with respect to every entry of ``theta``.

    ``order=2`` is the central difference (f(+eps) - f(-eps)) / (2 eps), truncation error
    O(eps^2). ``order=4`` is the five-point stencil
    (8 (f(+eps) - f(-eps)) - (f(+2 eps) - f(-2 eps))) / (12 eps), truncation error O(eps^4),
    which allows a larger eps and so less rounding error (Abramowitz & Stegun 25.3.6).

    Parameters
    ----------
    f : callable () -> float
        Loss as a function of the current contents of ``theta`` (and other arrays).
    theta : ndarray, any shape, float dtype
        Parameter array, perturbed in place one entry at a time and always restored
        bit for bit (the saved value is written back, not ``theta + eps - eps``).
    eps : float
        Step size, > 0.
    order : {2, 4}
        Order of the truncation error.

    Returns
    -------
    ndarray, same shape as ``theta``, float64

    Raises
    ------
    ValueError
        If ``eps`` is not a finite number > 0 or ``order`` is not 2 or 4.
    """
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order!r}")
    steps = (1.0,) if order == 2 else (1.0, 2.0)
    grad = np.zeros(theta.shape, dtype=np.float64)
    for idx in np.ndindex(theta.shape):
        saved = theta[idx]
        diffs = []
        try:
            for k in steps:
                theta[idx] = saved + k * eps
                f_plus = f()
                theta[idx] = saved - k * eps
                diffs.append(f_plus - f())
        finally:
            theta[idx] = saved
        if order == 2:
            grad[idx] = diffs[0] / (2.0 * eps)
        else:
            grad[idx] = (8.0 * diffs[0] - diffs[1]) / (12.0 * eps)
    return grad


def compare(name: str, numeric: np.ndarray, analytic: np.ndarray, thresh: float) -> ParamCheck:
    """Compare a numerical and an analytic gradient of the same shape.

    Parameters
    ----------
    name : str
    numeric, analytic : ndarray, same shape
    thresh : float
        Bound on the norm-wise relative error for ``passed``.

    Returns
    -------
    ParamCheck

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    numeric = np.asarray(numeric, dtype=np.float64)
    analytic = np.asarray(analytic, dtype=np.float64)
    if numeric.shape != analytic.shape:
        raise ValueError(f"{name}: numerical gradient has shape {numeric.shape}, analytic {analytic.shape}")
    diff = np.abs(numeric - analytic)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
    denom = max(float(np.linalg.norm(numeric) + np.linalg.norm(analytic)), _TINY)
    rel = float(np.linalg.norm(numeric - analytic)) / denom
    return ParamCheck(
        name=name,
        shape=tuple(numeric.shape),
        max_abs=float(diff.max()) if diff.size else 0.0,
        rel=rel,
        worst=tuple(int(i) for i in worst),
        numeric=float(numeric[worst]) if diff.size else 0.0,
        analytic=float(analytic[worst]) if diff.size else 0.0,
        passed=bool(rel <= thresh),
    )


def check_gradients(
    f: Callable[[], float],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    eps: float = 1e-7,
    thresh: float = 1e-6,
    order: int = 2,
) -> list[ParamCheck]:
    """Check analytic gradients of ``f`` against central differences, parameter by parameter.

    Parameters
    ----------
    f : callable () -> float
        Loss evaluated at the current contents of the arrays in ``params``.
    params : mapping name -> ndarray
        The parameter arrays ``f`` reads (perturbed in place, always restored).
    grads : mapping name -> ndarray
        Analytic gradients, same names and shapes as ``params``.
    eps : float, default 1e-7
        Central-difference step, > 0.
    thresh : float, default 1e-6
        Bound on each parameter's norm-wise relative error (see module docstring).
    order : {2, 4}, default 2
        Finite-difference order, see :func:`numerical_gradient`.

    Returns
    -------
    list of ParamCheck, in the order of ``params``.

    Raises
    ------
    ValueError
        If ``eps`` or ``thresh`` is not a finite number > 0, or a name is missing in ``grads``.
    """
    if not (np.isfinite(thresh) and thresh > 0):
        raise ValueError(f"thresh must be a finite number > 0, got {thresh!r}")
    results = []
    for name, theta in params.items():
        if name not in grads:
            raise ValueError(f"no analytic gradient given for parameter {name!r}")
        numeric = numerical_gradient(f, theta, eps, order)
        results.append(compare(name, numeric, grads[name], thresh))
    return results


def raise_on_failure(results: list[ParamCheck], thresh: float) -> None:
    """Raise :class:`GradientCheckError` for the first parameter whose check failed.

    Raises
    ------
    GradientCheckError
        Naming the parameter, its worst entry, both values there and the relative error.
    """
    for r in results:
        if not r.passed:
            raise GradientCheckError(
                f"gradient check failed for {r.name}{list(r.worst)}: numerical {r.numeric:.10g}, "
                f"analytic {r.analytic:.10g} (relative error {r.rel:.3g} > thresh {thresh:g})"
            )


@dataclass
class GradcheckConfig:
    """Settings of ``frnn gradcheck``: a small random network on task data.

    The defaults make tanh clearly non-linear (weights U(-0.5, 0.5), |s| of order 1), so
    the check exercises every factor 1 - a^2 and the recurrent term R^T delta(t+1).
    """

    # Sequence length T.
    T: int = field(default=8, metadata={"min": 1})
    # Hidden size I.
    hidden: int = field(default=6, metadata={"min": 1})
    # Sequences in the batch B.
    batch_size: int = field(default=3, metadata={"min": 1})
    # Output size K.
    outputs: int = field(default=1, metadata={"min": 1})
    # Target at every step (many-to-many) instead of at the end only.
    per_step: bool = False
    # Half-width of the uniform initialisation.
    init_scale: float = field(default=0.5, metadata={"gt": 0})


def check_network(
    cfg: GradcheckConfig, seed: int = 0, eps: float = 1e-7, thresh: float = 1e-6
) -> list[ParamCheck]:
    """Gradient-check BPTT on a fresh random network and a batch of task sequences.

    Draws, from ``np.random.default_rng(seed)``: the weights (uniform +-init_scale), a batch
    x (B, T, 1) of task sequences, and with ``per_step`` random 0/1 targets (B, T, K);
    otherwise the task target (B, 1) repeated over the K outputs. Then compares BPTT with
    central differences for every entry of W, R, V.

    Returns
    -------
    list of ParamCheck for W, R, V (``passed`` set from ``thresh``; nothing is raised).

    Raises
    ------
    ValueError
        If ``eps`` or ``thresh`` is not a finite number > 0.
    """
    from frnn_cli import model
    from frnn_cli.data import sample_batch

    rng = np.random.default_rng(seed)
    params = model.init_params(1, cfg.hidden, cfg.outputs, rng, init="uniform", init_scale=cfg.init_scale)
    x, y_end = sample_batch(rng, cfg.batch_size, cfg.T)
    if cfg.per_step:
        y = (rng.random((cfg.batch_size, cfg.T, cfg.outputs)) < 0.5).astype(np.float64)
    else:
        y = np.repeat(y_end, cfg.outputs, axis=1)
    _, cache = model.forward(params, x, y)
    grads = model.backward(params, cache)
    return check_gradients(lambda: model.forward(params, x, y)[0], params, grads, eps, thresh)
