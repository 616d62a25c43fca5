"""Numerical gradient check by central differences.

For every entry theta_j of every parameter, the numerical derivative is

    g_num_j = (f(theta + eps e_j) - f(theta - eps e_j)) / (2 eps)

(truncation error O(eps^2), rounding error about machine-epsilon * |f| / eps), compared
with the analytic gradient g (here: BPTT). Per parameter we report

* ``max_abs``  -- max_j |g_num_j - g_j|, and the entry ``worst`` where it occurs;
* ``rel``      -- ||g_num - g||_2 / max(||g_num||_2 + ||g||_2, tiny), a norm-wise relative
  error in [0, 1]: 0 is perfect agreement, 1 means the two vectors have nothing in common
  (e.g. one of them is zero).

``thresh`` bounds ``max_abs`` by default -- the assignment's criterion: the check fails "if any
of the analytical gradients are farther than thresh away from the numerical gradients" -- or
``rel`` with ``relative=True``. At the reference initialisation the gradients are about 1e-6
in size, so a relative bound of 1e-7 asks for 1e-13 absolute agreement, below what a central
difference in float64 delivers; the absolute bound of 1e-7 is what the notebook means.

When a parameter fails, its worst entry is examined once more to name the likely cause: the
five-point stencil at a step chosen for the dtype (error ~ eps_mach^(4/5)) gives an accurate
reference. If BPTT agrees with that reference far better than the central difference does,
the check itself was off -- eps too small for the dtype (rounding: about eps_mach |L| / eps)
or too large for the curvature (truncation) -- otherwise the backward pass is wrong.

The check is generic: it needs a zero-argument loss function that reads the parameter
arrays, which it perturbs *in place* and always restores (``try/finally``), even when the
loss function raises. NumPy only. Method: the standard central-difference check, e.g.
CS231n "Gradient checks"; the norm-wise relative error follows Ng's UFLDL tutorial.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

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
        ``max_abs <= thresh`` (or ``rel <= thresh`` when ``relative``) for the threshold the
        check was run with.
    relative : bool
        Which error ``thresh`` bounded.
    cause : str or None
        For a failed parameter, the likely cause (see the module docstring); else None.
    """

    name: str
    shape: tuple[int, ...]
    max_abs: float
    rel: float
    worst: tuple[int, ...]
    numeric: float
    analytic: float
    passed: bool
    relative: bool = False
    cause: str | None = None

    @property
    def criterion(self) -> str:
        """"absolute" or "relative": the error that ``thresh`` bounded."""
        return "relative" if self.relative else "absolute"


class GradientCheckError(AssertionError):
    """A parameter's analytic gradient disagrees with central differences.

    The message names the parameter, the worst entry, both values there, both errors and
    the likely cause.
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
    grad = np.zeros(theta.shape, dtype=np.float64)
    for idx in np.ndindex(theta.shape):
        grad[idx] = _derivative_at(f, theta, idx, eps, order)
    return grad


def _derivative_at(f: Callable[[], float], theta: np.ndarray, idx: tuple[int, ...], eps: float, order: int) -> float:
    """Finite-difference derivative of ``f`` with respect to ``theta[idx]`` (restored bit for bit)."""
    saved = theta[idx]
    diffs = []
    try:
        for k in ((1.0,) if order == 2 else (1.0, 2.0)):
            theta[idx] = saved + k * eps
            f_plus = f()
            theta[idx] = saved - k * eps
            diffs.append(f_plus - f())
    finally:
        theta[idx] = saved
    if order == 2:
        return diffs[0] / (2.0 * eps)
    return (8.0 * diffs[0] - diffs[1]) / (12.0 * eps)


def compare(name: str, numeric: np.ndarray, analytic: np.ndarray, thresh: float, relative: bool = False) -> ParamCheck:
    """Compare a numerical and an analytic gradient of the same shape.

    Parameters
    ----------
    name : str
    numeric, analytic : ndarray, same shape
    thresh : float
        Bound on the largest absolute difference (default) or, with ``relative``, on the
        norm-wise relative error, for ``passed``.
    relative : bool, default False

    Returns
    -------
    ParamCheck (``cause`` None; :func:`check_gradients` fills it in for failures)

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
    max_abs = float(diff.max()) if diff.size else 0.0
    # NaN fails both comparisons, so a NaN gradient never passes.
    return ParamCheck(
        name=name,
        shape=tuple(numeric.shape),
        max_abs=max_abs,
        rel=rel,
        worst=tuple(int(i) for i in worst),
        numeric=float(numeric[worst]) if diff.size else 0.0,
        analytic=float(analytic[worst]) if diff.size else 0.0,
        passed=bool((rel if relative else max_abs) <= thresh),
        relative=relative,
    )


def likely_cause(f: Callable[[], float], theta: np.ndarray, idx: tuple[int, ...], eps: float,
                 numeric: float, analytic: float) -> str:
    """Why a numerical and an analytic derivative disagree at one entry: the check or BPTT?

    Computes a reference derivative with the five-point stencil (truncation error
    O(h^4)) at h = eps_mach^(1/5) max(1, |theta_j|) for the dtype of ``theta``, the step that
    balances its truncation and rounding errors, and compares both values with it.

    Parameters
    ----------
    f : callable () -> float
        The loss, reading ``theta`` (perturbed in place and restored).
    theta : ndarray
        The parameter array; ``idx`` the entry.
    eps : float
        The step the failing central difference used.
    numeric, analytic : float
        The central difference at ``eps`` and the analytic derivative at the entry.

    Returns
    -------
    str, one of: "eps is too small for <dtype>: rounding ...", "eps is too large for the
    curvature here: truncation ...", or "the backward pass: ...", with the numbers.
    """
    info = np.finfo(theta.dtype)
    h = float(info.eps) ** 0.2 * max(1.0, abs(float(theta[idx])))
    ref = _derivative_at(f, theta, idx, h, order=4)
    err_numeric, err_analytic = abs(numeric - ref), abs(analytic - ref)
    if err_analytic * 10.0 <= err_numeric:
        rounding = float(info.eps) * abs(f()) / eps
        if rounding * 10.0 >= err_numeric:
            return (
                f"eps is too small for {theta.dtype}: the central difference carries a rounding error of about "
                f"{rounding:.1g} (eps_mach |L| / eps); the five-point estimate at eps={h:.1g} gives {ref:.10g}, "
                f"which the analytical value matches to {err_analytic:.1g}. Use a larger eps."
            )
        return (
            f"eps is too large for the curvature here: the central difference is off by {err_numeric:.1g} "
            f"(truncation); the five-point estimate at eps={h:.1g} gives {ref:.10g}, which the analytical value "
            f"matches to {err_analytic:.1g}. Use a smaller eps."
        )
    return (
        f"the backward pass: an independent five-point estimate at eps={h:.1g} gives {ref:.10g}, "
        f"{err_analytic:.3g} away from the analytical value as well (for BPTT, check the recurrent term "
        f"R^T delta(t+1))"
    )


def check_gradients(
    f: Callable[[], float],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    eps: float = 1e-7,
    thresh: float = 1e-7,
    order: int = 2,
    relative: bool = False,
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
    thresh : float, default 1e-7
        Bound on each parameter's largest absolute difference, or with ``relative`` on its
        norm-wise relative error (see the module docstring).
    order : {2, 4}, default 2
        Finite-difference order, see :func:`numerical_gradient`.
    relative : bool, default False

    Returns
    -------
    list of ParamCheck, in the order of ``params``; a failed one carries its likely
    ``cause`` (:func:`likely_cause`).

    Raises
    ------
    ValueError
        If ``eps`` or ``thresh`` is not a finite number > 0, a name is missing in ``grads``,
        or a gradient's shape differs from its parameter's.
    """
    if not (np.isfinite(thresh) and thresh > 0):
        raise ValueError(f"thresh must be a finite number > 0, got {thresh!r}")
    results = []
    for name, theta in params.items():
        if name not in grads:
            raise ValueError(f"no analytic gradient given for parameter {name!r}")
        numeric = numerical_gradient(f, theta, eps, order)
        r = compare(name, numeric, grads[name], thresh, relative)
        if not r.passed and theta.size:
            r = replace(r, cause=likely_cause(f, theta, r.worst, eps, r.numeric, r.analytic))
        results.append(r)
    return results


def raise_on_failure(results: list[ParamCheck], thresh: float) -> None:
    """Raise :class:`GradientCheckError` for the first parameter whose check failed.

    Raises
    ------
    GradientCheckError
        Naming the parameter and its worst entry, both values there, the absolute and the
        relative error, the bound that failed and the likely cause.
    """
    for r in results:
        if not r.passed:
            bound = "relative error" if r.relative else "absolute difference"
            raise GradientCheckError(
                f"gradient check failed for {r.name}{list(r.worst)}: numerical {r.numeric:.10g}, "
                f"analytic {r.analytic:.10g}; absolute difference {r.max_abs:.3g}, relative error {r.rel:.3g} "
                f"({bound} > thresh {thresh:g}). Likely cause: {r.cause or 'unknown'}"
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
    # The network: rnn or lstm (frnn_cli/networks.py).
    model: str = field(default="rnn", metadata={"choices": ("rnn", "lstm")})
    # LSTM only: initial bias of the forget gate.
    forget_bias: float = 1.0
    # The network's dtype. float64 by default, whatever train/sweep use: central differences
    # need the loss to ~16 digits. With float32 the network's backward is still checked on a
    # float64 copy of its weights (see RecurrentNetwork.grad_check), and the float32
    # gradients' rounding is reported beside it.
    dtype: str = field(default="float64", metadata={"choices": ("float64", "float32")})


def check_network(
    cfg: GradcheckConfig, seed: int = 0, eps: float = 1e-7, thresh: float = 1e-7, relative: bool = False
) -> tuple[list[ParamCheck], float | None]:
    """Gradient-check BPTT on a fresh random network (the RNN or, with ``model: lstm``, the LSTM)
    and a batch of task sequences.

    Draws, from ``np.random.default_rng(seed)``: the weights (uniform +-init_scale), a batch
    x (B, T, 1) of task sequences, and with ``per_step`` random 0/1 targets (B, T, K);
    otherwise the task target (B, 1) repeated over the K outputs. The network is built in
    ``cfg.dtype``; its ``backward()`` is compared with central differences for every entry
    of every parameter in float64 (for float32, on a float64 copy of the same weights:
    :meth:`frnn_cli.network.RecurrentNetwork.check_results`).

    Parameters
    ----------
    cfg : GradcheckConfig
    seed : int
    eps, thresh, relative : see :func:`check_gradients`

    Returns
    -------
    results : list of ParamCheck, one per parameter (``passed`` set from ``thresh``; nothing
        is raised)
    rounding : float or None
        For float32: the largest absolute difference between the float32 gradients and the
        float64 copy's; None for float64.

    Raises
    ------
    ValueError
        If ``eps`` or ``thresh`` is not a finite number > 0.
    """
    from frnn_cli.data import sample_batch
    from frnn_cli import networks

    rng = np.random.default_rng(seed)
    extra = {"forget_bias": cfg.forget_bias} if cfg.model == "lstm" else {}
    net = networks.get(cfg.model).network_class(1, cfg.hidden, cfg.outputs, rng=rng, init="uniform",
                                                init_scale=cfg.init_scale, dtype=np.dtype(cfg.dtype), **extra)
    x, y_end = sample_batch(rng, cfg.batch_size, cfg.T)
    if cfg.per_step:
        y = (rng.random((cfg.batch_size, cfg.T, cfg.outputs)) < 0.5).astype(np.float64)
    else:
        y = np.repeat(y_end, cfg.outputs, axis=1)
    net.forward(x, y)
    return net.check_results(eps, thresh, relative)
