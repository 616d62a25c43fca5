"""Why guessing needs as many trials as it does: success probability per trial, by variant.

Random weight guessing stops at the first success, so its trials-to-solve are geometric
with the per-trial success probability p: median ceil(ln 2 / -ln(1 - p)). This script
estimates p directly from N candidates (the first N trials of seed 0, as
:func:`frnn_cli.guess.draw_trials` draws them) on one screening set, for variants of the
protocol that a reproduction might differ in:

* ``S`` -- the number of screening sequences that must all be classified correctly
  (frnn's default 256, the LSTM paper's ST1);
* ``biases`` -- frnn's RNN has none; the variants add a bias to every hidden unit
  (a(t) = tanh(W x(t) + R a(t-1) + b)) and optionally to the output (z = V a(T) + c),
  drawn U(-r, r) like the weights from a separate stream.

Without biases the network is odd: the class-2 sequence -x gives z(-x) = -z(x), so a
candidate whose state settles in one of two mirror-image attractors classifies either
all or none of the noise-free sequences right; a bias breaks that symmetry.

Usage::

    python benchmarks/guess_variants.py                        # I = 5, r = 1, T = 100, S = 256, 1000
    python benchmarks/guess_variants.py --T 1000 --N 5000 --S 256
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from frnn_cli import guess, stacked  # noqa: E402
from frnn_cli.data import sample_batch  # noqa: E402

try:
    from bench_guess import machine  # noqa: E402
except ImportError:
    from benchmarks.bench_guess import machine  # noqa: E402


def logits_with_biases(p: dict, b: np.ndarray, c: np.ndarray, x: np.ndarray, block: int = 25) -> np.ndarray:
    """z (N, S, 1) of stacked candidates with hidden biases b (N, I, 1) and output biases c (N, 1, 1)."""
    xT = np.ascontiguousarray(x.transpose(1, 2, 0))  # (T, 1, S)
    out = []
    for n0 in range(0, p["W"].shape[0], block):
        sl = slice(n0, n0 + block)
        W, R, V, bb = p["W"][sl], p["R"][sl], p["V"][sl], b[sl]
        a = np.tanh(W * xT[0] + bb)
        for t in range(1, xT.shape[0]):
            a = np.tanh(W * xT[t] + R @ a + bb)
        out.append(V @ a + c[sl])
    return np.concatenate(out).transpose(0, 2, 1)


def median_trials(p: float) -> float:
    return math.ceil(math.log(0.5) / math.log1p(-p)) if 0 < p < 1 else (1 if p >= 1 else math.inf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--I", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--N", type=int, default=10_000, help="candidates")
    ap.add_argument("--S", type=lambda s: [int(v) for v in s.split(",")], default=[256, 1000])
    args = ap.parse_args()
    print(f"# {machine()}")
    print(f"# I = {args.I}, weights U(-{args.scale:g}, {args.scale:g}), T = {args.T}, N = {args.N} candidates (seed 0)")
    print("| S | variant | successes | p (+- 1 s.e.) | implied median trials | wall s |")
    print("|---:|---|---:|---:|---:|---:|")
    N, I, r = args.N, args.I, args.scale
    stack = guess.draw_trials(0, N, 0, 1, I, 1, "uniform", r)
    brng = np.random.default_rng(np.random.SeedSequence(0).spawn(2)[1])
    b, c = brng.uniform(-r, r, (N, I, 1)), brng.uniform(-r, r, (N, 1, 1))
    for S in args.S:
        x, y = sample_batch(np.random.default_rng(1), S, args.T)
        variants = {
            "no biases (frnn)": lambda: stacked.stacked_logits(stack, x),
            "hidden biases": lambda: logits_with_biases(stack, b, 0 * c, x),
            "hidden + output biases": lambda: logits_with_biases(stack, b, c, x),
        }
        for name, fn in variants.items():
            t0 = time.perf_counter()
            k = int(np.count_nonzero(stacked.count_correct(fn(), y) == S))
            p = k / N
            se = math.sqrt(p * (1 - p) / N)
            print(f"| {S} | {name} | {k} | {p:.4f} (+- {se:.4f}) | {median_trials(p)} | "
                  f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
