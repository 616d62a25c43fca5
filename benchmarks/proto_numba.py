"""Prototype, not used by frnn: one training update compiled whole with Numba.

Issue 15 asked whether an optional compiled kernel would pay. This script compiles one
update -- forward, BPTT and the SGD step, many-to-one, one ``@numba.njit`` function with
``np.dot`` for the products and plain loops for tanh and the elementwise work -- checks it
against frnn's NumPy path (float64, relative 1e-12), and times both on one thread in
interleaved blocks. Numba is not a dependency of frnn: without it the script says so and
exits 0 (``pip install numba`` to run it).

    python benchmarks/proto_numba.py
    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" python benchmarks/proto_numba.py

benchmarks/README.md has the figures and why it was not built. Letters: B sequences,
T time steps, D = 1 input, I = 32 hidden, K = 1 output.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from frnn_cli import model  # noqa: E402
from frnn_cli.data import sample_batch  # noqa: E402
from frnn_cli.optim import SGD  # noqa: E402

try:
    import numba
except ImportError:  # optional
    numba = None


def _update(W, R, V, xt, y, lr):
    """One SGD update in place; W (I, 1), R (I, I), V (1, I), xt (T, B, 1), y (B, 1). Returns the mean loss."""
    T, B, _ = xt.shape
    I = R.shape[0]
    A = np.zeros((T + 1, B, I), W.dtype)
    RT = np.ascontiguousarray(R.T)
    for t in range(T):
        s = np.dot(A[t], RT)
        for b in range(B):
            xv = xt[t, b, 0]
            for i in range(I):
                A[t + 1, b, i] = math.tanh(s[b, i] + W[i, 0] * xv)
    z = np.dot(A[T], np.ascontiguousarray(V.T))  # (B, 1)
    loss = 0.0
    psi = np.empty((B, 1), W.dtype)
    for b in range(B):
        zb = z[b, 0]
        loss += max(zb, 0.0) + math.log1p(math.exp(-abs(zb))) - y[b, 0] * zb
        psi[b, 0] = (0.5 * (1.0 + math.tanh(0.5 * zb)) - y[b, 0]) / B
    g = np.dot(psi, V)  # dL/da(T), (B, I)
    dW = np.zeros((I, 1), W.dtype)
    dR = np.zeros((I, I), W.dtype)
    d = np.empty((B, I), W.dtype)
    for t in range(T, 0, -1):
        for b in range(B):
            for i in range(I):
                a = A[t, b, i]
                d[b, i] = (1.0 - a * a) * g[b, i]
        dW += np.dot(d.T.copy(), xt[t - 1])
        if t > 1:
            dR += np.dot(d.T.copy(), A[t - 1])
            g = np.dot(d, R)
    dV = np.dot(psi.T.copy(), A[T])
    W -= lr * dW
    R -= lr * dR
    V -= lr * dV
    return loss / B


def main() -> int:
    if numba is None:
        print("numba is not installed: nothing to measure (pip install numba)")
        return 0
    update = numba.njit(cache=False)(_update)
    rng = np.random.default_rng(1)
    p = model.init_params(1, 32, 1, rng, init="glorot")
    x, y = sample_batch(rng, 8, 10)
    q = {k: v.copy() for k, v in p.items()}
    update(q["W"], q["R"], q["V"], np.ascontiguousarray(x.transpose(1, 0, 2)), y, 0.5)
    _, c = model.forward(p, x, y)
    SGD(0.5).step(p, model.backward(p, c))
    for k in model.PARAM_NAMES:
        np.testing.assert_allclose(q[k], p[k], rtol=1e-12, atol=1e-15, err_msg=k)
    print(f"numba {numba.__version__}: the compiled update matches the NumPy path (float64, relative 1e-12)")
    for dtn in ("float64", "float32"):
        dt = np.dtype(dtn)
        for B in (1, 32, 256):
            rng = np.random.default_rng(0)
            p = model.init_params(1, 32, 1, rng, dtype=dt)
            x, y = sample_batch(rng, B, 20, dt)
            xt = np.ascontiguousarray(x.transpose(1, 0, 2))
            q = {k: v.copy() for k, v in p.items()}
            opt, lr = SGD(0.0), dt.type(0.0)

            def numpy_path():
                _, c = model.forward(p, x, y)
                opt.step(p, model.backward(p, c))

            def numba_path():
                update(q["W"], q["R"], q["V"], xt, y, lr)

            numba_path()  # compile for this dtype
            times: dict = {numpy_path: [], numba_path: []}
            for _ in range(30 if B < 256 else 8):
                for fn, ts in times.items():
                    fn()
                    for _ in range(10):
                        t0 = time.perf_counter()
                        fn()
                        ts.append(time.perf_counter() - t0)
            a, b = (float(np.median(ts)) * 1e6 for ts in times.values())
            print(f"{dtn} B={B:3d} T=20: NumPy {a:7.1f} µs, Numba {b:7.1f} µs (medians); NumPy/Numba {a / b:.2f}x",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
