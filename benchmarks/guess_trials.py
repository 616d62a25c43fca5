"""Trials until random weight guessing solves the latch task, over seeds (issue 13's table).

For every (hidden size I, weight range r, sequence length T) and every seed s = 0..n-1 the
script runs what ``frnn train optimizer=guess hidden=I init_scale=r T=T steps=MAX seed=s``
runs (:func:`frnn_cli.train.train` with that config, no files written): the screening set
is 256 sequences from the run's "screen" stream, trial k's weights are U(-r, r) drawn from
the k-th child of its "init" stream (:func:`frnn_cli.guess.trial_seed`), the search stops
at the first trial that classifies every screening sequence (the LSTM paper's ST1;
Hochreiter & Schmidhuber 1997, Experiment 3a) or after MAX trials, and the winner is
tested on ``--n-test`` fresh sequences. So every cell can be re-run with ``frnn train``.

Note: the same seed draws the same U(0, 1) numbers at every T and r (only the scaling
differs), so the cells of one seed are paired (common random numbers), not independent.

Per cell the table gives: seeds solved, the median and range of trials to solve (an
unsolved seed counts as "> max_trials"; the median is shown only when it is determined),
the winners' test accuracy (median and minimum) and the cell's wall time.

Usage::

    python benchmarks/guess_trials.py --hidden 5 --scale 1 --T 1,10,100,1000
    python benchmarks/guess_trials.py --hidden 32 --scale 10 --T 10 --max-trials 20000 --seeds 10
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # the setting of a sweep worker

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from frnn_cli import guess  # noqa: E402
from frnn_cli.config import Config  # noqa: E402
from frnn_cli.train import train  # noqa: E402

try:
    from bench_guess import machine  # noqa: E402
except ImportError:  # run from elsewhere
    from benchmarks.bench_guess import machine  # noqa: E402


def run_seed(seed: int, T: int, hidden: int, scale: float, S: int, n_test: int, max_trials: int) -> dict:
    cfg = Config(optimizer="guess", T=T, hidden=hidden, init_scale=scale, screen_n=S, n_test=n_test,
                 steps=max_trials, seed=seed)
    r = train(cfg)
    solved = r.stop_reason == "solved"
    return {"solved": solved, "trials": r.trials, "seconds": r.seconds,
            "test_acc": r.test.accuracy if solved else None}


def summarize(rows: list[dict], max_trials: int) -> dict:
    n = len(rows)
    solved = [r for r in rows if r["solved"]]
    trials = sorted(r["trials"] if r["solved"] else np.inf for r in rows)
    # The median of n values is determined when the middle one(s) are finite.
    mid = trials[(n - 1) // 2: n // 2 + 1]
    med = f"{np.mean(mid):g}" if np.all(np.isfinite(mid)) else f"> {max_trials}"
    lo = f"{trials[0]:g}" if np.isfinite(trials[0]) else f"> {max_trials}"
    hi = f"{trials[-1]:g}" if np.isfinite(trials[-1]) else f"> {max_trials}"
    accs = [r["test_acc"] for r in solved]
    acc = f"{np.median(accs):.3f} (min {min(accs):.3f})" if accs else "-"
    return {"solved": f"{len(solved)}/{n}", "median": med, "range": f"{lo}-{hi}", "test": acc}


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=ints, default=[5], help="hidden sizes I, comma-separated")
    ap.add_argument("--scale", type=floats, default=[1.0], help="weight half-widths r, comma-separated")
    ap.add_argument("--T", type=ints, default=[1, 10, 100], help="sequence lengths, comma-separated")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--S", type=int, default=guess.N_SCREEN, help="screening sequences")
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--max-trials", type=int, default=100_000)
    args = ap.parse_args()
    print(f"# {machine()}")
    print(f"# S = {args.S} screening sequences, all correct to stop; {args.n_test} test sequences; "
          f"seeds 0..{args.seeds - 1}; max {args.max_trials} trials")
    print("| I | r | T | solved | median trials | range | test accuracy of winners | wall s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for hidden in args.hidden:
        for scale in args.scale:
            for T in args.T:
                t0 = time.perf_counter()
                rows = [run_seed(s, T, hidden, scale, args.S, args.n_test, args.max_trials) for s in range(args.seeds)]
                sm = summarize(rows, args.max_trials)
                print(f"| {hidden} | {scale:g} | {T} | {sm['solved']} | {sm['median']} | {sm['range']} | "
                      f"{sm['test']} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
