"""Prototype, not used by frnn: S settings (lr x seed) of one T trained in one stacked update.

Issue 15 asked whether training the several settings of one sequence length T in one
batched computation per process would pay. This script builds that update -- forward,
BPTT and the SGD step for S networks at once, weights stacked to W (S, I, D), R (S, I, I),
V (S, K, I), states laid out (S, T + 1, B, I) so that the gradient sums stay one GEMM per
setting -- checks it against frnn's per-setting path (float64, relative 1e-12), and times
S single updates against one stacked update, in interleaved blocks, on one thread.

    python benchmarks/proto_stacked.py                 # float64 and float32, B = 1, 32, 256, S = 5, 15
    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" python benchmarks/proto_stacked.py

benchmarks/README.md has the figures and why the stacked update was not built.
Letters: S settings, B sequences, T time steps, D = 1 input, I = 32 hidden, K = 1 output.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from frnn_cli import model  # noqa: E402
from frnn_cli.data import sample_batch  # noqa: E402
from frnn_cli.optim import SGD  # noqa: E402


def stacked_update(W, R, V, x, y, lr):
    """One SGD update of S networks at once; W, R, V are updated in place.

    W (S, I, 1), R (S, I, I), V (S, 1, I); x (S, T, B, 1) time-major per setting; y (S, B, 1);
    lr (S, 1, 1). Returns the mean loss of each setting, (S,). Same equations as
    :func:`frnn_cli.model.forward` and :func:`frnn_cli.model.backward` (many-to-one).
    """
    S, T, B, _ = x.shape
    I = R.shape[1]
    dt = W.dtype
    mm, add, tanh, mul = np.matmul, np.add, np.tanh, np.multiply
    A = np.empty((S, T + 1, B, I), dt)
    A[:, 0] = 0.0
    mm(x.reshape(S, T * B, 1), W.transpose(0, 2, 1), out=A[:, 1:].reshape(S, T * B, I))  # W x(t), all t
    RT = np.ascontiguousarray(R.transpose(0, 2, 1))
    s = np.empty((S, B, I), dt)
    for t in range(T):
        mm(A[:, t], RT, out=s)
        a = A[:, t + 1]
        add(a, s, a)
        tanh(a, a)
    aT = A[:, T]
    z = mm(aT, V.transpose(0, 2, 1))  # (S, B, 1)
    loss = (np.logaddexp(0.0, z) - y * z).sum(axis=(1, 2)) / B
    psi = (0.5 * (1.0 + np.tanh(0.5 * z)) - y) / B
    delta = np.empty((S, T, B, I), dt)
    A1 = A[:, 1:]
    mul(A1, A1, delta)
    np.subtract(1.0, delta, delta)
    g = mm(psi, V)  # dL/da(T), (S, B, I)
    for t in range(T - 1, 0, -1):
        d = delta[:, t]
        mul(d, g, d)
        mm(d, R, out=g)
    mul(delta[:, 0], g, delta[:, 0])
    dW = mm(delta.reshape(S, T * B, I).transpose(0, 2, 1), x.reshape(S, T * B, 1))
    dR = mm(delta[:, 1:].reshape(S, (T - 1) * B, I).transpose(0, 2, 1), A[:, 1:T].reshape(S, (T - 1) * B, I))
    dV = mm(psi.transpose(0, 2, 1), aT)
    W -= lr * dW
    R -= lr * dR
    V -= lr * dV
    return loss


def _problem(S, B, T, dtype, seed=0, init="uniform"):
    rng = np.random.default_rng(seed)
    ps = [model.init_params(1, 32, 1, rng, init=init, dtype=dtype) for _ in range(S)]
    data = [sample_batch(rng, B, T, dtype) for _ in range(S)]
    W, R, V = (np.stack([p[k] for p in ps]) for k in ("W", "R", "V"))
    x = np.stack([np.ascontiguousarray(d[0].transpose(1, 0, 2)) for d in data])
    y = np.stack([d[1] for d in data])
    return ps, data, (W, R, V, x, y)


def check() -> None:
    """The stacked update equals S per-setting updates (float64, relative 1e-12)."""
    S, B, T = 3, 8, 6
    ps, data, (W, R, V, x, y) = _problem(S, B, T, np.float64, seed=1, init="glorot")
    stacked_update(W, R, V, x, y, np.full((S, 1, 1), 0.5))
    for i, (p, (xx, yy)) in enumerate(zip(ps, data)):
        _, c = model.forward(p, xx, yy)
        SGD(0.5).step(p, model.backward(p, c))
        for k, M in (("W", W), ("R", R), ("V", V)):
            np.testing.assert_allclose(M[i], p[k], rtol=1e-12, atol=1e-15, err_msg=k)


def bench(S, B, T, dtype, rounds, per_round=10):
    """Medians of S single updates and of one stacked update, and the ratio of the medians.

    The two alternate in blocks of ``per_round`` calls, not call by call: alternating
    arrays of different sizes makes glibc hand memory back to the kernel and page-fault it
    in again on every call (benchmarks/README.md), which would time the allocator.
    """
    ps, data, (W, R, V, x, y) = _problem(S, B, T, dtype)
    lr = np.zeros((S, 1, 1), dtype)
    opts = [SGD(0.0) for _ in range(S)]

    def singles():
        for p, (xx, yy), o in zip(ps, data, opts):
            _, c = model.forward(p, xx, yy)
            o.step(p, model.backward(p, c))

    def stacked():
        stacked_update(W, R, V, x, y, lr)

    times: dict = {singles: [], stacked: []}
    for _ in range(rounds):
        for fn, ts in times.items():
            fn()  # the block's first call may refill the heap; not timed
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
    a, b = (float(np.median(ts)) * 1e6 for ts in times.values())
    return a, b, a / b


def main() -> int:
    check()
    print("stacked update matches the per-setting path (float64, relative 1e-12)")
    for dtn in ("float64", "float32"):
        for B in (1, 32, 256):
            for S in (5, 15):
                a, b, r = bench(S, B, 20, np.dtype(dtn), rounds=30 if B < 256 else 8)
                print(f"{dtn} B={B:3d} T=20 S={S:2d}: {S} single updates {a:8.0f} µs, one stacked {b:8.0f} µs "
                      f"(medians); speed-up {r:.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
