"""Long short-term memory (LSTM) with a forget gate, and its BPTT gradients.

Letters used for shapes: B sequences in a batch, T time steps, D inputs, I memory cells
(the hidden size), K outputs. Parameters, with the four gates stacked in row blocks in the
order **o, i, f, g** (:data:`GATES`): rows 0..I-1 belong to the output gate o, I..2I-1 to the
input gate i, 2I..3I-1 to the forget gate f, 3I..4I-1 to the candidate g::

    W (4I, D)   input weights          R (4I, I)   recurrent weights
    b (4I,)     biases                 V (K, I)    read-out weights (no read-out bias, as the RNN)

Forward, for t = 1..T with a(0) = c(0) = 0 (sigma is the logistic function)::

    s(t) = W x(t) + R a(t-1) + b                 (4I,), blocks s_o, s_i, s_f, s_g
    o(t) = sigma(s_o)   i(t) = sigma(s_i)   f(t) = sigma(s_f)   g(t) = tanh(s_g)
    c(t) = f(t) * c(t-1) + i(t) * g(t)           the cell (the "constant error carousel")
    a(t) = o(t) * tanh(c(t))                     the output of the cells
    z(t) = V a(t)                                logits; the loss is the RNN's,
    L(t) = softplus(z(t)) - y(t) z(t)            frnn_cli.model.bce_with_logits

summed over the K outputs; many-to-one (L = L(T), the task) or many-to-many (L = sum_t L(t)),
and the batch loss is the mean over the B sequences. This is the LSTM of Hochreiter &
Schmidhuber (1997) with the forget gate of Gers, Schmidhuber & Cummins (2000) and the full
gradient (no truncation), in the form of Graves (2013, eq. 7-11) without peepholes.

Backward (BPTT). With delta_a(t) = dL/da(t), delta_c(t) = dL/dc(t), delta(t) = dL/ds(t) (4I,),
and delta(T+1) = 0, delta_c(T+1) = 0::

    psi(t)     = sigmoid(z(t)) - y(t)                            (0 where there is no target)
    delta_a(t) = V^T psi(t) + R^T delta(t+1)
    delta_c(t) = delta_a(t) * o(t) * (1 - tanh(c(t))^2) + f(t+1) * delta_c(t+1)
    delta(t)   = [ delta_a(t) * tanh(c(t)) * o(t)(1 - o(t)),     (block o)
                   delta_c(t) * g(t) * i(t)(1 - i(t)),            (block i)
                   delta_c(t) * c(t-1) * f(t)(1 - f(t)),          (block f)
                   delta_c(t) * i(t) * (1 - g(t)^2) ]             (block g)
    dW = sum_t delta(t) x(t)^T,  dR = sum_t delta(t) a(t-1)^T,  db = sum_t delta(t),
    dV = sum_t psi(t) a(t)^T

The term f(t+1) * delta_c(t+1) is the carousel: with f = 1 the error on the cell passes back
unchanged, however long the sequence. docs/lstm_gradients.md derives all of it.

Implementation notes (benchmarks/bench_lstm.py times it against PyTorch and JAX). Inside,
every step's vectors are *columns* with the B sequences side by side, as in the equations:
a(t) is stored as an (I, B) block, the gates of a step as a (4I, B) block, so each gate is a
contiguous run of rows. (In the row layout (B, 4I) of frnn_cli/model.py each gate would be a
strided (B, I) slice, which NumPy's element-wise loops handle row by row: measured 2-5x slower
per call at B = 32, on about ten calls per step.) The gate order o, i, f, g is chosen so that
every block operation of a step is one contiguous slice:

* the sigmoid gates o, i, f are rows 0..3I-1 (one tanh for all four gates, then one pass);
* i, f sit next to g, c(t-1) (each step's cell c(t-1) is stored right below its gates), so
  [i g, f c(t-1)] is one multiply and c(t) one add of its two halves;
* in the backward pass the three blocks scaled by delta_c (i, f, g) are adjacent, and
  delta_a(t) sits next to delta_c(t+1), so delta_c(t) is again one multiply and one add.

The logistic function is evaluated as sigma(s) = (1 + tanh(s / 2)) / 2: the o, i, f rows of
[R | W | b] are halved once per call (exact in binary floating point). The input term is not
computed separately: the state column of step t is [a(t-1); x(t); 1], so one GEMM with
[R | W | b] gives s(t), and one GEMM gives dR, dW and db together. Per step the forward pass
makes 8 NumPy calls and the backward pass 5 (one GEMM each). The backward pass works in
chunks of about 256 columns (steps x sequences): the derivative factors of a chunk are
computed for all its steps at once, and its share of [dR | dW | db] is one GEMM; nothing but
the outputs is allocated at full size (see :func:`backward` for why). float64 by default;
float32 stays float32 throughout (Python-float constants do not upcast under NumPy's
promotion rules). NumPy only; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import functools

from frnn_cli.model import INITS, _sigmoid, bce_with_logits
from frnn_cli.network import RecurrentNetwork

PARAM_NAMES = ("W", "R", "b", "V")
#: Steps between the checks of a many-to-one backward pass for a vanished error (see _flush_level).
_FLUSH_EVERY = 4
#: Columns (steps x sequences) per chunk of the backward pass; see :func:`backward`.
_CHUNK_COLUMNS = 256
#: Order of the gate blocks in the rows of W, R and b (each block I rows).
GATES = ("o", "i", "f", "g")


def gate_rows(gate: str, I: int) -> slice:
    """The rows of W, R and b (and of delta) that belong to ``gate``.

    Parameters
    ----------
    gate : {"o", "i", "f", "g"}
    I : int
        Number of memory cells.

    Returns
    -------
    slice of length I into the 4I rows.

    Raises
    ------
    ValueError
        If ``gate`` is not one of :data:`GATES`.
    """
    if gate not in GATES:
        raise ValueError(f"gate must be one of {', '.join(GATES)}, got {gate!r}")
    k = GATES.index(gate)
    return slice(k * I, (k + 1) * I)


def _check_sizes(D: int, I: int, K: int) -> None:
    for name, n in (("D", D), ("I", I), ("K", K)):
        if isinstance(n, bool) or int(n) != n or n < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {n!r}")


def init_params(
    D: int,
    I: int,
    K: int,
    rng: np.random.Generator,
    init: str = "uniform",
    init_scale: float = 0.01,
    forget_bias: float = 1.0,
    dtype: np.dtype | type = np.float64,
) -> dict[str, np.ndarray]:
    """Draw initial parameters W (4I, D), R (4I, I), b (4I,), V (K, I).

    Parameters
    ----------
    D, I, K : int
        Input size, number of memory cells, output size; each >= 1.
    rng : np.random.Generator
        Source of every draw, in the order W, R, V (then R's orthogonal blocks).
    init : {"uniform", "glorot", "orthogonal"}
        ``uniform``: every weight U(-init_scale, init_scale), as the RNN's reference setting.
        ``glorot``: each gate's block of W and R, and V, U(-r, r) with r = sqrt(6 / (fan_in +
        fan_out)) of that block, (I, D) or (I, I) (Glorot & Bengio 2010, eq. 16); init_scale
        is ignored. ``orthogonal``: as glorot, but each of R's four (I, I) gate blocks a random
        orthogonal matrix (QR of a Gaussian matrix with the signs of diag(R_qr) fixed;
        Saxe, McClelland & Ganguli 2014).
    init_scale : float
        Half-width of the uniform interval for ``init="uniform"``, >= 0.
    forget_bias : float, default 1.0
        Initial bias of the forget gate; every other bias starts at 0. A positive value
        starts f near 1 (sigma(1) = 0.73), so the cell keeps its content and the error
        flows back through many steps from the first update (Gers, Schmidhuber & Cummins
        2000, section 3).
    dtype : float dtype, default float64

    Returns
    -------
    dict with keys "W", "R", "b", "V", C-contiguous arrays of ``dtype``; rows in gate
    order o, i, f, g (:data:`GATES`).

    Raises
    ------
    ValueError
        If a size is < 1, init_scale < 0, forget_bias is not finite, or ``init`` is unknown.
    """
    _check_sizes(D, I, K)
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if not init_scale >= 0:
        raise ValueError(f"init_scale must be >= 0, got {init_scale!r}")
    if not np.isfinite(forget_bias):
        raise ValueError(f"forget_bias must be a finite number, got {forget_bias!r}")

    def draw(rows: int, cols: int, blocks: int) -> np.ndarray:
        # Glorot's width is per gate block: each block is its own linear map of the input.
        r = init_scale if init == "uniform" else np.sqrt(6.0 / (rows + cols))
        return rng.uniform(-r, r, size=(blocks * rows, cols))

    W = draw(I, D, 4)
    R = draw(I, I, 4)
    V = draw(K, I, 1)
    if init == "orthogonal":
        for k in range(4):
            q, r_ = np.linalg.qr(rng.standard_normal((I, I)))
            R[k * I : (k + 1) * I] = q * np.sign(np.diag(r_))
    b = np.zeros(4 * I)
    b[gate_rows("f", I)] = forget_bias
    params = {"W": W, "R": R, "b": b, "V": V}
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in params.items()}


@dataclass
class States:
    """Everything the forward pass computed, in the column layout (see the module docstring).

    Attributes
    ----------
    G : ndarray (T + 1, 5I, B)
        G[t-1] = [o(t); i(t); f(t); g(t); c(t-1)] for t = 1..T, and G[T][4I:] = c(T):
        the gates of step t (after sigma / tanh) with the cell they update below them.
    TC : ndarray (T, I, B)
        TC[t-1] = tanh(c(t)).
    H : ndarray (T + 1, I + D + 1, B)
        H[t] = [a(t); x(t+1); 1], the right operand of step t+1's GEMM with [R | W | b];
        H[T][:I] = a(T) (its other rows are unused).

    The properties give the usual time-major, batch-major views (no copies).
    """

    G: np.ndarray
    TC: np.ndarray
    H: np.ndarray

    def gate(self, name: str) -> np.ndarray:
        """Activations of one gate, o, i, f or g: a (T, B, I) view, row t-1 for step t."""
        I = self.TC.shape[1]
        return self.G[:-1, gate_rows(name, I)].transpose(0, 2, 1)

    @property
    def c(self) -> np.ndarray:
        """Cells c(0) = 0 .. c(T): a (T + 1, B, I) view."""
        I = self.TC.shape[1]
        return self.G[:, 4 * I :].transpose(0, 2, 1)

    @property
    def a(self) -> np.ndarray:
        """Outputs a(0) = 0 .. a(T): a (T + 1, B, I) view."""
        I = self.TC.shape[1]
        return self.H[:, :I].transpose(0, 2, 1)


@dataclass
class Cache:
    """What the backward pass needs from the forward pass.

    Attributes
    ----------
    states : States
    z : ndarray (K, B) or (T, K, B)
        Logits at the end (many-to-one) or at every step (many-to-many), column layout.
    y : ndarray, same shape as ``z``
        Targets.
    per_step : bool
        True for a target at every step.
    """

    states: States
    z: np.ndarray
    y: np.ndarray
    per_step: bool


def _check_x(params: dict[str, np.ndarray], x: np.ndarray) -> None:
    D = params["W"].shape[1]
    if x.ndim != 3 or x.shape[2] != D or x.shape[1] < 1:
        raise ValueError(f"x must have shape (B, T, D={D}) with T >= 1, got {x.shape}")


def _stacked(params: dict[str, np.ndarray], dtype: np.dtype) -> np.ndarray:
    """[R | W | b] (4I, I + D + 1) with the o, i, f rows halved: sigma(s) = (1 + tanh(s/2)) / 2."""
    R, W, b = params["R"], params["W"], params["b"]
    I = R.shape[1]
    M = np.concatenate([R, W, b[:, None]], axis=1).astype(dtype, copy=False)
    M[: 3 * I] *= 0.5
    return M


def run_forward(params: dict[str, np.ndarray], x: np.ndarray, keep: bool = True) -> States:
    """Run the LSTM over a batch and return its states.

    Parameters
    ----------
    params : dict with "W" (4I, D), "R" (4I, I), "b" (4I,)
    x : ndarray (B, T, D), batch-major inputs
    keep : bool, default True
        With False, the gates and cells of only the last step are kept (``G`` then holds
        2 blocks used in turn, c(T) in G[T % 2][4I:], and ``TC`` one); a(t) is kept for all
        t either way. The views of :class:`States` (``gate``, ``c``) need ``keep=True``.

    Returns
    -------
    States, in the common dtype of the parameters and x.

    Raises
    ------
    ValueError
        If x is not (B, T, D) with the network's D and T >= 1.
    """
    _check_x(params, x)
    R = params["R"]
    B, T, D = x.shape
    I = R.shape[1]
    dtype = np.result_type(R, params["W"], params["b"], x)
    M = _stacked(params, dtype)
    H = np.empty((T + 1, I + D + 1, B), dtype=dtype)
    H[0, :I] = 0.0  # a(0)
    H[:T, I : I + D] = x.transpose(1, 2, 0)
    H[T, I : I + D] = 0.0
    H[:, I + D] = 1.0
    G = np.empty((T + 1 if keep else 2, 5 * I, B), dtype=dtype)
    G[0, 4 * I :] = 0.0  # c(0)
    TC = np.empty((T if keep else 1, I, B), dtype=dtype)
    prod = np.empty((2 * I, B), dtype=dtype)  # scratch: [i g; f c(t-1)]
    ig, fc = prod[:I], prod[I:]
    # Per-step views made once (slicing inside the loop would cost about as much as a call):
    # array views when every step has its own block, lists of views when two are reused.
    if keep:
        cur, nxt, tcs = G[:-1], G[1:], TC
    else:
        cur, nxt, tcs = [G[k % 2] for k in range(T)], [G[(k + 1) % 2] for k in range(T)], [TC[0]] * T

    def rows(blocks, sl: slice):
        return blocks[:, sl] if keep else [blk[sl] for blk in blocks]

    gates, sig, o_ = rows(cur, slice(0, 4 * I)), rows(cur, slice(0, 3 * I)), rows(cur, slice(0, I))
    i_f = rows(cur, slice(I, 3 * I))
    g_c = rows(cur, slice(3 * I, 5 * I))  # [g(t); c(t-1)]
    c_next = rows(nxt, slice(4 * I, 5 * I))
    a_next = H[1:, :I]
    dot, add, multiply, tanh = np.dot, np.add, np.multiply, np.tanh
    # 8 NumPy calls per step.
    for h, s, sg, o, i_f_t, g_c_t, c, tc, a in zip(H, gates, sig, o_, i_f, g_c, c_next, tcs, a_next):
        dot(M, h, s)  # s(t) = R a(t-1) + W x(t) + b, all four gates in one GEMM (o, i, f halved)
        tanh(s, s)  # tanh(s/2) for o, i, f; g = tanh(s_g)
        multiply(sg, 0.5, sg)
        add(sg, 0.5, sg)  # o, i, f = (1 + tanh(s/2)) / 2
        multiply(i_f_t, g_c_t, prod)  # [i g; f c(t-1)]
        add(ig, fc, c)  # c(t) = f c(t-1) + i g
        tanh(c, tc)
        multiply(o, tc, a)  # a(t) = o tanh(c(t))
    return States(G=G, TC=TC, H=H)


def _parse_targets(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> bool:
    """True for targets at every step (B, T, K), False for (B, K); raises otherwise."""
    _check_x(params, x)
    B, T, _ = x.shape
    K = params["V"].shape[0]
    if y.shape == (B, K):
        return False
    if y.shape == (B, T, K):
        return True
    raise ValueError(f"y must have shape (B, K)=({B}, {K}) or (B, T, K)=({B}, {T}, {K}), got {y.shape}")


def forward(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, Cache]:
    """Mean loss over a batch, and the cache for :func:`backward`.

    Parameters
    ----------
    params : dict with "W" (4I, D), "R" (4I, I), "b" (4I,), "V" (K, I)
    x : ndarray (B, T, D)
        Batch-major inputs, float, T >= 1.
    y : ndarray (B, K) or (B, T, K)
        Targets in [0, 1] at the end of each sequence (many-to-one) or at every step
        (many-to-many).

    Returns
    -------
    loss : float
        Mean over the batch of L(T) (many-to-one) or of sum_t L(t) (many-to-many), in nats.
    cache : Cache

    Raises
    ------
    ValueError
        If the shapes of x, y and the parameters do not fit together.
    """
    per_step = _parse_targets(params, x, y)
    V = params["V"]
    B, T, _ = x.shape
    I = V.shape[1]
    st = run_forward(params, x)
    if per_step:
        yt = np.ascontiguousarray(y.transpose(1, 2, 0))  # (T, K, B)
        z = np.matmul(V, st.H[1:, :I])  # (T, K, B)
    else:
        yt = np.ascontiguousarray(y.T)  # (K, B)
        z = np.dot(V, st.H[T, :I])  # (K, B)
    loss = float(bce_with_logits(z, yt).sum() / B)
    return loss, Cache(states=st, z=z, y=yt, per_step=per_step)


def _backward_factors(st: States, k0: int = 0, k1: int | None = None, P: np.ndarray | None = None,
                      F: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Products of stored activations that BPTT needs, for steps k0 + 1 .. k1 at once.

    Writes P (k1 - k0, 4I, B) = [tanh(c) o(1-o); g i(1-i); c(t-1) f(1-f); i (1-g^2)], so that
    delta(t) = P(t) * [delta_a; delta_c; delta_c; delta_c](t), and F (k1 - k0, 2I, B) =
    [o (1 - tanh(c)^2); f(t+1)] (f(T+1) = 0), so that delta_c(t) is the sum of the two halves
    of [delta_a(t); delta_c(t+1)] * F(t). Row j belongs to step t = k0 + j + 1. In-place passes
    over the whole range only; P and F are allocated when not given.
    """
    G, TC = st.G, st.TC
    T, I, B = TC.shape
    k1 = T if k1 is None else k1
    n = k1 - k0
    P = np.empty((n, 4 * I, B), dtype=G.dtype) if P is None else P
    F = np.empty((n, 2 * I, B), dtype=G.dtype) if F is None else F
    Gt, tc = G[k0:k1], TC[k0:k1]
    sig, Psig = Gt[:, : 3 * I], P[:, : 3 * I]
    np.multiply(sig, sig, Psig)
    np.subtract(sig, Psig, Psig)  # sigma' = sigma - sigma^2 for o, i, f at once
    np.multiply(P[:, :I], tc, P[:, :I])  # o(1-o) tanh(c)
    np.multiply(P[:, I : 3 * I], Gt[:, 3 * I :], P[:, I : 3 * I])  # [i(1-i) g; f(1-f) c(t-1)]
    Pg, g, i = P[:, 3 * I :], Gt[:, 3 * I : 4 * I], Gt[:, I : 2 * I]
    np.multiply(g, g, Pg)
    np.subtract(1.0, Pg, Pg)
    np.multiply(Pg, i, Pg)  # i (1 - g^2)
    Q = F[:, :I]
    np.multiply(tc, tc, Q)
    np.subtract(1.0, Q, Q)
    np.multiply(Q, Gt[:, :I], Q)  # o (1 - tanh(c)^2)
    last = min(k1, T - 1)  # f(t+1) exists for t < T
    F[: last - k0, I:] = G[k0 + 1 : last + 1, 2 * I : 3 * I]
    F[last - k0 :, I:] = 0.0
    return P, F


def backward(params: dict[str, np.ndarray], cache: Cache) -> dict[str, np.ndarray]:
    """Gradients of the mean batch loss by backpropagation through time.

    Implements the recursion of the module docstring (docs/lstm_gradients.md derives it).

    Parameters
    ----------
    params : dict with "W" (4I, D), "R" (4I, I), "b" (4I,), "V" (K, I)
    cache : Cache from :func:`forward` with the same parameters.

    Returns
    -------
    dict with the gradients of the mean loss "W" (4I, D), "R" (4I, I), "b" (4I,), "V" (K, I)
    (C-contiguous), and, for inspection, time-major views that include the 1/B of the batch
    mean: "delta" (T, B, 4I) = dL/ds(t), "delta_c" (T, B, I) = dL/dc(t) and "delta_a"
    (T, B, I) = dL/da(t); row t-1 belongs to step t. All in the dtype of the cache.

    Notes
    -----
    The steps are processed in chunks of about ``_CHUNK_COLUMNS`` columns (steps x
    sequences), latest first: the derivative factors of a chunk are computed into the delta
    array itself just before the chunk's steps, and its share of [dR | dW | db] is one GEMM
    right after them, while it is in cache. Besides its outputs, a call allocates only
    chunk-sized scratch arrays: fresh memory costs a page fault per 4 KiB page when first
    written and more to give back, which made whole-array temporaries 3.4x slower at
    B = 32, T = 100 on this project's machine (benchmarks/README.md).

    With a target at the end only, once every entry of delta_a(t) and delta_c(t+1) is below
    tiny/eps^2 of the dtype (checked every 4 steps; see :func:`_flush_level`), the errors of
    steps 1..t are returned as exactly 0 rather than computed in the slow subnormal range.
    With the forget gate near 1 this does not happen at the lengths of the task; it guards
    float32 at long T with a forget gate well below 1.
    """
    R, V = params["R"], params["V"]
    st = cache.states
    H = st.H
    T, I, B = st.TC.shape
    J = H.shape[1]  # I + D + 1
    D = J - I - 1
    dtype = st.G.dtype
    RT = np.ascontiguousarray(R.T, dtype=dtype)  # (I, 4I)
    psi = (_sigmoid(cache.z) - cache.y) / B  # dL/dz with the 1/B of the batch mean
    # delta(t) for all t; each chunk first holds its factors P (see _backward_factors).
    delta = np.empty((T, 4 * I, B), dtype=dtype)
    # E[t-1] = [delta_c(t); delta_a(t)]; E[T][:I] = delta_c(T+1) = 0. Stored this way,
    # [delta_a(t); delta_c(t+1)] is a contiguous (2I, B) block: `pairs` views them all.
    E = np.empty((T + 1, 2 * I, B), dtype=dtype)
    E[T] = 0.0
    pairs = E.reshape((T + 1) * 2 * I, B)[I : I + 2 * T * I].reshape(T, 2 * I, B)
    if cache.per_step:
        np.matmul(V.T, psi, out=E[:T, I:])  # V^T psi(t) for every t
    else:
        np.dot(V.T, psi, out=E[T - 1, I:])
    S = max(1, min(T, _CHUNK_COLUMNS // B))  # steps per chunk
    F = np.empty((S, 2 * I, B), dtype=dtype)
    DT = np.empty((4 * I, S, B), dtype=dtype)  # a chunk of delta, transposed for the GEMM
    HT = np.empty((S, B, J), dtype=dtype)  # the matching columns [a(t-1); x(t); 1], transposed
    dM = np.zeros((4 * I, J), dtype=dtype)  # [dR | dW | db]
    prod = np.empty((2 * I, B), dtype=dtype)
    tmp = np.empty((I, B), dtype=dtype)
    qa, fc = prod[:I], prod[I:]
    dc_, da_ = E[:T, :I], E[:T, I:]
    # i, f, g are all scaled by delta_c(t): one (3, I, B) product broadcast over the blocks.
    D_o, D_ifg = delta[:, :I], delta[:, I:].reshape(T, 3, I, B)
    multiply, add, dot = np.multiply, np.add, np.dot
    flush = None if cache.per_step else _flush_level(dtype)
    flushed_at = 0  # steps 1..flushed_at were flushed to 0
    for k1 in range(T, 0, -S):
        k0 = max(0, k1 - S)
        _backward_factors(st, k0, k1, delta[k0:k1], F[: k1 - k0])
        # 5 NumPy calls per step (+1 with a target at every step, +2 every 4th step without).
        for k in range(k1 - 1, k0 - 1, -1):  # step t = k + 1
            da, dc = da_[k], dc_[k]
            multiply(pairs[k], F[k - k0], prod)  # [delta_a(t) o (1 - tanh^2 c(t)); delta_c(t+1) f(t+1)]
            add(qa, fc, dc)  # delta_c(t)
            multiply(D_ifg[k], dc, D_ifg[k])  # delta(t) for i, f, g: P * delta_c
            multiply(D_o[k], da, D_o[k])  # delta(t) for o: P * delta_a
            if k == 0:
                break
            d, da_prev = delta[k], da_[k - 1]
            if cache.per_step:
                dot(RT, d, tmp)
                add(da_prev, tmp, da_prev)  # delta_a(t-1) = V^T psi(t-1) + R^T delta(t)
            else:
                dot(RT, d, da_prev)  # delta_a(t-1) = R^T delta(t)
                if k % _FLUSH_EVERY == 0 and _below(pairs[k - 1], flush):
                    # delta_a(t-1) and delta_c(t) have both vanished below the flush level.
                    delta[:k] = 0.0
                    E[:k] = 0.0
                    flushed_at = k
                    break
        # This chunk's share of sum_t delta(t) [a(t-1); x(t); 1]^T, while it is in cache.
        n = (k1 - k0) * B
        np.copyto(DT[:, : k1 - k0], delta[k0:k1].transpose(1, 0, 2))
        np.copyto(HT[: k1 - k0], H[k0:k1].transpose(0, 2, 1))
        dM += DT.reshape(4 * I, S * B)[:, :n] @ HT.reshape(S * B, J)[:n]
        if flushed_at:
            break
    if cache.per_step:
        psiT = np.ascontiguousarray(psi.transpose(1, 0, 2)).reshape(-1, T * B)
        dV = psiT @ np.ascontiguousarray(H[1:, :I].transpose(0, 2, 1)).reshape(T * B, I)
    else:
        dV = psi @ H[T, :I].T
    return {
        "W": np.ascontiguousarray(dM[:, I : I + D]),
        "R": np.ascontiguousarray(dM[:, :I]),
        "b": np.ascontiguousarray(dM[:, I + D]),
        "V": dV,
        "delta": delta.transpose(0, 2, 1),
        "delta_c": dc_.transpose(0, 2, 1),
        "delta_a": da_.transpose(0, 2, 1),
    }


def _below(v: np.ndarray, level: float) -> bool:
    return bool(v.max() < level and v.min() > -level)


@functools.lru_cache(maxsize=None)
def _flush_level(dtype: np.dtype) -> float:
    """Magnitude below which a many-to-one backward pass treats the error signal as zero.

    tiny / eps^2 of the dtype: 8.3e-25 for float32, 4.5e-277 for float64. Products with a
    subnormal operand or result take a microcode assist on x86 and run many times slower
    (frnn_cli.model._flush_level measures it for the RNN). The LSTM's error can shrink fast:
    by 1/f per step on the cell when the forget gate f is small. Checked every
    :data:`_FLUSH_EVERY` = 4 steps, this level keeps delta_a and delta_c out of the subnormal
    range (< tiny) unless they shrink by more than eps^(-1/2) (about 2900 in float32) per
    step. What the flush drops from a gradient entry is below T * B * level * max|[a; x; 1]|
    (about 3e-21 in float32 at T * B = 3200), far below the rounding error of any gradient
    entry this problem produces.
    """
    info = np.finfo(dtype)
    return float(info.tiny / info.eps**2)


def final_logits(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Logits z(T) = V a(T) at the end of each sequence, without keeping the gates and cells.

    Parameters
    ----------
    params : dict with "W" (4I, D), "R" (4I, I), "b" (4I,), "V" (K, I)
    x : ndarray (B, T, D), batch-major, float, T >= 1

    Returns
    -------
    ndarray (B, K), in the common dtype of the parameters and x.

    Raises
    ------
    ValueError
        If x is not (B, T, D) with the network's D and T >= 1.
    """
    V = params["V"]
    st = run_forward(params, x, keep=False)
    return (V @ st.H[-1, : V.shape[1]]).T


class LSTMNetwork(RecurrentNetwork):
    """An LSTM with forget gate and a sigmoid read-out, trained by BPTT.

    The notebook API of :class:`frnn_cli.network.RecurrentNetwork`: ``forward(x, y) -> loss``
    (y may be a scalar for K = 1), ``backward() -> (dW, dR, db, dV)``, ``update(eta)``,
    ``grad_check(eps, thresh)``, ``params``. The maths lives in the module functions
    :func:`forward`, :func:`backward` and :func:`final_logits`.

    Parameters
    ----------
    D, I, K : int
        Input size, number of memory cells, output size (the task: D = 1, K = 1).
    rng : np.random.Generator or int or None
        Generator, or seed for ``np.random.default_rng``, for the initial weights.
    init, init_scale, forget_bias : see :func:`init_params`. Default: weights uniform in
        [-0.01, 0.01], forget-gate bias 1, other biases 0.
    dtype : float dtype, default float64

    Attributes
    ----------
    W : ndarray (4I, D)
    R : ndarray (4I, I)
    b : ndarray (4I,)
    V : ndarray (K, I)
        Rows of W, R, b in gate order o, i, f, g (:data:`GATES`, :func:`gate_rows`).
    dW, dR, db, dV : ndarray or None
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
        forget_bias: float = 1.0,
        dtype: np.dtype | type = np.float64,
    ) -> None:
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        params = init_params(D, I, K, rng, init=init, init_scale=init_scale, forget_bias=forget_bias, dtype=dtype)
        super().__init__(params)
