"""Trials per second of random weight guessing: stacked candidates vs one forward per trial.

A *trial* is one candidate network tested on the S screening sequences (logits z(T)
and the number of correct classifications). Two ways to run N trials, at D = 1, K = 1:

* ``stacked``   -- :func:`frnn_cli.stacked.stacked_logits` on all N candidates at once
  (one batched matmul per time step, blocks of about ``stacked.STATE_BYTES`` of state);
* ``per-trial`` -- what a loop over :class:`frnn_cli.model.FullyRecurrentNetwork` does:
  ``model.run_forward`` for one candidate on the S sequences (already time-major), then
  ``a(T) V^T``, N times.

Each is timed twice: on pre-drawn weights (``eval``: the forward pass alone) and with
the drawing of the weights included (``draw+eval``: ``guess.draw_trials`` for the stack,
``guess.draw_trial`` per trial for the loop), which is what a search pays. Before
timing, the two ways' logits are compared (max relative difference <= 1e-12, else exit 1).

Timing: one BLAS thread, ``time.perf_counter`` around one call that runs all N trials,
the four variants interleaved in each repeat so a burst of load from other processes hits
all alike; the table gives the median over repeats in trials per second (and the
p10-p90 range of the stacked/per-trial ratio over repeats). Weights are U(-scale, scale)
(default 1, the guessing setting). The header names the machine.

Usage::

    python benchmarks/bench_guess.py                          # T = 10, 100 x I = 5, 32, S = 256
    python benchmarks/bench_guess.py --T 1,10,100,1000 --I 5 --repeats 9
    python benchmarks/bench_guess.py --chunks 8,32,128,512    # stacked eval vs block size
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy starts its BLAS pool

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from frnn_cli import guess, stacked  # noqa: E402
from frnn_cli.data import sample_batch  # noqa: E402
from frnn_cli.model import run_forward  # noqa: E402


def machine() -> str:
    """CPU model, NumPy's highest SIMD level in use, versions: the header of every table."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
        simd = [k for k in ("AVX512_SPR", "AVX512_ICL", "AVX512_SKX", "AVX2", "SSE42") if feats.get(k)][0]
    except (ImportError, IndexError):
        simd = "unknown"
    off = os.environ.get("NPY_DISABLE_CPU_FEATURES")
    return (f"{cpu}, {os.cpu_count()} cores, NumPy {np.__version__} SIMD {simd}"
            f"{' (disabled: ' + off + ')' if off else ''}, Python {platform.python_version()}, 1 BLAS thread")


def per_trial_logits(params: dict[str, np.ndarray], xt: np.ndarray) -> np.ndarray:
    """z (S, K) of one candidate the way FullyRecurrentNetwork.logits computes it."""
    return run_forward(params, xt)[-1] @ params["V"].T


def run_case(T: int, I: int, S: int, N: int, scale: float, repeats: int) -> dict:
    x, y = sample_batch(np.random.default_rng(1), S, T)
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))
    seed = 2024
    stack = guess.draw_trials(0, N, seed, 1, I, 1, "uniform", scale)
    singles = [guess.unstack(stack, j) for j in range(N)]

    z_stacked = stacked.stacked_logits(stack, x)
    z_loop = np.stack([per_trial_logits(p, xt) for p in singles])
    rel = np.abs(z_stacked - z_loop).max() / max(np.abs(z_loop).max(), 1e-300)
    if not rel <= 1e-12:
        sys.exit(f"stacked and per-trial logits differ at T={T}, I={I}: max relative difference {rel:.3g}")

    def stacked_eval():
        stacked.count_correct(stacked.stacked_logits(stack, x), y)

    def stacked_draw():
        stacked.count_correct(stacked.stacked_logits(guess.draw_trials(0, N, seed, 1, I, 1, "uniform", scale), x), y)

    def loop_eval():
        for p in singles:
            np.count_nonzero((per_trial_logits(p, xt) > 0) == (y > 0.5))

    def loop_draw():
        for k in range(N):
            p = guess.draw_trial(k, seed, 1, I, 1, "uniform", scale)
            np.count_nonzero((per_trial_logits(p, xt) > 0) == (y > 0.5))

    fns = {"stacked eval": stacked_eval, "per-trial eval": loop_eval,
           "stacked draw+eval": stacked_draw, "per-trial draw+eval": loop_draw}
    times = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    out = {name: N / float(np.median(t)) for name, t in times.items()}
    for kind in ("eval", "draw+eval"):
        r = np.array(times[f"per-trial {kind}"]) / np.array(times[f"stacked {kind}"])
        out[f"ratio {kind}"] = (float(np.median(r)), float(np.percentile(r, 10)), float(np.percentile(r, 90)))
    return out


def run_chunks(T: int, I: int, S: int, N: int, chunks: list[int], repeats: int) -> dict[int, float]:
    x, _ = sample_batch(np.random.default_rng(1), S, T)
    stack = guess.draw_trials(0, N, 2024, 1, I, 1, "uniform", 1.0)
    times = {c: [] for c in chunks}
    for c in chunks:
        stacked.stacked_logits(stack, x, block=c)
    for _ in range(repeats):
        for c in chunks:
            t0 = time.perf_counter()
            stacked.stacked_logits(stack, x, block=c)
            times[c].append(time.perf_counter() - t0)
    return {c: N / float(np.median(t)) for c, t in times.items()}


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=ints, default=[10, 100], help="sequence lengths, comma-separated")
    ap.add_argument("--I", type=ints, default=[5, 32], help="hidden sizes, comma-separated")
    ap.add_argument("--S", type=int, default=256, help="screening sequences")
    ap.add_argument("--trials", type=int, default=256, help="N, trials per timed call")
    ap.add_argument("--scale", type=float, default=1.0, help="weights U(-scale, scale)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--chunks", type=ints, default=None,
                    help="instead: stacked eval trials/s for these block sizes (candidates per block)")
    args = ap.parse_args()
    print(f"# {machine()}")
    print(f"# S = {args.S}, N = {args.trials} trials per call, weights U(-{args.scale:g}, {args.scale:g}), "
          f"median of {args.repeats} interleaved repeats")
    if args.chunks:
        print("| T | I | " + " | ".join(f"block {c}" for c in args.chunks) + " |")
        print("|---:|---:|" + "---:|" * len(args.chunks))
        for T in args.T:
            for I in args.I:
                r = run_chunks(T, I, args.S, args.trials, args.chunks, args.repeats)
                print(f"| {T} | {I} | " + " | ".join(f"{r[c]:,.0f}" for c in args.chunks) + " |", flush=True)
        return
    print("| T | I | stacked eval | per-trial eval | ratio (p10-p90) "
          "| stacked draw+eval | per-trial draw+eval | ratio (p10-p90) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for T in args.T:
        for I in args.I:
            r = run_case(T, I, args.S, args.trials, args.scale, args.repeats)
            re, rd = r["ratio eval"], r["ratio draw+eval"]
            print(f"| {T} | {I} | {r['stacked eval']:,.0f} | {r['per-trial eval']:,.0f} | "
                  f"{re[0]:.1f}x ({re[1]:.1f}-{re[2]:.1f}) | {r['stacked draw+eval']:,.0f} | "
                  f"{r['per-trial draw+eval']:,.0f} | {rd[0]:.1f}x ({rd[1]:.1f}-{rd[2]:.1f}) |", flush=True)
    print("# trials per second (higher is better); ratio = per-trial time / stacked time")


if __name__ == "__main__":
    main()
