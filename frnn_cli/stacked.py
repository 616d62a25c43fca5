"""Forward passes of many candidate networks at once, on the same sequences: the engine of
random weight guessing (:mod:`frnn_cli.guess`), which judges thousands of drawn networks.

Letters: N candidate networks, S sequences, T time steps, D inputs, I hidden units, K outputs.

Stacked forward pass. N candidates run at once on the same S sequences; the state is
held as (N, I, S), time-major over the loop, so each step is one batched product
R a(t-1) over all candidates (``np.matmul``: one GEMM of (I, I) x (I, S) per candidate,
looped in C), the input term W x(t) (one GEMM (N I, D) x (D, S): x(t) is shared), one add and
``np.tanh`` in place -- 4 NumPy calls per step whatever N is. In a one-off timing while
writing this module, the batched product R a ran 1.0-1.4x faster with the state as
(N, I, S) than as (N, S, I). Candidates are processed in blocks whose state stays near
:data:`STATE_BYTES`, so memory does not grow with N. Stacking saves NumPy call overhead,
not arithmetic: at S = 256 a single candidate's forward pass is already batched over the
sequences, so the gain is largest for small I and small T (benchmarks/README.md).

Rounding and chaos. With weights of order 1 the recurrence can be chaotic: for 32 hidden
units and U(-1, 1) weights a change of 1e-14 in x at t = 50 moved z(100) by ~3e-7
(measured), so at long T two implementations agree only if they round alike. This pass
keeps the model's operations in the model's order (W x(t) by itself, then + R a(t-1),
then tanh), and on this project's machine it reproduces ``run_forward`` bit for bit in
the recurrence; folding W x(t) into the GEMM as an extra column of R would save one pass
(1.0-1.3x, measured) but gave logits 1e-2 apart at T = 100 in that setting. A winner
classifies all screening sequences by a margin, so the search's outcome does not hinge
on rounding; a failing chaotic candidate's logits are not reproducible across BLAS
builds and nothing depends on them.

NumPy only: no printing, no files.
"""

from __future__ import annotations

import numpy as np

#: Target size in bytes of one block's hidden state (N, I, S) in :func:`stacked_logits`;
#: one more buffer of this size (R a) is live. Measured on this project's machine (AMD EPYC,
#: 1 MiB L2 per core; benchmarks/bench_guess.py --chunks): blocks of 256-512 KiB run
#: 1.1-1.5x faster than blocks of 2-8 MiB, whose two buffers no longer fit in L2.
STATE_BYTES = 256 * 2**10


def block_size(S: int, I: int, itemsize: int = 8) -> int:
    """Candidates per block so that one block's state (N, I, S) is about STATE_BYTES.

    Parameters
    ----------
    S, I : int
        Screening sequences and hidden units, >= 1.
    itemsize : int
        Bytes per value (8 for float64, 4 for float32).

    Returns
    -------
    int, >= 1.
    """
    return max(1, STATE_BYTES // (S * I * itemsize))


def _check_stack(params: dict[str, np.ndarray]) -> tuple[int, int, int, int]:
    W, R, V = params["W"], params["R"], params["V"]
    if W.ndim != 3 or R.ndim != 3 or V.ndim != 3:
        raise ValueError(
            f"stacked params need W (N, I, D), R (N, I, I), V (N, K, I); got {W.shape}, {R.shape}, {V.shape}"
        )
    N, I, D = W.shape
    K = V.shape[1]
    if R.shape != (N, I, I) or V.shape != (N, K, I):
        raise ValueError(f"R must be (N, I, I)=({N}, {I}, {I}) and V (N, K, I)=({N}, K, {I}); got {R.shape}, {V.shape}")
    return N, I, D, K


def stacked_logits(params: dict[str, np.ndarray], x: np.ndarray, block: int | None = None) -> np.ndarray:
    """Logits z(T) = V a(T) of N candidate networks on the same S sequences, at once.

    For every candidate n, with a(0) = 0 and t = 1..T::

        a_n(t) = tanh(W_n x(t) + R_n a_n(t-1)),    z_n(T) = V_n a_n(T)

    the recurrence of :func:`frnn_cli.model.run_forward`, evaluated for all candidates
    of a block with one batched matmul per time step (see the module notes). Equal to
    ``FullyRecurrentNetwork.logits`` per candidate up to rounding (bit for bit in the
    recurrence on this project's machine); where a candidate's dynamics are chaotic,
    rounding differences grow with T (module notes).

    Parameters
    ----------
    params : dict
        "W" (N, I, D), "R" (N, I, I), "V" (N, K, I), float arrays.
    x : ndarray (S, T, D)
        Batch-major task sequences, T >= 1.
    block : int or None
        Candidates run together; default :func:`block_size` (S, I), about
        :data:`STATE_BYTES` of state. A candidate's logits do not depend on it (each
        candidate's products are separate GEMM calls of the same shape).

    Returns
    -------
    z : ndarray (N, S, K), dtype ``np.result_type`` of the parameters and x.

    Raises
    ------
    ValueError
        If the shapes of the parameters and x do not fit together.
    """
    N, I, D, K = _check_stack(params)
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != D or x.shape[1] < 1:
        raise ValueError(f"x must have shape (S, T >= 1, D={D}), got {x.shape}")
    S, T, _ = x.shape
    dt = np.result_type(params["W"], params["R"], params["V"], x)
    xT = np.ascontiguousarray(x.transpose(1, 2, 0), dtype=dt)  # (T, D, S)
    z = np.empty((N, S, K), dtype=dt)
    nb = block_size(S, I, dt.itemsize) if block is None else max(1, int(block))
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        block = {k: np.ascontiguousarray(params[k][n0:n1], dtype=dt) for k in ("W", "R", "V")}
        z[n0:n1] = _block_logits(block, xT).transpose(0, 2, 1)
    return z


def _block_logits(p: dict[str, np.ndarray], xT: np.ndarray) -> np.ndarray:
    """z (N, K, S) for one block of contiguous stacked params and xT (T, D, S)."""
    W, R, V = p["W"], p["R"], p["V"]
    N, I, D = W.shape
    T, _, S = xT.shape
    a = np.empty((N, I, S), dtype=xT.dtype)  # a(t), overwritten in place each step
    Ra = np.empty_like(a)  # R a(t-1)
    # W x(t) for all candidates at once: x(t) is shared, so it is one GEMM
    # (N I, D) x (D, S) written straight into a; for D = 1 an outer product, each entry a
    # single product as in the model. np.dot on the 2-D views beat a broadcast multiply
    # (1.4-1.5x on this step) and matmul's batched K = 1 products (4-7x) when measured.
    W2, a2 = W.reshape(N * I, D), a.reshape(N * I, S)
    matmul, dot, add, tanh = np.matmul, np.dot, np.add, np.tanh
    dot(W2, xT[0], a2)  # a(0) = 0, so s(1) = W x(1)
    tanh(a, out=a)
    for t in range(1, T):
        matmul(R, a, out=Ra)
        dot(W2, xT[t], a2)  # W x(t); a(t-1) is no longer needed
        add(a, Ra, out=a)
        tanh(a, out=a)
    return matmul(V, a)  # (N, K, S)


def stacked_lstm_logits(params: dict[str, np.ndarray], x: np.ndarray, block: int | None = None) -> np.ndarray:
    """Logits z(T) = V a(T) of N candidate LSTMs (:mod:`frnn_cli.lstm`) on the same S sequences.

    For every candidate n, with a(0) = c(0) = 0, t = 1..T and the gate rows in the order
    o, i, f, g of :data:`frnn_cli.lstm.GATES`::

        s = W x(t) + R a(t-1) + b;  c(t) = f c(t-1) + i g;  a(t) = o tanh(c(t))

    with o, i, f = sigma(s_o, s_i, s_f) and g = tanh(s_g), all candidates of a block at once:
    per step one batched product R a(t-1), one product for W x(t), and a few element-wise
    passes, whatever N is. Equal to :func:`frnn_cli.lstm.final_logits` per candidate up to
    rounding (the LSTM module evaluates the same equations in another order).

    Parameters
    ----------
    params : dict
        "W" (N, 4I, D), "R" (N, 4I, I), "b" (N, 4I), "V" (N, K, I), float arrays.
    x : ndarray (S, T, D)
    block : int or None
        Candidates run together; default :func:`block_size` (S, 4I).

    Returns
    -------
    z : ndarray (N, S, K)

    Raises
    ------
    ValueError
        If the shapes do not fit together.
    """
    W, R, b, V = params["W"], params["R"], params["b"], params["V"]
    if W.ndim != 3 or R.ndim != 3 or b.ndim != 2 or V.ndim != 3:
        raise ValueError(f"stacked LSTM params need W (N, 4I, D), R (N, 4I, I), b (N, 4I), V (N, K, I); got "
                         f"{W.shape}, {R.shape}, {b.shape}, {V.shape}")
    N, G, D = W.shape
    I, K = G // 4, V.shape[1]
    if G != 4 * I or R.shape != (N, G, I) or b.shape != (N, G) or V.shape[:2] != (N, K) or V.shape[2] != I:
        raise ValueError(f"stacked LSTM params do not fit together: {W.shape}, {R.shape}, {b.shape}, {V.shape}")
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != D or x.shape[1] < 1:
        raise ValueError(f"x must have shape (S, T >= 1, D={D}), got {x.shape}")
    S, T, _ = x.shape
    dt = np.result_type(W, R, b, V, x)
    xT = np.ascontiguousarray(x.transpose(1, 2, 0), dtype=dt)  # (T, D, S)
    z = np.empty((N, S, K), dtype=dt)
    nb = block_size(S, G, dt.itemsize) if block is None else max(1, int(block))
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        Wb, Rb = np.ascontiguousarray(W[n0:n1], dtype=dt), np.ascontiguousarray(R[n0:n1], dtype=dt)
        bb = np.ascontiguousarray(b[n0:n1], dtype=dt)[:, :, None]
        n = n1 - n0
        a = np.zeros((n, I, S), dtype=dt)
        c = np.zeros((n, I, S), dtype=dt)
        W2 = Wb.reshape(n * G, D)
        for t in range(T):
            s_ = np.matmul(Rb, a)  # (n, 4I, S)
            s_ += np.dot(W2, xT[t]).reshape(n, G, S)
            s_ += bb
            sig = 0.5 * (1.0 + np.tanh(0.5 * s_[:, :3 * I]))  # o, i, f
            g = np.tanh(s_[:, 3 * I:])
            c = sig[:, 2 * I:3 * I] * c + sig[:, I:2 * I] * g
            a = sig[:, :I] * np.tanh(c)
        z[n0:n1] = np.matmul(V[n0:n1].astype(dt, copy=False), a).transpose(0, 2, 1)
    return z


#: The stacked forward pass of each model.
STACKED_LOGITS = {"rnn": stacked_logits, "lstm": stacked_lstm_logits}


def count_correct(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Correctly classified sequences per candidate.

    A sequence is correct when every output's class, z > 0 <=> target 1, matches its
    target (for K = 1 the rule of :func:`frnn_cli.train.evaluate`).

    Parameters
    ----------
    z : ndarray (N, S, K), logits
    y : ndarray (S, K), targets 0.0 or 1.0

    Returns
    -------
    ndarray (N,), int64.
    """
    return np.count_nonzero(((z > 0.0) == (y > 0.5)).all(axis=2), axis=1)
