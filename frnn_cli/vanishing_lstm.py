"""The LSTM's error flow, measured: its state Jacobians over time and the errors BPTT sends back.

The counterpart of :mod:`frnn_cli.vanishing` (the RNN's) for :mod:`frnn_cli.lstm`.

The LSTM's state after step t is the pair (a(t), c(t)), and both depend on both halves of
the state before: a(t-1) enters every gate through R, c(t-1) enters c(t) directly, scaled
by f(t). The Jacobian of one step, with the gate rows of R written R_o, R_i, R_f, R_g and
each diag(.) built from the values of step t, is

    dc(t)/dc(t-1) = diag(f)
    dc(t)/da(t-1) = diag(g i(1-i)) R_i + diag(c(t-1) f(1-f)) R_f + diag(i (1-g^2)) R_g
    da(t)/dc(t-1) = diag(o (1 - tanh^2 c(t))) dc(t)/dc(t-1)
    da(t)/da(t-1) = diag(tanh c(t) o(1-o)) R_o + diag(o (1 - tanh^2 c(t))) dc(t)/da(t-1)

and the Jacobian M(t) = d(a(t), c(t)) / d(a(1), c(1)) (2I x 2I) is the product of these
block matrices from step 2 to t. Its blocks are the partial derivatives of the state at t
with respect to one half of the state at 1, the other half held: da(t)/da(1), da(t)/dc(1),
dc(t)/da(1), dc(t)/dc(1). The "carousel" is the path that stays on the cell with the gates
held fixed: prod_{k=2..t} diag(f(k)), whose spectral norm is max_j prod_k f_j(k).
Hochreiter & Schmidhuber (1997), section 4; Gers, Schmidhuber & Cummins (2000), section 3.

NumPy only; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from frnn_cli.vanishing import _MAX_JACOBIAN_ENTRIES

#: The Jacobian norms :func:`lstm_jacobian_norms` reports, keyed by name.
LSTM_JACOBIANS = ("state", "cc", "ac", "aa", "carousel")


def _lstm_states(params: dict[str, np.ndarray], x: np.ndarray):
    from frnn_cli import lstm

    lstm._check_x(params, x)
    return lstm.run_forward(params, x)


def lstm_run_from_state(params: dict[str, np.ndarray], x: np.ndarray, a1: np.ndarray, c1: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Run the LSTM recurrence from a given state (a(1), c(1)), ignoring x(1).

    s(t) = W x(t) + R a(t-1) + b; c(t) = f c(t-1) + i g; a(t) = o tanh(c(t)) for t = 2..T
    (:mod:`frnn_cli.lstm`, gate order o, i, f, g). Written plainly, one step at a time, so
    that finite differences of its output check :func:`lstm_jacobians`.

    Parameters
    ----------
    params : dict with "W" (4I, D), "R" (4I, I), "b" (4I,)
    x : ndarray (B, T, D), float
        Batch-major inputs; x[:, 0] is not used.
    a1, c1 : ndarray (B, I), float
        The state after step 1.

    Returns
    -------
    A, C : ndarray (T, B, I) each, float64 (or the common dtype): row t-1 holds a(t), c(t);
    row 0 is ``a1``, ``c1``.

    Raises
    ------
    ValueError
        If x is not (B, T, D) or a1, c1 are not (B, I).
    """
    from frnn_cli import lstm

    lstm._check_x(params, x)
    W, R, b = params["W"], params["R"], params["b"]
    B, T, _ = x.shape
    I = R.shape[1]
    for name, v in (("a1", a1), ("c1", c1)):
        if v.shape != (B, I):
            raise ValueError(f"{name} must have shape (B, I)=({B}, {I}), got {v.shape}")
    o_, i_, f_, g_ = (lstm.gate_rows(k, I) for k in "oifg")
    A = np.empty((T, B, I), dtype=np.result_type(W, x, a1, c1))
    C = np.empty_like(A)
    A[0], C[0] = a1, c1
    for t in range(1, T):
        s = x[:, t] @ W.T + A[t - 1] @ R.T + b
        sig = 1.0 / (1.0 + np.exp(-s))
        C[t] = sig[:, f_] * C[t - 1] + sig[:, i_] * np.tanh(s[:, g_])
        A[t] = sig[:, o_] * np.tanh(C[t])
    return A, C


def _iter_lstm_jacobians(params: dict[str, np.ndarray], st) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (M(t), carousel(t)) for t = 1..T: M (B, 2I, 2I) = d(a(t), c(t))/d(a(1), c(1)),
    rows and columns ordered (a, c); carousel (B, I) = prod_{k=2..t} f(k)."""
    from frnn_cli import lstm

    R = params["R"]
    T, I, B = st.TC.shape
    P, F = lstm._backward_factors(st)  # the per-step derivative factors BPTT uses, (T, ., B)
    # Column layout (., B) -> batch first (B, ., 1), to scale the rows of (B, ., 2I) blocks.
    P = P.transpose(0, 2, 1)[..., None]
    Q = F[:, :I].transpose(0, 2, 1)[..., None]
    f = st.G[:T, lstm.gate_rows("f", I)].transpose(0, 2, 1)  # (T, B, I), f(t) at row t-1
    o_, i_, f_, g_ = (lstm.gate_rows(k, I) for k in "oifg")
    M = np.broadcast_to(np.eye(2 * I), (B, 2 * I, 2 * I)).copy()
    carousel = np.ones((B, I))
    yield M, carousel
    for k in range(1, T):  # step t = k + 1
        Ma, Mc = M[:, :I], M[:, I:]
        dS = R @ Ma  # (B, 4I, 2I): ds(t)/d(state at 1), through a(t-1)
        Mc_new = f[k][..., None] * Mc + P[k, :, i_] * dS[:, i_] + P[k, :, f_] * dS[:, f_] + P[k, :, g_] * dS[:, g_]
        Ma_new = P[k, :, o_] * dS[:, o_] + Q[k] * Mc_new
        M = np.concatenate([Ma_new, Mc_new], axis=1)
        carousel = carousel * f[k]
        yield M, carousel


def lstm_jacobians(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The exact state Jacobians M(t) = d(a(t), c(t)) / d(a(1), c(1)) for every t and sequence.

    Built as the product of the per-step block Jacobians (see the comment above
    :data:`LSTM_JACOBIANS`) along each sequence's own trajectory. Memory grows as
    T B (2I)^2; for long or many sequences use :func:`lstm_jacobian_norms`.

    Parameters
    ----------
    params : dict with "W" (4I, D), "R" (4I, I), "b" (4I,)
    x : ndarray (B, T, D), float

    Returns
    -------
    ndarray (T, B, 2I, 2I), float64: [t-1, b] is M(t) of sequence b with rows (a(t), c(t)) and
    columns (a(1), c(1)); [0, b] is the identity. Its blocks: [:I, :I] = da(t)/da(1),
    [:I, I:] = da(t)/dc(1), [I:, :I] = dc(t)/da(1), [I:, I:] = dc(t)/dc(1).

    Raises
    ------
    ValueError
        If x is not (B, T, D) with the network's D and T >= 1.
    """
    st = _lstm_states(params, x)
    return np.stack([M for M, _ in _iter_lstm_jacobians(params, st)])


def _spectral_norms(M: np.ndarray) -> np.ndarray:
    """||M[b]||_2 for a stack M (B, m, n): sqrt of the largest eigenvalue of M^T M.

    The symmetric eigensolver on the Gram matrix is 2-2.5x faster than the SVD here and
    gives the *largest* singular value to full relative precision (only small ones suffer
    from the squaring). Each matrix is scaled by its largest entry first, so that the
    squares neither underflow nor overflow however small or large the Jacobian is.
    """
    scale = np.abs(M).max(axis=(-2, -1))
    safe = np.where(scale > 0, scale, 1.0)
    Ms = M / safe[..., None, None]
    top = np.linalg.eigvalsh(np.matmul(np.swapaxes(Ms, -1, -2), Ms))[..., -1]
    return np.sqrt(np.maximum(top, 0.0)) * scale


def lstm_jacobian_norms(params: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """Spectral norms of the LSTM's state Jacobian and its blocks, per step and sequence.

    Keys (:data:`LSTM_JACOBIANS`), each a (T, B) float64 array, row t-1 for step t:

    * ``state``: ||d(a(t), c(t)) / d(a(1), c(1))||_2, the whole 2I x 2I Jacobian -- the
      LSTM's counterpart of the RNN's ||da(t)/da(1)||_2;
    * ``cc``: ||dc(t)/dc(1)||_2 (a(1) held), every path included;
    * ``ac``: ||da(t)/dc(1)||_2, how a change of the cell at step 1 shows in the output at
      t (the loss at T sees the cell of step 1 through it: dL/dc(1) = (da(T)/dc(1))^T dL/da(T));
    * ``aa``: ||da(t)/da(1)||_2 (c(1) held);
    * ``carousel``: ||prod_{k=2..t} diag(f(k))||_2 = max_j prod_k f_j(k), the path
      dc(t)/dc(t-1) = diag(f(t)) alone, with the gates held fixed.

    Row 0 is 1 for ``state``, ``cc``, ``aa`` and ``carousel`` (identities) and 0 for ``ac``.
    (The fourth block, dc(t)/da(1), is in :func:`lstm_jacobians`.) Cost: five symmetric
    eigenvalue problems of size 2I or I per step and sequence.

    Parameters
    ----------
    params : dict with "W" (4I, D), "R" (4I, I), "b" (4I,)
    x : ndarray (B, T, D), float

    Returns
    -------
    dict name -> ndarray (T, B), float64

    Raises
    ------
    ValueError
        If x is not (B, T, D) with the network's D and T >= 1.
    """
    st = _lstm_states(params, x)
    return _lstm_jacobian_norms_from_states(params, st)


def _lstm_jacobian_norms_from_states(params: dict[str, np.ndarray], st) -> dict[str, np.ndarray]:
    T, I, B = st.TC.shape
    out = {k: np.empty((T, B)) for k in LSTM_JACOBIANS}
    for t, (M, car) in enumerate(_iter_lstm_jacobians(params, st)):
        out["state"][t] = _spectral_norms(M)
        out["aa"][t] = _spectral_norms(M[:, :I, :I])
        out["ac"][t] = _spectral_norms(M[:, :I, I:])
        out["cc"][t] = _spectral_norms(M[:, I:, I:])
        out["carousel"][t] = np.abs(car).max(axis=1)
    return out


def lstm_error_norms(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Norms of the errors BPTT sends back from each sequence's own end loss L(T).

    ||dL/dc(t)||_2 and ||dL/da(t)||_2 from :func:`frnn_cli.lstm.backward` (delta_c and delta_a),
    without the 1/B of the batch mean: each sequence's loss counts alone, as in
    :func:`error_norms` for the RNN.

    Parameters
    ----------
    params : dict with "W" (4I, D), "R" (4I, I), "b" (4I,), "V" (K, I)
    x : ndarray (B, T, D), float
    y : ndarray (B, K), float
        Targets at the sequence end.

    Returns
    -------
    dict with "c" and "a": ndarray (T, B), float64, row t-1 for step t, in nats per unit.

    Raises
    ------
    ValueError
        If x is not (B, T, D) or y is not (B, K).
    """
    from frnn_cli import lstm

    B, K = x.shape[0], params["V"].shape[0]
    if y.shape != (B, K):
        raise ValueError(f"y must have shape (B, K)=({B}, {K}), got {y.shape}")
    _, cache = lstm.forward(params, x, y)
    g = lstm.backward(params, cache)
    return {"c": B * np.linalg.norm(g["delta_c"], axis=2), "a": B * np.linalg.norm(g["delta_a"], axis=2)}


@dataclass(frozen=True)
class LSTMVanishingSummary:
    """Per-step summary of the LSTM's error flow over n sequences of length T.

    Attributes
    ----------
    t : ndarray (T,), int
        Time steps 1..T.
    jacobian_median, jacobian_max : dict name -> ndarray (T,), float64
        Median and maximum over sequences of each norm of :func:`lstm_jacobian_norms`
        (names :data:`LSTM_JACOBIANS`).
    error_c_median, error_c_max, error_a_median, error_a_max : ndarray (T,), float64
        Median and maximum over sequences of ||dL/dc(t)||_2 and ||dL/da(t)||_2 for the loss at
        the sequence end (:func:`lstm_error_norms`).
    n : int
        Number of sequences.
    """

    t: np.ndarray
    jacobian_median: dict[str, np.ndarray]
    jacobian_max: dict[str, np.ndarray]
    error_c_median: np.ndarray
    error_c_max: np.ndarray
    error_a_median: np.ndarray
    error_a_max: np.ndarray
    n: int


def lstm_summarize(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> LSTMVanishingSummary:
    """The LSTM's Jacobian norms and back-propagated error norms, summarised per step.

    Runs the network over the n sequences in chunks (so that the (2I)^2 Jacobians of a chunk
    stay under about 64 MB), computes per sequence the norms of :func:`lstm_jacobian_norms`
    and :func:`lstm_error_norms`, and reduces them to the median and maximum over sequences.

    Parameters
    ----------
    params : dict with "W" (4I, D), "R" (4I, I), "b" (4I,), "V" (K, I)
    x : ndarray (n, T, D), float
    y : ndarray (n, K), float
        Targets at the sequence end.

    Returns
    -------
    LSTMVanishingSummary

    Raises
    ------
    ValueError
        If the shapes of x, y and the parameters do not fit together.
    """
    from frnn_cli import lstm

    lstm._check_x(params, x)
    V = params["V"]
    n, T, _ = x.shape
    if y.shape != (n, V.shape[0]):
        raise ValueError(f"y must have shape (n, K)=({n}, {V.shape[0]}), got {y.shape}")
    I = V.shape[1]
    chunk = max(1, _MAX_JACOBIAN_ENTRIES // (4 * I * I * 4))  # M, its halves and R @ M_a
    jac = {k: np.empty((T, n)) for k in LSTM_JACOBIANS}
    err = {k: np.empty((T, n)) for k in ("c", "a")}
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        norms = _lstm_jacobian_norms_from_states(params, lstm.run_forward(params, x[sl]))
        for k in LSTM_JACOBIANS:
            jac[k][:, sl] = norms[k]
        e = lstm_error_norms(params, x[sl], y[sl])
        for k in e:
            err[k][:, sl] = e[k]
    return LSTMVanishingSummary(
        t=np.arange(1, T + 1),
        jacobian_median={k: np.median(v, axis=1) for k, v in jac.items()},
        jacobian_max={k: v.max(axis=1) for k, v in jac.items()},
        error_c_median=np.median(err["c"], axis=1),
        error_c_max=err["c"].max(axis=1),
        error_a_median=np.median(err["a"], axis=1),
        error_a_max=err["a"].max(axis=1),
        n=n,
    )


def lstm_end_jacobian_norms(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """||d(a(T), c(T)) / d(a(1), c(1))||_2 of each sequence: the LSTM's whole state Jacobian
    over the sequence, at its end only.

    The counterpart of ``jacobian_norms(params, x, end_only=True)`` for the RNN, used as the
    ``jacobian_norm`` column of a training run's metrics: the product of the per-step
    Jacobians is formed as in :func:`lstm_jacobian_norms`, but its spectral norm is taken
    once, at t = T (one 2I x 2I eigenvalue problem per sequence instead of T).

    Parameters
    ----------
    params : dict with "W" (4I, D), "R" (4I, I), "b" (4I,)
    x : ndarray (B, T, D), float

    Returns
    -------
    ndarray (B,), float64; 1.0 when T = 1.

    Raises
    ------
    ValueError
        If x is not (B, T, D) with the network's D and T >= 1.
    """
    st = _lstm_states(params, x)
    M = None
    for M, _ in _iter_lstm_jacobians(params, st):
        pass
    return _spectral_norms(M)
