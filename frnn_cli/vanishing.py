"""The vanishing gradient, measured: Jacobians da(t)/da(1) and the bound ||R||_2^(t-1).

For the recurrence a(t) = tanh(W x(t) + R a(t-1)) the Jacobian of one step is

    da(t)/da(t-1) = diag(1 - a(t)^2) R                      (I, I)

and by the chain rule

    J(t) = da(t)/da(1) = prod_{k=t..2} diag(1 - a(k)^2) R,   J(1) = identity.

Since 0 < 1 - a^2 <= 1 and the spectral norm is submultiplicative,
||J(t)||_2 <= ||R||_2^(t-1) (Bengio, Simard & Frasconi 1994; Pascanu, Mikolov & Bengio 2013,
section 3.1). docs/vanishing_gradient.md derives it. NumPy only; no I/O.
"""

from __future__ import annotations

import numpy as np

from frnn_cli.model import run_forward


def spectral_norm(M: np.ndarray) -> float:
    """Largest singular value ||M||_2 of a matrix M (I, I)."""
    return float(np.linalg.norm(M, 2))


def jacobian_norms(params: dict[str, np.ndarray], x: np.ndarray, end_only: bool = False) -> np.ndarray:
    """Spectral norms ||da(t)/da(1)||_2 for every sequence of a batch.

    The Jacobians are built exactly, as products of the per-step Jacobians
    diag(1 - a(k)^2) R along each sequence's own trajectory.

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
    W, R = params["W"], params["R"]
    if x.ndim != 3 or x.shape[2] != W.shape[1]:
        raise ValueError(f"x must have shape (B, T, D={W.shape[1]}), got {x.shape}")
    B, T, _ = x.shape
    I = R.shape[0]
    A = run_forward(params, np.ascontiguousarray(x.transpose(1, 0, 2)))  # (T+1, B, I)
    J = np.broadcast_to(np.eye(I), (B, I, I)).copy()  # J(1)
    norms = None if end_only else np.empty((T, B))
    if norms is not None:
        norms[0] = 1.0
    for t in range(2, T + 1):
        # diag(1 - a(t)^2) R J(t-1): scale the rows of R J(t-1) by 1 - a(t)^2.
        J = (1.0 - A[t] ** 2)[:, :, None] * (R @ J)
        if norms is not None:
            norms[t - 1] = np.linalg.norm(J, 2, axis=(1, 2))
    if end_only:
        return np.linalg.norm(J, 2, axis=(1, 2)) if T > 1 else np.ones(B)
    return norms


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
