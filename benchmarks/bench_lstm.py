"""Time one BPTT update of frnn's LSTM against PyTorch's nn.LSTM and JAX.

One *update* is forward over a batch of B task sequences of length T, backpropagation
through time and a gradient-descent step theta <- theta - eta * dtheta, at D = 1 input,
I = 32 memory cells, K = 1 output, float64 unless ``--dtype float32``. Implementations, each
timed only if importable:

* ``frnn``  -- :class:`frnn_cli.lstm.LSTMNetwork`: ``forward``, ``backward``, ``update``;
* ``torch`` -- ``nn.LSTM`` (its two bias vectors; frnn's b goes into ``bias_ih``, ``bias_hh``
  is 0) + ``nn.Linear(bias=False)`` read-out + ``nn.BCEWithLogitsLoss`` + ``torch.optim.SGD``;
* ``jax``   -- the same cell written with ``jnp`` under ``lax.scan``, ``jit(grad(loss))`` and
  the SGD step jitted whole.

PyTorch stacks its gates in the order i, f, g, o, frnn in the order o, i, f, g
(``frnn_cli.lstm.GATES``); the rows are permuted when the weights are copied over and
permuted back when the gradients are compared. Before timing, every implementation's
gradients must agree with frnn's float64 ones to a relative 1e-10 (max |g - g_frnn| /
max |g_frnn| per parameter; float32 runs: 1e-4), else the script stops with exit code 1.

Timing: one thread everywhere (OPENBLAS/OMP/MKL_NUM_THREADS=1, ``torch.set_num_threads(1)``,
XLA's Eigen thread pool off) and the process pinned to one core unless ``--no-pin``; the
garbage collector off; warm-up (including JAX's compilation) first; then interleaved
rounds, each running a block of calls of every implementation in turn, so load from other
processes hits all of them alike. Each call is timed alone with ``time.perf_counter``; the
table gives the median in microseconds. The learning rate is 0, so every repeat does the
same arithmetic on the same numbers.

Usage (PyTorch and JAX are optional: ``pip install '.[bench]'``)::

    python benchmarks/bench_lstm.py                     # (B, T) = (1, 100), (32, 20), (32, 100)
    python benchmarks/bench_lstm.py --sizes 32x100 --budget 3 --json lstm.json

Exit codes: 0 done (the goal is reported, not enforced), 1 gradients disagree, 2 bad usage.
"""

from __future__ import annotations

import os
import sys

# One thread everywhere; must be set before NumPy, PyTorch or JAX start their pools.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
# Pin before any library starts a thread (threads inherit the mask); --no-pin leaves it free.
PINNED_CPU = None
if "--no-pin" not in sys.argv and hasattr(os, "sched_setaffinity"):
    PINNED_CPU = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {PINNED_CPU})

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from frnn_cli import __version__ as frnn_version  # noqa: E402
from frnn_cli import lstm  # noqa: E402
from frnn_cli.data import sample_batch  # noqa: E402

try:
    import torch
except ImportError:  # optional
    torch = None
try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # float64 arrays stay float64
except ImportError:  # optional
    jax = jnp = None

D, I, K = 1, 32, 1
ETA = 0.0
SIZES = [(1, 100), (32, 20), (32, 100)]
DTYPES = {"float64": np.float64, "float32": np.float32}
GRAD_RTOL = {"float64": 1e-10, "float32": 1e-4}
NAMES = ("W", "R", "b", "V")
# frnn's gate rows are o, i, f, g; PyTorch's are i, f, g, o. TORCH_ROWS[k] is the frnn row that
# becomes PyTorch's row k; FRNN_ROWS, its inverse, takes PyTorch's rows back to frnn's order.
TORCH_ROWS = np.concatenate([np.arange(4 * I)[lstm.gate_rows(gate, I)] for gate in "ifgo"])
FRNN_ROWS = np.argsort(TORCH_ROWS)


class Impl:
    """One implementation on one problem: ``grads()`` for the check, ``step()`` to time."""

    name = ""

    def grads(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError


class Frnn(Impl):
    name = "frnn"

    def __init__(self, p, x, y, dtype):
        self.net = lstm.LSTMNetwork(D, I, K, dtype=dtype)
        for k in NAMES:
            getattr(self.net, k)[...] = p[k]
        self.x, self.y = x.astype(dtype), y.astype(dtype)

    def grads(self):
        self.net.forward(self.x, self.y)
        return {k: g.copy() for k, g in zip(NAMES, self.net.backward())}

    def step(self):
        self.net.forward(self.x, self.y)
        self.net.backward()
        self.net.update(ETA)


class Torch(Impl):
    name = "torch"

    def __init__(self, p, x, y, dtype):
        tdtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
        self.rnn = torch.nn.LSTM(D, I, batch_first=True, dtype=tdtype)
        self.lin = torch.nn.Linear(I, K, bias=False, dtype=tdtype)
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(torch.from_numpy(p["W"][TORCH_ROWS]))
            self.rnn.weight_hh_l0.copy_(torch.from_numpy(p["R"][TORCH_ROWS]))
            self.rnn.bias_ih_l0.copy_(torch.from_numpy(p["b"][TORCH_ROWS]))
            self.rnn.bias_hh_l0.zero_()
            self.lin.weight.copy_(torch.from_numpy(p["V"]))
        self.loss_fn = torch.nn.BCEWithLogitsLoss()  # mean over B (K = 1), as frnn
        self.opt = torch.optim.SGD([*self.rnn.parameters(), *self.lin.parameters()], lr=ETA)
        self.x = torch.from_numpy(x.astype(dtype))
        self.y = torch.from_numpy(y.astype(dtype))

    def _loss(self):
        _, (h, _) = self.rnn(self.x)  # h (1, B, I) = a(T)
        return self.loss_fn(self.lin(h[-1]), self.y)

    def grads(self):
        self.opt.zero_grad()
        self._loss().backward()
        r = self.rnn
        g = {
            "W": r.weight_ih_l0.grad.numpy()[FRNN_ROWS],
            "R": r.weight_hh_l0.grad.numpy()[FRNN_ROWS],
            "b": r.bias_ih_l0.grad.numpy()[FRNN_ROWS],
            "V": self.lin.weight.grad.numpy().copy(),
            # The two bias vectors enter s(t) as a sum: each one's gradient is frnn's db.
            "b bias_hh": r.bias_hh_l0.grad.numpy()[FRNN_ROWS],
        }
        return g

    def step(self):
        self.opt.zero_grad()
        self._loss().backward()
        self.opt.step()


def _jax_loss(params, x, y):
    W, R, b, V = params
    n = R.shape[1]

    def cell(state, x_t):
        a, c = state
        s = x_t @ W.T + a @ R.T + b
        o, i, f = (jax.nn.sigmoid(s[:, k * n : (k + 1) * n]) for k in range(3))  # frnn order o, i, f, g
        c = f * c + i * jnp.tanh(s[:, 3 * n :])
        return (o * jnp.tanh(c), c), None

    zero = jnp.zeros((x.shape[0], n), x.dtype)
    (a_T, _), _ = jax.lax.scan(cell, (zero, zero), jnp.swapaxes(x, 0, 1))
    z = a_T @ V.T
    return jnp.mean(jnp.sum(jnp.logaddexp(0.0, z) - y * z, axis=1))


if jax is not None:
    _jax_grad = jax.jit(jax.grad(_jax_loss))

    @jax.jit
    def _jax_update(params, x, y, eta):
        g = jax.grad(_jax_loss)(params, x, y)
        return tuple(q - eta * gq for q, gq in zip(params, g))


class Jax(Impl):
    name = "jax"

    def __init__(self, p, x, y, dtype):
        self.params = tuple(jnp.asarray(p[k].astype(dtype)) for k in NAMES)
        self.x, self.y = jnp.asarray(x.astype(dtype)), jnp.asarray(y.astype(dtype))
        self.eta = jnp.asarray(ETA, dtype)  # traced, so XLA cannot fold the step away

    def grads(self):
        return {k: np.asarray(g) for k, g in zip(NAMES, _jax_grad(self.params, self.x, self.y))}

    def step(self):
        self.params = _jax_update(self.params, self.x, self.y, self.eta)
        jax.block_until_ready(self.params)


def available_impls() -> list[type[Impl]]:
    impls: list[type[Impl]] = [Frnn]
    if torch is not None:
        impls.append(Torch)
    if jax is not None:
        impls.append(Jax)
    return impls


# --------------------------------------------------------------------------- machine


def numpy_simd() -> str:
    """The highest SIMD target NumPy dispatches to on this CPU (e.g. AVX512_ICL), and why."""
    try:
        from numpy._core import _multiarray_umath as mu
    except ImportError:  # NumPy < 2
        from numpy.core import _multiarray_umath as mu
    on = [t for t in mu.__cpu_dispatch__ if mu.__cpu_features__.get(t)]
    level = on[-1] if on else "baseline " + "/".join(mu.__cpu_baseline__)
    disabled = os.environ.get("NPY_DISABLE_CPU_FEATURES")
    return level + (f" (NPY_DISABLE_CPU_FEATURES={disabled})" if disabled else "")


def machine_info() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "numpy_simd": numpy_simd(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "frnn": frnn_version,
        "torch": torch.__version__ if torch is not None else None,
        "jax": jax.__version__ if jax is not None else None,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "pinned_cpu": PINNED_CPU,
    }


# --------------------------------------------------------------------------- timing


def interleaved(fns: dict[str, Callable[[], None]], budget: float, rounds: int = 20) -> dict[str, dict]:
    """Time each function's calls in ``rounds`` interleaved blocks, about ``budget`` s each.

    Returns per name the median, p10 and p90 of single-call times in microseconds, the
    number of timed calls and process CPU time over wall time (about 1.0 on one thread).
    """
    per_call = {}
    for name, fn in fns.items():  # warm-up, then a first estimate of the call time
        fn()
        t0, n = time.perf_counter(), 0
        while n < 3 or (time.perf_counter() - t0 < 0.05 and n < 200):
            fn()
            n += 1
        per_call[name] = (time.perf_counter() - t0) / n
    calls = {n: max(1, math.ceil(max(5, budget / per_call[n]) / rounds)) for n in fns}
    times: dict[str, list[float]] = {n: [] for n in fns}
    cpu, wall = dict.fromkeys(fns, 0.0), dict.fromkeys(fns, 0.0)
    pc, cput = time.perf_counter, time.process_time
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in fns.items():
                ts = times[name]
                c0, w0 = cput(), pc()
                for _ in range(calls[name]):
                    t0 = pc()
                    fn()
                    ts.append(pc() - t0)
                cpu[name] += cput() - c0
                wall[name] += pc() - w0
    finally:
        if gc_was_enabled:
            gc.enable()
    out = {}
    for name, ts in times.items():
        us = np.asarray(ts) * 1e6
        out[name] = {
            "us": float(np.median(us)),
            "p10": float(np.percentile(us, 10)),
            "p90": float(np.percentile(us, 90)),
            "n": len(ts),
            "cpu_per_wall": cpu[name] / wall[name],
        }
    return out


class GradientMismatch(RuntimeError):
    """An implementation's gradients disagree with frnn's."""


def check_gradients(impls: dict[str, Impl], reference: dict[str, np.ndarray], rtol: float) -> dict[str, float]:
    """Largest relative gradient difference of each implementation from ``reference``."""
    worst = {}
    for name, impl in impls.items():
        got = impl.grads()
        rel = 0.0
        for key, g in got.items():
            pname = key.split()[0]  # "b bias_hh" is compared with frnn's b
            scale = max(float(np.abs(reference[pname]).max()), 1e-300)
            err = float(np.abs(np.asarray(g, np.float64) - reference[pname]).max()) / scale
            if not err <= rtol:
                raise GradientMismatch(
                    f"{name}: d{key} differs from frnn float64 by {err:.3g} (relative), allowed {rtol:g}"
                )
            rel = max(rel, err)
        worst[name] = rel
    return worst


def run_case(B: int, T: int, dtype_name: str, budget: float, seed: int) -> dict:
    dtype = DTYPES[dtype_name]
    rng = np.random.default_rng([seed, B, T])
    x, y = sample_batch(rng, B, T)
    # Weights of 0.1 rather than the reference 0.01, so every gradient entry is well above
    # rounding level and the comparison tests something; the work per update is the same.
    p = lstm.init_params(D, I, K, rng, init_scale=0.1)
    impls = {cls.name: cls(p, x, y, dtype) for cls in available_impls()}
    reference = Frnn(p, x, y, np.float64).grads()
    grad_rel = check_gradients(impls, reference, GRAD_RTOL[dtype_name])
    timings = interleaved({n: impl.step for n, impl in impls.items()}, budget)
    f = timings["frnn"]["us"]
    return {
        "B": B,
        "T": T,
        "dtype": dtype_name,
        "grad_rel_err": grad_rel,
        "timings": timings,
        "speedup": {n: t["us"] / f for n, t in timings.items() if n != "frnn"},
    }


def _fmt_us(us: float) -> str:
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def markdown_table(cases: list[dict], names: list[str]) -> str:
    rivals = [n for n in names if n != "frnn"]
    head = ["B", "T", "dtype", *(f"{n} µs" for n in names), *(f"{n}/frnn" for n in rivals), "grad rel. err."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for c in cases:
        row = [str(c["B"]), str(c["T"]), c["dtype"]]
        row += [_fmt_us(c["timings"][n]["us"]) if n in c["timings"] else "-" for n in names]
        row += [f"{c['speedup'][n]:.2f}x" if n in c["speedup"] else "-" for n in rivals]
        row.append(f"{max(v for k, v in c['grad_rel_err'].items() if k != 'frnn'):.1e}" if rivals else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _sizes(text: str) -> list[tuple[int, int]]:
    try:
        out = [tuple(int(v) for v in item.split("x")) for item in text.split(",")]
    except ValueError:
        out = []
    if not out or any(len(s) != 2 or min(s) < 1 for s in out):
        raise argparse.ArgumentTypeError(f"expected sizes BxT separated by commas, e.g. 1x100,32x20; got {text!r}")
    return out  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Time one LSTM BPTT update of frnn against PyTorch nn.LSTM and JAX (one thread).",
        epilog="example: python benchmarks/bench_lstm.py --sizes 32x100 --budget 3 --json lstm.json",
    )
    ap.add_argument("--sizes", type=_sizes, default=SIZES, help="BxT pairs, default 1x100,32x20,32x100")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float64", help="float64 (default) or float32")
    ap.add_argument("--budget", type=float, default=1.0, help="seconds of timed calls per implementation and size")
    ap.add_argument("--seed", type=int, default=0, help="seed of the problem instances")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    args = ap.parse_args(argv)
    if not args.budget > 0:
        ap.error(f"--budget must be > 0 seconds, got {args.budget}")
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        ap.error(f"--json {args.json}: its folder does not exist")

    if torch is not None:
        torch.set_num_threads(1)
    info = machine_info()
    names = [cls.name for cls in available_impls()]
    pin = f"pinned to cpu {PINNED_CPU}" if PINNED_CPU is not None else "not pinned"
    print(f"# frnn {info['frnn']} LSTM update benchmark: D={D} I={I} K={K}, {args.dtype}, one thread ({pin}), "
          "median µs per update")
    print(f"# {info['cpu']}, {info['cores']} cores; NumPy {info['numpy']} SIMD {info['numpy_simd']}"
          + (f", OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}" if info["OPENBLAS_CORETYPE"] else "")
          + f"; torch {info['torch']}, jax {info['jax']}")
    print(f"# gradients checked against frnn float64 first: max relative difference <= {GRAD_RTOL[args.dtype]:g}")
    missing = sorted({"torch", "jax"} - set(names))
    if missing:
        print(f"# not installed, skipped: {', '.join(missing)}")
    print(flush=True)

    cases = []
    try:
        for B, T in args.sizes:
            c = run_case(B, T, args.dtype, args.budget, args.seed)
            cases.append(c)
            t = c["timings"]
            cpu = max(v["cpu_per_wall"] for v in t.values())
            each = ", ".join(f"{n} {_fmt_us(v['us'])} µs" for n, v in t.items())
            print(f"  B={B:<3d} T={T:<3d}: {each}  (cpu/wall <= {cpu:.2f})", file=sys.stderr, flush=True)
    except GradientMismatch as e:
        print(f"error: gradients disagree: {e}", file=sys.stderr)
        return 1

    print(markdown_table(cases, names))
    if "torch" in names:
        slow = [c for c in cases if c["speedup"]["torch"] < 1.0]
        print()
        print("goal met: frnn faster than PyTorch at every size" if not slow else
              "goal MISSED at " + ", ".join(f"B={c['B']} T={c['T']} ({c['speedup']['torch']:.2f}x)" for c in slow))
    if args.json:
        try:
            with open(args.json, "w") as f:
                json.dump({"machine": info, "eta": ETA, "cases": cases}, f, indent=1)
        except OSError as e:
            print(f"error: --json {args.json}: cannot write it ({e.strerror})", file=sys.stderr)
            return 2
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
