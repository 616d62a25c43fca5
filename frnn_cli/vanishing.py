"""The vanishing gradient, measured: Jacobians da(t)/da(1), the bound ||R||_2^(t-1), and dL/da(t).

For the recurrence a(t) = tanh(W x(t) + R a(t-1)) the Jacobian of one step is

    da(t)/da(t-1) = diag(1 - a(t)^2) R                      (I, I)

and by the chain rule

    J(t) = da(t)/da(1) = prod_{k=t..2} diag(1 - a(k)^2) R,   J(1) = identity.

Since 0 < 1 - a^2 <= 1 and the spectral norm is submultiplicative,
||J(t)||_2 <= ||R||_2^(t-1) (Bengio, Simard & Frasconi 1994; Pascanu, Mikolov & Bengio 2013,
section 3.1). The error that BPTT sends back from the loss L = L(T) at the sequence end is

    g(T) = dL/da(T) = V^T psi,        psi = sigmoid(z(T)) - y
    g(t-1) = dL/da(t-1) = R^T ((1 - a(t)^2) * g(t)) = (da(t)/da(t-1))^T g(t),

so g(1) = J(T)^T g(T) and ||g(1)|| <= ||J(T)||_2 ||g(T)||. docs/vanishing_gradient.md derives
all of it.

Precision: the states a(t) come from the network in its own dtype (float32 or float64), but
the Jacobian products and the error vectors g(t) are always formed in float64. They shrink
like ||R||_2^(t-1) (about 0.06^(t-1) at the reference initialisation), which leaves
float32's range (underflow below about 1e-38, to 0 below 1e-45) after about 30 steps,
while float64 resolves them down to about 1e-308. A float32 state is exactly representable
in float64, so the float64 product is the Jacobian of the float32 trajectory itself, to
float64 rounding. Letters: B sequences, T time steps, D inputs, I hidden units, K outputs.
NumPy only; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from frnn_cli.model import _sigmoid, run_forward

#: Relative slack when checking ||J(t)||_2 <= ||R||_2^(t-1). Both sides carry rounding
#: errors of about (t - 1) * I * 1e-16 relative (1e-13 at t = 20, I = 32); a genuine
#: violation (a wrong Jacobian) is off by orders of magnitude more.
BOUND_RTOL = 1e-8
#: Absolute slack, for norms that have reached the subnormal range (below ~2e-308)
#: where relative precision is lost.
BOUND_ATOL = 1e-300
#: Largest (B, I, I) block of Jacobians held in memory at once, in float64 entries (64 MB).
_MAX_JACOBIAN_ENTRIES = 2**23


def spectral_norm(M: np.ndarray) -> float:
    """Largest singular value ||M||_2 of a matrix M (I, I), computed in float64 for any float M.

    In float64 so that the bound ||R||_2^(t-1) of a float32 network carries float64's
    rounding error (1e-16), not float32's (1e-7), which :data:`BOUND_RTOL` could not absorb.
    """
    return float(np.linalg.norm(M.astype(np.float64, copy=False), 2))


def spectral_radius(M: np.ndarray) -> float:
    """Largest absolute eigenvalue rho(M) of a square matrix M (I, I).

    rho(M) <= ||M||_2, and ||M^k||_2^(1/k) -> rho(M) as k grows (Gelfand's formula), so a
    long product of near-identical factors M shrinks like rho(M)^k, not ||M||_2^k.
    """
    return float(np.max(np.abs(np.linalg.eigvals(M.astype(np.float64, copy=False))))) if M.size else 0.0


def _check_x(params: dict[str, np.ndarray], x: np.ndarray) -> None:
    W = params["W"]
    if x.ndim != 3 or x.shape[2] != W.shape[1]:
        raise ValueError(f"x must have shape (B, T, D={W.shape[1]}), got {x.shape}")


def _states(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """a(0..T) time-major (T + 1, B, I) for batch-major x (B, T, D)."""
    return run_forward(params, np.ascontiguousarray(x.transpose(1, 0, 2)))


def _iter_jacobians(A: np.ndarray, R: np.ndarray) -> Iterator[np.ndarray]:
    """Yield J(t) = da(t)/da(1), (B, I, I), for t = 1..T along the trajectories A (T + 1, B, I)."""
    T, B, I = A.shape[0] - 1, A.shape[1], R.shape[0]
    R = R.astype(np.float64, copy=False)  # float64 products whatever the network's dtype (module docstring)
    J = np.broadcast_to(np.eye(I, dtype=np.float64), (B, I, I)).copy()  # J(1)
    yield J
    for t in range(2, T + 1):
        # diag(1 - a(t)^2) R J(t-1): scale the rows of R J(t-1) by 1 - a(t)^2.
        a = A[t].astype(np.float64, copy=False)
        J = (1.0 - a**2)[:, :, None] * (R @ J)
        yield J


def run_from_state(params: dict[str, np.ndarray], x: np.ndarray, a1: np.ndarray) -> np.ndarray:
    """Run the recurrence from a given state a(1), ignoring x(1).

    a(t) = tanh(W x(t) + R a(t-1)) for t = 2..T, starting from ``a1``. With
    a1 = tanh(W x(1)) this reproduces :func:`frnn_cli.model.run_forward`; perturbing ``a1``
    gives finite differences of a(t) with respect to a(1).

    Parameters
    ----------
    params : dict with "W" (I, D), "R" (I, I)
    x : ndarray (B, T, D), float
        Batch-major inputs; x[:, 0] is not used.
    a1 : ndarray (B, I), float
        The state after step 1.

    Returns
    -------
    ndarray (T, B, I), float64 (or the common dtype): row t-1 holds a(t); row 0 is ``a1``.

    Raises
    ------
    ValueError
        If x is not (B, T, D) or a1 is not (B, I).
    """
    _check_x(params, x)
    W, R = params["W"], params["R"]
    B, T, _ = x.shape
    if a1.shape != (B, R.shape[0]):
        raise ValueError(f"a1 must have shape (B, I)=({B}, {R.shape[0]}), got {a1.shape}")
    A = np.empty((T, B, R.shape[0]), dtype=np.result_type(W, x, a1))
    A[0] = a1
    for t in range(1, T):
        A[t] = np.tanh(x[:, t] @ W.T + A[t - 1] @ R.T)
    return A


def jacobian_products(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The exact Jacobians J(t) = da(t)/da(1) for every t and sequence.

    Built as products of the per-step Jacobians diag(1 - a(k)^2) R along each sequence's
    own trajectory (see the module docstring). Memory grows as T B I^2; for norms of long
    or many sequences use :func:`jacobian_norms`.

    Parameters
    ----------
    params : dict with "W" (I, D), "R" (I, I)
    x : ndarray (B, T, D), float

    Returns
    -------
    ndarray (T, B, I, I), float64: [t-1, b] is da(t)/da(1) of sequence b; [0, b] is the identity.

    Raises
    ------
    ValueError
        If x is not (B, T, D) with D matching W.
    """
    _check_x(params, x)
    return np.stack(list(_iter_jacobians(_states(params, x), params["R"])))


def _jacobian_norms_from_states(A: np.ndarray, R: np.ndarray, end_only: bool) -> np.ndarray:
    T, B = A.shape[0] - 1, A.shape[1]
    if end_only:
        J = None
        for J in _iter_jacobians(A, R):
            pass
        return np.linalg.norm(J, 2, axis=(1, 2)) if T > 1 else np.ones(B)
    norms = np.empty((T, B), dtype=np.float64)
    for t, J in enumerate(_iter_jacobians(A, R), start=1):
        norms[t - 1] = 1.0 if t == 1 else np.linalg.norm(J, 2, axis=(1, 2))
    return norms


def jacobian_norms(params: dict[str, np.ndarray], x: np.ndarray, end_only: bool = False) -> np.ndarray:
    """Spectral norms ||da(t)/da(1)||_2 for every sequence of a batch.

    The Jacobians are built exactly, as products of the per-step Jacobians
    diag(1 - a(k)^2) R along each sequence's own trajectory, and their norms taken by SVD.

    Parameters
    ----------
    params : dict with "W" (I, D), "R" (I, I)
    x : ndarray (B, T, D), float
        Batch-major input sequences.
    end_only : bool, default False
        Return only t = T (one SVD per sequence instead of T).

    Returns
    -------
    ndarray (T, B), float64: row t-1 holds ||da(t)/da(1)||_2 (row 0 is 1.0, the identity);
    with ``end_only``, shape (B,) for t = T.

    Raises
    ------
    ValueError
        If x is not (B, T, D) with D matching W.
    """
    _check_x(params, x)
    return _jacobian_norms_from_states(_states(params, x), params["R"], end_only)


def _error_vectors_from_states(A: np.ndarray, R: np.ndarray, V: np.ndarray, y: np.ndarray) -> np.ndarray:
    # float64 whatever the network's dtype: g(t) shrinks like the Jacobians (module docstring).
    A, R, V, y = (v.astype(np.float64, copy=False) for v in (A, R, V, y))
    T = A.shape[0] - 1
    G = np.empty_like(A[1:])  # (T, B, I)
    z = A[T] @ V.T  # (B, K)
    psi = _sigmoid(z) - y
    G[T - 1] = psi @ V  # g(T) = V^T psi, row-wise
    for t in range(T, 1, -1):
        # g(t-1) = R^T ((1 - a(t)^2) * g(t)); row-wise that is (...) @ R.
        G[t - 2] = ((1.0 - A[t] ** 2) * G[t - 1]) @ R
    return G


def error_vectors(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The back-propagated error g(t) = dL/da(t) of each sequence's own end loss L(T).

    g(T) = V^T psi with psi = sigmoid(z(T)) - y, and g(t-1) = R^T ((1 - a(t)^2) * g(t)),
    the BPTT recursion of :func:`frnn_cli.model.backward` without the 1/B of the batch mean
    (each sequence's loss counts alone). Related to ``backward``'s delta by
    delta(t) = (1 - a(t)^2) * g(t) / B. Source: Rumelhart, Hinton & Williams (1986); Werbos (1990).

    Parameters
    ----------
    params : dict with "W" (I, D), "R" (I, I), "V" (K, I)
    x : ndarray (B, T, D), float
    y : ndarray (B, K), float
        Targets at the sequence end.

    Returns
    -------
    ndarray (T, B, I), float64: row t-1 holds dL/da(t) for every sequence.

    Raises
    ------
    ValueError
        If x is not (B, T, D) or y is not (B, K).
    """
    _check_x(params, x)
    B, K = x.shape[0], params["V"].shape[0]
    if y.shape != (B, K):
        raise ValueError(f"y must have shape (B, K)=({B}, {K}), got {y.shape}")
    return _error_vectors_from_states(_states(params, x), params["R"], params["V"], y)


def error_norms(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean norms ||dL/da(t)||_2 of :func:`error_vectors`.

    Parameters
    ----------
    params : dict with "W" (I, D), "R" (I, I), "V" (K, I)
    x : ndarray (B, T, D), float
    y : ndarray (B, K), float

    Returns
    -------
    ndarray (T, B), float64, in nats per unit of activation.

    Raises
    ------
    ValueError
        As :func:`error_vectors`.
    """
    return np.linalg.norm(error_vectors(params, x, y), axis=2)


def jacobian_bound(R: np.ndarray, T: int) -> np.ndarray:
    """The bound ||R||_2^(t-1) for t = 1..T.

    Parameters
    ----------
    R : ndarray (I, I)
    T : int, >= 1

    Returns
    -------
    ndarray (T,), float64
    """
    return spectral_norm(R) ** np.arange(T, dtype=np.float64)


def bound_violations(
    norms: np.ndarray, bound: np.ndarray, rtol: float = BOUND_RTOL, atol: float = BOUND_ATOL
) -> np.ndarray:
    """Where a measured norm exceeds the bound beyond floating-point tolerance.

    A violation is norms[t-1, b] > bound[t-1] (1 + rtol) + atol. In exact arithmetic there
    is none, so any violation means the Jacobian or the bound was computed wrongly.

    Parameters
    ----------
    norms : ndarray (T, B), float
        ||da(t)/da(1)||_2 per step and sequence, from :func:`jacobian_norms`.
    bound : ndarray (T,), float
        ||R||_2^(t-1), from :func:`jacobian_bound`.
    rtol, atol : float
        Relative and absolute slack; see :data:`BOUND_RTOL`, :data:`BOUND_ATOL`.

    Returns
    -------
    ndarray (N, 2), int: the (t, b) pairs of the N violations, t counted from 1, b from 0.
    A NaN norm counts as a violation.
    """
    bad = ~(norms <= bound[:, None] * (1.0 + rtol) + atol)
    idx = np.argwhere(bad)
    idx[:, 0] += 1
    return idx


@dataclass(frozen=True)
class VanishingSummary:
    """Per-step summary over n sequences of length T (one row of ``vanishing.csv`` per t).

    Attributes
    ----------
    t : ndarray (T,), int
        Time steps 1..T.
    jacobian_median, jacobian_max : ndarray (T,), float64
        Median and maximum over sequences of ||da(t)/da(1)||_2.
    bound : ndarray (T,), float64
        ||R||_2^(t-1).
    error_median, error_max : ndarray (T,), float64
        Median and maximum over sequences of ||dL/da(t)||_2 for the loss at the sequence end.
    spectral_norm_R : float
        ||R||_2.
    spectral_radius_R : float
        rho(R), the largest |eigenvalue| of R; ||R^(t-1)||_2 approaches rho(R)^(t-1) for long products.
    n : int
        Number of sequences.
    violations : list of (t, b, norm, bound)
        Every step t and sequence b where ||da(t)/da(1)||_2 exceeds the bound beyond tolerance
        (see :func:`bound_violations`); empty for a correct computation.
    """

    t: np.ndarray
    jacobian_median: np.ndarray
    jacobian_max: np.ndarray
    bound: np.ndarray
    error_median: np.ndarray
    error_max: np.ndarray
    spectral_norm_R: float
    spectral_radius_R: float
    n: int
    violations: list[tuple[int, int, float, float]]

    def per_step_factor(self) -> float | None:
        """Geometric-mean shrink factor per step of the median Jacobian norm.

        (median ||da(T)/da(1)||_2)^(1 / (T - 1)); compare with ||R||_2. None for T = 1 or when
        the median norm has underflowed to 0.
        """
        T = len(self.t)
        last = float(self.jacobian_median[-1])
        if T < 2 or not last > 0:
            return None
        return float(np.exp(np.log(last) / (T - 1)))


def summarize(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> VanishingSummary:
    """Jacobian norms, their bound and the back-propagated error norms, summarised per step.

    Runs the network over the n sequences (in chunks, so memory stays under about 64 MB of
    Jacobians), computes per sequence ||da(t)/da(1)||_2 (:func:`jacobian_norms`) and
    ||dL/da(t)||_2 (:func:`error_norms`), and reduces them to median and maximum over
    sequences. Checks every sequence against ||R||_2^(t-1) (:func:`bound_violations`).

    Parameters
    ----------
    params : dict with "W" (I, D), "R" (I, I), "V" (K, I)
    x : ndarray (n, T, D), float
    y : ndarray (n, K), float
        Targets at the sequence end.

    Returns
    -------
    VanishingSummary

    Raises
    ------
    ValueError
        If the shapes of x, y and the parameters do not fit together.
    """
    _check_x(params, x)
    R, V = params["R"], params["V"]
    n, T, _ = x.shape
    if y.shape != (n, V.shape[0]):
        raise ValueError(f"y must have shape (n, K)=({n}, {V.shape[0]}), got {y.shape}")
    I = R.shape[0]
    chunk = max(1, _MAX_JACOBIAN_ENTRIES // (I * I))
    jac = np.empty((T, n))
    err = np.empty((T, n))
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        A = _states(params, x[sl])
        jac[:, sl] = _jacobian_norms_from_states(A, R, end_only=False)
        err[:, sl] = np.linalg.norm(_error_vectors_from_states(A, R, V, y[sl]), axis=2)
    bound = jacobian_bound(R, T)
    violations = [(int(t), int(b), float(jac[t - 1, b]), float(bound[t - 1])) for t, b in bound_violations(jac, bound)]
    return VanishingSummary(
        t=np.arange(1, T + 1),
        jacobian_median=np.median(jac, axis=1),
        jacobian_max=jac.max(axis=1),
        bound=bound,
        error_median=np.median(err, axis=1),
        error_max=err.max(axis=1),
        spectral_norm_R=spectral_norm(R),
        spectral_radius_R=spectral_radius(R),
        n=n,
        violations=violations,
    )
