"""The fully recurrent network (Elman / vanilla tanh RNN) and its BPTT gradients.

Letters used for shapes throughout: B sequences in a batch, T time steps, D inputs,
I hidden units, K outputs. Parameters (no biases, as in the reference model):
W (I, D) input weights, R (I, I) recurrent weights, V (K, I) read-out weights.

Forward, for t = 1..T with a(0) = 0::

    s(t) = W x(t) + R a(t-1)
    a(t) = tanh(s(t))
    z(t) = V a(t)                                   (logits)
    L(t) = softplus(z(t)) - y(t) z(t)               (= binary cross-entropy of sigmoid(z))

summed over the K outputs. With a target at the end (many-to-one, the task) the loss of a
sequence is L(T); with a target at every step (many-to-many) it is sum_t L(t). The batch
loss is the mean over the B sequences.

Backward (backpropagation through time; Rumelhart, Hinton & Williams 1986; Werbos 1990),
with delta(T+1) = 0::

    psi(t)   = dL/dz(t) = sigmoid(z(t)) - y(t)         (0 where there is no target)
    delta(t) = dL/ds(t) = (1 - a(t)^2) * (V^T psi(t) + R^T delta(t+1))
    dV = sum_t psi(t) a(t)^T,  dW = sum_t delta(t) x(t)^T,  dR = sum_t delta(t) a(t-1)^T

The term R^T delta(t+1) carries the error back through time; docs/gradients.md derives it.

Implementation notes (this is the project's hot path; benchmarks/bench_update.py times it,
benchmarks/README.md has the figures). Arrays are stored time-major, (T, B, .), so each
step reads and writes one contiguous (B, I) block. The input term W x(t) for all t
(written straight into the state array), the derivatives 1 - a(t)^2 (two in-place passes,
no temporaries) and the three weight gradients are vectorised calls outside the time loop;
dR is one GEMM over all T * B rows (in blocks of 512 rows beyond 1024). Per time step the
forward pass makes 3 NumPy calls (``np.dot`` into a scratch row, add into the state row,
tanh in place) and the backward pass 2 (multiply in place, ``np.dot`` into the error row),
plus 1 add per step when there is a target at every step. ``np.dot`` with a positional
``out`` is used rather than ``np.matmul``: at B = 1 its per-call overhead is about 0.5 us
lower, a quarter of a step; inside the time loops as the array method ``a.dot(b, out)``,
the same C routine without ``np.dot``'s ``__array_function__`` dispatch (a Python call,
~0.2 us): 6 % off the update at B = 1, 2-4 % at B = 32 (benchmarks/README.md). R is made contiguous as R^T once per call, so no product
inside the loop sees a transposed view. At B = 1 these 5 calls (about 1 us each) are the
whole per-step cost; at B >= 32 the GEMMs and tanh dominate. Many-to-one BPTT stops once
the error signal has fallen below tiny/eps of the dtype (see ``_flush_level``: it keeps
float32 out of the slow subnormal range at long T). NumPy only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from frnn_cli.network import RecurrentNetwork

PARAM_NAMES = ("W", "R", "V")

#: Rows (time steps x sequences) per GEMM block in the weight-gradient sums; see _sum_outer.
_GEMM_ROWS = 512
INITS = ("uniform", "glorot", "orthogonal")


def init_params(
    D: int,
    I: int,
    K: int,
    rng: np.random.Generator,
    init: str = "uniform",
    init_scale: float = 0.01,
    dtype: np.dtype | type = np.float64,
) -> dict[str, np.ndarray]:
    """Draw initial weights W (I, D), R (I, I), V (K, I).

    Parameters
    ----------
    D, I, K : int
        Input, hidden and output sizes, each >= 1.
    rng : np.random.Generator
        Source of every draw, in the order W, R, V.
    init : {"uniform", "glorot", "orthogonal"}
        ``uniform``: every entry U(-init_scale, init_scale) -- the reference setting with
        init_scale = 0.01. ``glorot``: every matrix U(-r, r) with r = sqrt(6 / (fan_in +
        fan_out)) (Glorot & Bengio 2010, eq. 16); init_scale is ignored. ``orthogonal``:
        W and V as glorot, R a random orthogonal matrix (QR of a Gaussian matrix with the
        signs of diag(R_qr) fixed; Saxe, McClelland & Ganguli 2014), so ||R||_2 = 1.
    init_scale : float
        Half-width of the uniform interval for ``init="uniform"``, >= 0.
    dtype : float dtype, default float64

    Returns
    -------
    dict with keys "W", "R", "V", C-contiguous arrays of ``dtype``. The draws are the same
    for every dtype (made in float64, then rounded once), so a float32 network starts at
    the float64 network's weights rounded to float32.

    Raises
    ------
    ValueError
        If a size is < 1, init_scale < 0, or ``init`` is unknown.
    """
    for name, n in (("D", D), ("I", I), ("K", K)):
        if int(n) != n or n < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if not init_scale >= 0:
        raise ValueError(f"init_scale must be >= 0, got {init_scale!r}")
    shapes = {"W": (I, D), "R": (I, I), "V": (K, I)}
    params = {}
    for name, (rows, cols) in shapes.items():
        if init == "uniform":
            r = init_scale
        else:
            r = np.sqrt(6.0 / (rows + cols))
        params[name] = rng.uniform(-r, r, size=(rows, cols))
    if init == "orthogonal":
        q, r_ = np.linalg.qr(rng.standard_normal((I, I)))
        params["R"] = q * np.sign(np.diag(r_))
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in params.items()}


@dataclass
class Cache:
    """What the backward pass needs from the forward pass (time-major arrays).

    Attributes
    ----------
    x : ndarray (T, B, D)
        Inputs.
    A : ndarray (T + 1, B, I)
        Hidden activations, A[0] = a(0) = 0 and A[t] = a(t).
    z : ndarray (B, K) or (T, B, K)
        Logits at the end (many-to-one) or at every step (many-to-many).
    y : ndarray, same shape as ``z``
        Targets.
    per_step : bool
        True for a target at every step.
    """

    x: np.ndarray
    A: np.ndarray
    z: np.ndarray
    y: np.ndarray
    per_step: bool


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # 0.5 (1 + tanh(z/2)) equals 1 / (1 + e^-z) and never overflows.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def bce_with_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of sigmoid(z) against y, computed stably from logits.

    L = y log(1 + e^-z) + (1 - y) log(1 + e^z) = softplus(z) - y z, with
    softplus(z) = log(1 + e^z) evaluated by ``np.logaddexp(0, z)`` (no overflow).

    Parameters
    ----------
    z, y : ndarray, same shape, float
        Logits and targets in [0, 1].

    Returns
    -------
    ndarray, same shape: the loss of each entry, in nats.
    """
    return np.logaddexp(0.0, z) - y * z


def run_forward(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Hidden states of the recurrence for a batch, time-major, in the parameters' dtype.

    Parameters
    ----------
    params : dict with "W" (I, D), "R" (I, I), float32 or float64 (the same dtype)
    x : ndarray (T, B, D), time-major inputs, float; converted once to W's dtype if it
        differs, so the time loop runs wholly in the network's dtype (no upcast).

    Returns
    -------
    A : ndarray (T + 1, B, I) of W's dtype, A[0] = 0 and A[t] = a(t) = tanh(W x(t) + R a(t-1)).
    """
    W, R = params["W"], params["R"]
    T, B, D = x.shape
    I = W.shape[0]
    dtype = W.dtype
    A = np.empty((T + 1, B, I), dtype=dtype)
    s = np.empty((B, I), dtype=dtype)  # scratch row
    A[0] = 0.0
    # W x(t) for every t in one call, written straight into A[1:]; np.dot with a contiguous
    # W^T is several times faster than matmul's broadcasting path (and than a broadcast
    # multiply) when D = 1, an outer product.
    np.dot(x.reshape(T * B, D).astype(dtype, copy=False), np.ascontiguousarray(W.T), out=A[1:].reshape(T * B, I))
    RT = np.ascontiguousarray(R.T, dtype=dtype)
    add, tanh = np.add, np.tanh
    # 3 NumPy calls per step.
    for a_prev, a in zip(A[:-1], A[1:]):
        a_prev.dot(RT, s)  # (B, I) = a(t-1) R^T; see the module docstring for why .dot
        add(a, s, a)  # s(t) = W x(t) + R a(t-1)
        tanh(a, a)
    return A


@functools.lru_cache(maxsize=None)
def _flush_level(dtype: np.dtype) -> float:
    """Magnitude below which a many-to-one backward pass treats the error signal as zero.

    tiny / eps of the dtype: 9.9e-32 for float32, 1.0e-292 for float64. BPTT with small
    weights shrinks dL/da(t) geometrically (by about ||R||_2 ~ 0.06 per step at the
    reference initialisation), so in float32 it reaches the subnormal range (< tiny) after
    about 25 steps, and every product with a subnormal operand or result takes a
    microcode assist on x86: the float32 update at B = 32, T = 100 ran 2.2-2.8x slower
    than with the CPU's flush-to-zero mode, and 3.7x slower than with this level
    (benchmarks/README.md). Once *every* entry of dL/da(t) is below it (checked every 8
    steps), :func:`backward` sets delta(1..t) to zero and stops. What that
    drops from each entry of dW and dR is below t * B * tiny / eps * max|x(t), a(t)|
    while ||R||_2 <= 1 (about 1e-28 in float32 at T * B = 3200), far below the rounding
    error of any gradient entry this problem produces; float64 reaches the level only
    after about 230 such steps.
    """
    info = np.finfo(dtype)
    return float(info.tiny / info.eps)


def _sum_outer(delta: np.ndarray, H: np.ndarray) -> np.ndarray:
    """sum_t delta[t]^T H[t] for (T, B, I) and (T, B, J) arrays: an (I, J) array of their dtype.

    One GEMM over the T * B stacked rows when they are at most 2 * ``_GEMM_ROWS``;
    otherwise blocks of about ``_GEMM_ROWS`` rows, summed. Measured with OpenBLAS on this
    project's machine: this tall-skinny product (K = T * B, M = I = 32, N = 32) falls to
    a third of the large-matmul rate once K reaches a few thousand, and runs 1.1-1.3x
    faster in blocks of 512 rows; at K = 640 one GEMM is faster (benchmarks/README.md).
    """
    T, B, I = delta.shape
    J = H.shape[2]
    if T * B <= 2 * _GEMM_ROWS:
        return delta.reshape(T * B, I).T @ H.reshape(T * B, J)
    steps = max(1, _GEMM_ROWS // B)  # time steps per block
    G = delta[:steps].reshape(steps * B, I).T @ H[:steps].reshape(steps * B, J)
    for t0 in range(steps, T, steps):
        t1 = min(T, t0 + steps)
        G += delta[t0:t1].reshape((t1 - t0) * B, I).T @ H[t0:t1].reshape((t1 - t0) * B, J)
    return G


def forward(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, Cache]:
    """Mean loss over a batch, and the cache for :func:`backward`.

    Parameters
    ----------
    params : dict with "W" (I, D), "R" (I, I), "V" (K, I), all float32 or all float64
    x : ndarray (B, T, D)
        Batch-major inputs.
    y : ndarray (B, K) or (B, T, K)
        Targets at the end of each sequence (many-to-one), or at every step (many-to-many).
        x and y are converted to the parameters' dtype if they differ.

    Returns
    -------
    loss : float
        Mean over the batch of L(T) (many-to-one) or of sum_t L(t) (many-to-many), in nats,
        computed in the parameters' dtype.
    cache : Cache
        Every array in it has the parameters' dtype.

    Raises
    ------
    ValueError
        If the shapes of x, y and the parameters do not fit together.
    """
    W, V = params["W"], params["V"]
    if x.ndim != 3 or x.shape[2] != W.shape[1]:
        raise ValueError(f"x must have shape (B, T, D={W.shape[1]}), got {x.shape}")
    B, T, _ = x.shape
    K = V.shape[0]
    if y.shape == (B, K):
        per_step = False
    elif y.shape == (B, T, K):
        per_step = True
    else:
        raise ValueError(f"y must have shape (B, K)=({B}, {K}) or (B, T, K)=({B}, {T}, {K}), got {y.shape}")
    dtype = W.dtype
    xt = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=dtype)  # (T, B, D)
    A = run_forward(params, xt)
    if per_step:
        yt = np.ascontiguousarray(y.transpose(1, 0, 2), dtype=dtype)  # (T, B, K)
        z = A[1:] @ V.T  # (T, B, K)
    else:
        yt = y.astype(dtype, copy=False)
        z = np.dot(A[T], V.T)  # (B, K)
    loss = float(bce_with_logits(z, yt).sum() / B)
    return loss, Cache(x=xt, A=A, z=z, y=yt, per_step=per_step)


def backward(params: dict[str, np.ndarray], cache: Cache) -> dict[str, np.ndarray]:
    """Gradients of the mean batch loss by backpropagation through time.

    Parameters
    ----------
    params : dict with "W" (I, D), "R" (I, I), "V" (K, I)
    cache : Cache from :func:`forward` with the same parameters.

    Returns
    -------
    dict with "W" (I, D), "R" (I, I), "V" (K, I): dL/dW, dL/dR, dL/dV, and
    "delta" (T, B, I): delta(t) = dL/ds(t) for every step (time-major), for inspection
    (the tests compare it with the vanishing-gradient module's error vectors). All in
    the parameters' dtype (tests/test_dtype.py checks that no call upcasts).

    Notes
    -----
    With a target at the end only, once every entry of dL/da(t) is below tiny/eps of the
    dtype (9.9e-32 in float32, 1.0e-292 in float64) delta(1..t) are returned as exactly 0
    rather than computed in the subnormal range, where x86 arithmetic is many times
    slower; the bound on what this drops is in ``_flush_level``.
    """
    R, V = params["R"], params["V"]
    A, xt = cache.A, cache.x
    T, B, D = xt.shape
    I = R.shape[0]
    psi = (_sigmoid(cache.z) - cache.y) / B  # dL/dz, with the 1/B of the batch mean
    # delta starts as tanh'(s(t)) = 1 - a(t)^2 (two in-place passes: `1 - A**2` would make
    # two fresh temporaries, several times slower at B = 256) and is overwritten, step by
    # step from t = T down to 1, with delta(t) = (1 - a(t)^2) * dL/da(t).
    A1 = A[1:]
    delta = np.empty((T, B, I), dtype=A.dtype)
    g = np.empty((B, I), dtype=A.dtype)  # the error row dL/da(t)
    np.multiply(A1, A1, delta)
    np.subtract(1.0, delta, delta)
    multiply = np.multiply
    if cache.per_step and T > 0:
        top = psi @ V  # (T, B, I): V^T psi(t) for every t
        g = top[T - 1].copy()  # dL/da(T)
        # t = T .. 2, 3 NumPy calls per step.
        for d, top_prev in zip(delta[:0:-1], top[-2::-1]):
            multiply(d, g, d)  # delta(t) = (1 - a(t)^2) * dL/da(t)
            d.dot(R, g)  # R^T delta(t): the error sent back to a(t-1)
            g += top_prev
        multiply(delta[0], g, out=delta[0])
    elif T > 0:
        np.dot(psi, V, g)  # (B, I): dL/da(T)
        flush = _flush_level(delta.dtype)
        # Row t of delta is delta(t+1). t = T-1 .. 1, 2 NumPy calls per step (+2 every 8th).
        for t in range(T - 1, 0, -1):
            d = delta[t]
            multiply(d, g, d)
            d.dot(R, g)  # now g = dL/da(t)
            if t % 8 == 0 and g.max() < flush and g.min() > -flush:
                delta[:t] = 0.0  # the error signal has vanished below the flush level
                break
        else:
            multiply(delta[0], g, out=delta[0])
    dW = delta.reshape(T * B, I).T @ xt.reshape(T * B, D)
    # a(0) = 0, so step 1 adds nothing to dR.
    dR = _sum_outer(delta[1:], A[1:T]) if T > 1 else np.zeros_like(R, dtype=delta.dtype)
    if cache.per_step:
        dV = psi.reshape(T * B, -1).T @ A1.reshape(T * B, I)
    else:
        dV = psi.T @ A[T]
    return {"W": dW, "R": dR, "V": dV, "delta": delta}


def final_logits(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Logits z(T) = V a(T) at the end of each sequence, without keeping the states for BPTT.

    Parameters
    ----------
    params : dict with "W" (I, D), "R" (I, I), "V" (K, I)
    x : ndarray (B, T, D), batch-major

    Returns
    -------
    ndarray (B, K), in the dtype of the parameters and x.

    Raises
    ------
    ValueError
        If x is not (B, T, D) with the network's D.
    """
    W = params["W"]
    if x.ndim != 3 or x.shape[2] != W.shape[1]:
        raise ValueError(f"x must have shape (B, T, D={W.shape[1]}), got {x.shape}")
    a_T = run_forward(params, np.ascontiguousarray(x.transpose(1, 0, 2)))[-1]
    return a_T @ params["V"].T


class FullyRecurrentNetwork(RecurrentNetwork):
    """A fully recurrent tanh network with a sigmoid read-out, trained by BPTT.

    Keeps the reference notebook's API (:class:`frnn_cli.network.RecurrentNetwork`):
    ``forward(x, y) -> loss`` (y may be a scalar for K = 1), ``backward() -> (dW, dR, dV)``,
    ``update(eta)``, ``grad_check(eps, thresh)``, which checks whatever ``backward`` is bound
    to the object. The maths lives in the module functions :func:`forward`,
    :func:`backward` and :func:`final_logits`.

    Parameters
    ----------
    D, I, K : int
        Input, hidden and output sizes (the task: D = 1, I = 32, K = 1).
    rng : np.random.Generator or int or None
        Generator, or seed for ``np.random.default_rng``, for the initial weights.
    init, init_scale : see :func:`init_params`. Default: uniform in [-0.01, 0.01].
    dtype : float dtype, default float64

    Attributes
    ----------
    W : ndarray (I, D)
    R : ndarray (I, I)
    V : ndarray (K, I)
    dW, dR, dV : ndarray or None
        Gradients from the last :meth:`backward`.

    Raises
    ------
    ValueError
        As :func:`init_params`.
    """

    PARAM_NAMES = PARAM_NAMES
    _forward = staticmethod(forward)
    _backward = staticmethod(backward)
    _final_logits = staticmethod(final_logits)

    def __init__(
        self,
        D: int,
        I: int,
        K: int,
        rng: np.random.Generator | int | None = None,
        init: str = "uniform",
        init_scale: float = 0.01,
        dtype: np.dtype | type = np.float64,
    ) -> None:
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        super().__init__(init_params(D, I, K, rng, init=init, init_scale=init_scale, dtype=dtype))
