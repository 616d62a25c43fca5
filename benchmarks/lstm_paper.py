"""The LSTM paper's Experiment 3a on frnn's task: training sequences until ST1 and ST2.

Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", section 5.3, Experiment 3a (the
2-sequence problem of Bengio et al. 1994) -- the task of frnn_cli.data: the first element
+-1 names the class, the rest is Gaussian noise of variance 0.2, the target comes at the end.
The paper reports, for T = 100 and one informative element (N = 1), 58,370 training
sequences on average until ST1 and 64,330 until ST2 (10 trials):

* ST1: none of 256 randomly drawn test sequences misclassified;
* ST2: ST1 and the mean absolute test error (|sigmoid(z(T)) - y| here) below 0.01.

This driver trains :class:`frnn_cli.lstm.LSTMNetwork` (with forget gate, BCE loss on a
sigmoid read-out: not the paper's 1997 cell, which had no forget gate and a truncated
gradient) with its own small loop -- not ``frnn train`` -- and counts the training
sequences seen (updates x batch size) until each criterion holds. Every ``--check-every``
sequences it draws 256 *fresh* test sequences and checks ST1 / ST2 on them, so the counts
are exact up to that granularity (a count is the first check at which the criterion held).
Training stops at ST2 or after ``--max-sequences``.

Each seed's run draws from ``np.random.SeedSequence([seed, T])`` spawned into independent
streams for the initial weights, the training data and the test data.

Optimizers: ``sgd`` (theta <- theta - lr g, the paper's plain gradient descent; the
paper's rate is 1.0) and ``adam`` (Kingma & Ba 2015, Algorithm 1). Gradients are of the
batch-mean BCE loss; optional global-norm clipping (Pascanu et al. 2013).

Usage::

    python benchmarks/lstm_paper.py --T 100 --seeds 5 --hidden 3 --optimizer sgd --lr 1.0 --batch 1
    python benchmarks/lstm_paper.py --grid 1,2,3,4,5,10,20,50,100 --hidden 8 --optimizer adam --lr 0.01 --batch 32

Exit codes: 0 done, 2 bad usage.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy starts its pool: one run, one core

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from frnn_cli.data import sample_batch  # noqa: E402
from frnn_cli.lstm import PARAM_NAMES, LSTMNetwork, gate_rows  # noqa: E402

PAPER_ST1, PAPER_ST2 = 58_370, 64_330
N_TEST = 256
ST2_MAE = 0.01


class SGD:
    """theta <- theta - lr g."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def step(self, params: dict, grads: dict) -> None:
        for n in PARAM_NAMES:
            params[n] -= self.lr * grads[n]


class Adam:
    """Kingma & Ba (2015), Algorithm 1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr, self.b1, self.b2, self.eps, self.t = lr, beta1, beta2, eps, 0
        self.m: dict = {}
        self.v: dict = {}

    def step(self, params: dict, grads: dict) -> None:
        if not self.m:
            self.m = {n: np.zeros_like(params[n]) for n in PARAM_NAMES}
            self.v = {n: np.zeros_like(params[n]) for n in PARAM_NAMES}
        self.t += 1
        lr_t = self.lr * math.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        eps_t = self.eps * math.sqrt(1 - self.b2**self.t)
        for n in PARAM_NAMES:
            g, m, v = grads[n], self.m[n], self.v[n]
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            params[n] -= lr_t * m / (np.sqrt(v) + eps_t)


def evaluate(net: LSTMNetwork, rng: np.random.Generator, T: int) -> tuple[int, float]:
    """Misclassified count and mean absolute error on N_TEST fresh sequences."""
    x, y = sample_batch(rng, N_TEST, T)
    z = net.logits(x)
    p = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid(z)
    wrong = int(np.count_nonzero((z > 0) != (y > 0.5)))
    return wrong, float(np.abs(p - y).mean())


def run(seed: int, T: int, hidden: int, optimizer: str, lr: float, batch: int, max_sequences: int,
        check_every: int, init_scale: float, forget_bias: float, clip: float | None, progress: int = 0,
        save: str | None = None, gate_bias: dict[str, list[float]] | None = None) -> dict:
    """Train one network; return the sequence counts at ST1 and ST2 (None if not reached).

    With ``save`` (a folder), the final parameters go to ``<save>/lstm_T<T>_seed<seed>.npz``.
    ``gate_bias`` maps "i" / "o" to initial biases for that gate's cells, repeated as needed
    (the paper starts its three blocks' input gates at -1, -3, -5 and output gates at -2, -4, -6).
    """
    ss_init, ss_train, ss_test = np.random.SeedSequence([seed, T]).spawn(3)
    net = LSTMNetwork(1, hidden, 1, rng=np.random.default_rng(ss_init), init_scale=init_scale,
                      forget_bias=forget_bias)
    for gate, values in (gate_bias or {}).items():
        net.b[gate_rows(gate, hidden)] = np.resize(np.asarray(values, dtype=float), hidden)
    train_rng, test_rng = np.random.default_rng(ss_train), np.random.default_rng(ss_test)
    opt = SGD(lr) if optimizer == "sgd" else Adam(lr)
    params = net.params
    seen, st1, st2, next_check = 0, None, None, check_every
    t0 = time.perf_counter()
    while seen < max_sequences:
        x, y = sample_batch(train_rng, batch, T)
        net.forward(x, y)
        grads = dict(zip(PARAM_NAMES, net.backward()))
        if clip is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
            if norm > clip:
                grads = {n: g * (clip / norm) for n, g in grads.items()}
        opt.step(params, grads)
        seen += batch
        if seen >= next_check:
            next_check += check_every
            wrong, mae = evaluate(net, test_rng, T)
            if progress and (next_check // check_every) % progress == 0:
                print(f"    seed {seed} T={T}: {seen:,} sequences, {wrong} of {N_TEST} wrong, mean |error| {mae:.3f}",
                      file=sys.stderr, flush=True)
            if wrong == 0 and st1 is None:
                st1 = seen
            if wrong == 0 and mae < ST2_MAE:
                st2 = seen
                if st1 is None:
                    st1 = seen
                break
    if save:
        np.savez(os.path.join(save, f"lstm_T{T}_seed{seed}.npz"), **net.params)
    return {"seed": seed, "T": T, "st1": st1, "st2": st2, "sequences": seen, "updates": seen // batch,
            "seconds": time.perf_counter() - t0}


def _summary(values: list[int | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return f"not reached in any of {len(values)} runs"
    s = f"median {int(np.median(got)):,}, range {min(got):,}-{max(got):,}"
    if len(got) < len(values):
        s += f" ({len(values) - len(got)} of {len(values)} runs did not reach it)"
    return s


def _ints(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return vals


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Count training sequences until the LSTM paper's ST1 / ST2 criteria on frnn's task.",
        epilog="example: python benchmarks/lstm_paper.py --T 100 --seeds 5 --hidden 3 --optimizer sgd --lr 1.0",
    )
    ap.add_argument("--T", type=int, default=100, help="sequence length (default 100)")
    ap.add_argument("--grid", type=_ints, help="several T, e.g. 1,2,3,4,5,10,20,50,100 (overrides --T)")
    ap.add_argument("--seeds", type=int, default=5, help="number of seeds 0..n-1 (default 5)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=3, help="memory cells I (default 3, the paper's 3 blocks of 1)")
    ap.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    ap.add_argument("--lr", type=float, default=1.0, help="learning rate (default 1.0, the paper's)")
    ap.add_argument("--batch", type=int, default=1, help="sequences per update (default 1: online)")
    ap.add_argument("--max-sequences", type=int, default=300_000, help="give up after this many (default 300000)")
    ap.add_argument("--check-every", type=int, default=500, help="sequences between ST1/ST2 checks (default 500)")
    ap.add_argument("--init-scale", type=float, default=0.1, help="weights U(-s, s) (default 0.1, the paper's)")
    ap.add_argument("--forget-bias", type=float, default=1.0)
    ap.add_argument("--clip", type=float, default=None, help="global gradient-norm clip (default none)")
    ap.add_argument("--input-bias", type=_floats, help="initial input-gate biases, cycled over the cells (paper: -1,-3,-5)")
    ap.add_argument("--output-bias", type=_floats, help="initial output-gate biases, cycled (paper: -2,-4,-6)")
    ap.add_argument("--progress", type=int, default=0, metavar="N",
                    help="print the test result of every N-th check to stderr (default 0: never)")
    ap.add_argument("--json", metavar="FILE", help="also write the runs to FILE")
    ap.add_argument("--save", metavar="DIR", help="save each run's final parameters to DIR/lstm_T<T>_seed<s>.npz")
    args = ap.parse_args(argv)
    for name in ("seeds", "hidden", "batch", "max_sequences", "check_every"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.lr > 0:
        ap.error(f"--lr must be > 0, got {args.lr}")
    if args.save and not os.path.isdir(args.save):
        ap.error(f"--save {args.save}: not a folder")

    Ts = args.grid or [args.T]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"# LSTM I={args.hidden}, {args.optimizer} lr={args.lr:g}, batch {args.batch}, init U(+-{args.init_scale:g}), "
          f"forget bias {args.forget_bias:g}, input-gate bias {args.input_bias}, output-gate bias {args.output_bias}, "
          f"clip {args.clip}; ST1/ST2 checked every {args.check_every} sequences "
          f"on {N_TEST} fresh sequences; at most {args.max_sequences:,} sequences", flush=True)
    runs = []
    for T in Ts:
        for seed in seeds:
            r = run(seed, T, args.hidden, args.optimizer, args.lr, args.batch, args.max_sequences,
                    args.check_every, args.init_scale, args.forget_bias, args.clip, args.progress, args.save,
                    {k: v for k, v in (("i", args.input_bias), ("o", args.output_bias)) if v})
            runs.append(r)
            fmt = lambda v: f"{v:,}" if v is not None else "-"  # noqa: E731
            print(f"  T={T:<4d} seed={seed}: ST1 {fmt(r['st1']):>9}  ST2 {fmt(r['st2']):>9}  "
                  f"({r['updates']:,} updates, {r['seconds']:.0f} s)", flush=True)
        mine = [r for r in runs if r["T"] == T]
        print(f"T={T}: ST1 {_summary([r['st1'] for r in mine])}; ST2 {_summary([r['st2'] for r in mine])}")
        if T == 100:
            print(f"       paper (10 trials, mean): ST1 {PAPER_ST1:,}; ST2 {PAPER_ST2:,}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": runs}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
