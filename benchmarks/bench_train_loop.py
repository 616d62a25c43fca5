"""How much does the training loop add on top of the model's own forward + BPTT?

Run with one BLAS thread (the setting of every sweep worker):

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_train_loop.py [--B 32] [--T 20] [--hidden 32]

It times, at float64:

1. ``fwd+bwd``: :func:`frnn_cli.model.forward` + :func:`frnn_cli.model.backward` on
   pre-drawn batches (the model's own cost);
2. ``update``: the same plus the SGD update theta <- theta - eta g (issue 3's "one update");
3. ``train loop``: :func:`frnn_cli.train.train` per step, evaluation excluded: the
   difference between runs of 2N and N steps divided by N, with one evaluation at the
   end only, so fixed costs (initialisation, the test set) cancel;
4. ``loop alone``: the same with the model's forward and backward replaced by functions
   that return a precomputed loss and gradients, i.e. what the loop itself costs per
   step (batch sampling, gradient norms, divergence check, SGD update, bookkeeping).
   This is the precise measure of the overhead: it does not drown in the noise of the
   model's timing;
5. ``evaluation``: one evaluation at the default n_val = 500 (validation loss and
   accuracy, ||R||_2, the Jacobian norm over 64 sequences), paid every ``eval_every`` steps.

Each figure is the minimum (and, in parentheses, the median) over interleaved repeats
(``time.perf_counter``). The loop overhead is
(train loop - fwd+bwd) / fwd+bwd; issue 3 asks for < 10 %, and < 0.3 ms for one update
at B = 32, T = 20, I = 32.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from frnn_cli.config import Config
from frnn_cli.data import sample_batch
from frnn_cli.model import backward, forward, init_params
from frnn_cli.train import JACOBIAN_SEQUENCES, evaluate, train
from frnn_cli.vanishing import jacobian_norms, spectral_norm


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--T", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--steps", type=int, default=500, help="N, steps per timed block")
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()
    B, T, I, N = args.B, args.T, args.hidden, args.steps
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        print("note: OPENBLAS_NUM_THREADS is not 1; figures include BLAS threading effects")

    rng = np.random.default_rng(0)
    params = init_params(1, I, 1, rng)
    batches = [sample_batch(rng, B, T) for _ in range(64)]

    def fwd_bwd() -> None:
        for i in range(N):
            x, y = batches[i % 64]
            _, cache = forward(params, x, y)
            backward(params, cache)

    def fwd_bwd_sgd() -> None:
        for i in range(N):
            x, y = batches[i % 64]
            _, cache = forward(params, x, y)
            g = backward(params, cache)
            for name in ("W", "R", "V"):
                params[name] -= 1e-3 * g[name]

    def loop(steps: int, lr: float = 1e-3) -> float:
        cfg = Config(T=T, hidden=I, batch_size=B, steps=steps, eval_every=steps, n_val=1, n_test=1,
                     stop_loss=None, lr=lr)
        t0 = time.perf_counter()
        train(cfg)
        return time.perf_counter() - t0

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    # Warm up, then interleave the blocks in every repeat, so that a slow spell of the
    # machine (other processes) hits all of them alike.
    fwd_bwd(), fwd_bwd_sgd(), loop(N)
    model, update, looped = [], [], []
    for _ in range(args.repeats):
        model.append(timed(fwd_bwd) / N)
        update.append(timed(fwd_bwd_sgd) / N)
        looped.append((loop(2 * N), loop(N)))
    # The minimum is the cost without interference from other processes (as timeit
    # recommends); the median shows what a busy machine gives.
    t_model, t_update = min(model), min(update)
    m_model, m_update = statistics.median(model), statistics.median(update)
    t_loop = (min(a for a, _ in looped) - min(b for _, b in looped)) / N
    m_loop = (statistics.median(a for a, _ in looped) - statistics.median(b for _, b in looped)) / N

    # The loop alone: forward/backward stubbed out with precomputed results.
    import frnn_cli.train as train_module

    x0, y0 = batches[0]
    loss0, cache0 = forward(params, x0, y0)
    grads0 = backward(params, cache0)
    real = train_module.forward, train_module.backward
    train_module.forward = lambda p, x, y: (loss0, cache0)
    # The same gradient dict every step; with lr = 1 SGD's in-place g <- lr g leaves it unchanged.
    train_module.backward = lambda p, c: grads0
    try:
        loop(N, 1.0)
        alone = [(loop(2 * N, 1.0), loop(N, 1.0)) for _ in range(args.repeats)]
    finally:
        train_module.forward, train_module.backward = real
    t_alone = (min(a for a, _ in alone) - min(b for _, b in alone)) / N

    x_val, y_val = sample_batch(rng, 500, T)

    def one_eval() -> None:
        evaluate(params, x_val, y_val)
        spectral_norm(params["R"])
        np.median(jacobian_norms(params, x_val[:JACOBIAN_SEQUENCES], end_only=True))

    one_eval()
    t_eval = _median_time(one_eval, args.repeats)

    print(f"B={B}, T={T}, hidden={I}, float64, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"best (median) of {args.repeats} interleaved repeats of {N} steps")
    print(f"  model forward+BPTT         {t_model * 1e6:8.1f} ({m_model * 1e6:.1f}) us/step")
    print(f"  one update (fwd+BPTT+SGD)  {t_update * 1e6:8.1f} ({m_update * 1e6:.1f}) us/step   (target < 300 us)")
    print(f"  train() loop, no eval      {t_loop * 1e6:8.1f} ({m_loop * 1e6:.1f}) us/step   "
          f"overhead over forward+BPTT {100 * (t_loop / t_model - 1):+.1f} % "
          f"({100 * (m_loop / m_model - 1):+.1f} %) (target < 10 %)")
    print(f"  loop alone (model stubbed) {t_alone * 1e6:8.1f} us/step   = {100 * t_alone / t_model:.1f} % of forward+BPTT "
          f"(target < 10 %)")
    print(f"  one evaluation (n_val=500) {t_eval * 1e3:8.2f} ms       = {t_eval / t_loop:.0f} training steps; "
          f"at eval_every=25: {100 * t_eval / (25 * t_loop):.0f} % of training time, "
          f"at 100: {100 * t_eval / (100 * t_loop):.0f} %")


if __name__ == "__main__":
    main()
