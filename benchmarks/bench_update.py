"""Time one BPTT update of frnn against a naive NumPy loop, PyTorch and JAX.

One *update* is what a training step costs on the model side: forward over a batch of
B task sequences of length T, backpropagation through time, and a gradient-descent step
theta <- theta - eta * dtheta, at D = 1 input, I = 32 hidden units, K = 1 output (the
task of README.md). Implementations, each timed only if importable:

* ``frnn``  -- :class:`frnn_cli.model.FullyRecurrentNetwork`: ``forward``, ``backward``, ``update``;
* ``naive`` -- the textbook loop written here as a student would: one sequence at a time,
  one step at a time, matrix-vector products and ``np.outer`` for the gradients;
* ``torch`` -- ``nn.RNN(nonlinearity="tanh", bias=False)`` + ``nn.Linear`` read-out +
  ``nn.BCEWithLogitsLoss`` + ``torch.optim.SGD`` step;
* ``jax``   -- ``lax.scan`` over time inside ``jit(grad(loss))`` plus the SGD step, jitted whole.

Before timing, every implementation's gradients are compared with frnn's: in float64
they must agree to a relative 1e-10 (max |g - g_frnn| / max |g_frnn|, per parameter), in
float32 to 1e-4 against frnn's float64 gradients; a mismatch stops the run (exit 1).

Timing: one thread everywhere (OPENBLAS/OMP/MKL_NUM_THREADS=1, ``torch.set_num_threads(1)``,
XLA's Eigen thread pool off, and the whole process pinned to one core unless ``--no-pin``),
the garbage collector off, warm-up (which includes JAX's
compilation) before any timed call, then interleaved blocks: every implementation runs a
block of calls in turn, so a burst of load from other processes hits all of them alike.
Each call is timed alone with ``time.perf_counter``; the table gives the median (p10-p90
in the JSON). The update runs with learning rate 0, so every repeat does identical
arithmetic on identical numbers. ``cpu/wall`` (process CPU time over wall time of the
timed calls) should be about 1.0; much more means a library used extra threads.

FLOPs and the floor: the FLOP count of one update (GEMMs at 2 m n k, one per elementwise
operation; tanh counted separately as evaluations) is divided by the time to give GFLOP/s,
against the peak measured here with ``np.dot`` of square matrices (256, 512 and 1024: the
best rate) on one thread. The floor is
FLOPs / peak + tanh evaluations x the measured time of one ``np.tanh`` value on a large
array: what the update would cost if every operation ran at the machine's best rate.
Both rates are measured on the machine the script runs on, per dtype, and printed with
the CPU model (/proc/cpuinfo) and the SIMD level NumPy dispatches to (``np.show_config``):
float64 ``np.tanh`` costs ~1.3 ns per value where NumPy uses AVX-512 and 5-19 ns where it
has AVX2 only, so an update's distance from its floor only compares across machines as
this ratio. ``NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"`` makes NumPy take
its AVX2 paths on an AVX-512 machine (NumPy's documented switch), to measure that case.

The breakdown (``--breakdown``): where one frnn update's time goes at each size. The
parts are timed alone with the update's own shapes and call counts (tanh: T calls on
(B, I); GEMM: the recurrent products, the input term and the dW, dR, dV sums;
elementwise: the adds, multiplies, 1 - a^2 and the SGD step), each with its floor at the
measured peak rates; ``rest`` is the update's time minus the parts: Python and NumPy call
overhead outside those calls (argument checks, allocation, reshapes, the loss).

The float32 subnormal check (``--subnormal``, on by default when float32 is timed):
frnn's float32 update at B = 32, T = 100 with the reference initialisation (deltas shrink
by ~0.06 per step and leave float32's normal range after ~25 steps), timed as shipped
(frnn flushes the error signal once it is below tiny/eps, see ``frnn_cli.model._flush_level``),
with that flush disabled, and with the CPU's flush-to-zero/denormals-are-zero mode set
through ``torch.set_flush_denormal`` (which also applies to NumPy in the same thread).

Usage (PyTorch and JAX are optional: ``pip install '.[bench]'``)::

    python benchmarks/bench_update.py                       # all sizes, float64 and float32
    python benchmarks/bench_update.py --B 32 --T 20 --dtype float64 --budget 3
    python benchmarks/bench_update.py --json bench_update.json
    python benchmarks/bench_update.py --breakdown --B 1,32,256 --T 20    # where the time goes
    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" python benchmarks/bench_update.py   # AVX2 paths

Exit codes: 0 done (targets are reported, not enforced), 1 gradients disagree, 2 bad usage.
"""

from __future__ import annotations

import os

# One thread everywhere. These must be set before NumPy, PyTorch or JAX start their pools.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
# Pin the process to one core before any library starts a thread (threads inherit it):
# JAX's runtime otherwise runs part of each small update on a second core (measured
# cpu/wall up to 1.8 at B = 1). --no-pin leaves the scheduler free.
PINNED_CPU = None
if "--no-pin" not in __import__("sys").argv and hasattr(os, "sched_setaffinity"):
    PINNED_CPU = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {PINNED_CPU})

import argparse  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from frnn_cli import __version__ as frnn_version  # noqa: E402
from frnn_cli import model  # noqa: E402
from frnn_cli.data import sample_batch  # noqa: E402
from frnn_cli.model import FullyRecurrentNetwork  # noqa: E402

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
ETA = 0.0  # learning rate of the timed step; see the module docstring
DTYPES = {"float64": np.float64, "float32": np.float32}
GRAD_RTOL = {"float64": 1e-10, "float32": 1e-4}
# Issue 6's targets: speed-up of frnn over each rival at B = 32, T = 20, float64.
TARGET_RATIOS = {"naive": 25.0, "torch": 5.0, "jax": 1.3}
TARGET_FLOOR = 2.0  # at B = 256, T = 20: frnn within this factor of the floor
# Issue 15's targets: at B = 32, T = 20 within 3x of the floor (in the sweep's dtype), and
# faster than PyTorch and JAX at B = 32 and 256, T = 20, in the same run.
TARGET_FLOOR_32 = 3.0


# --------------------------------------------------------------------------- implementations


def naive_update(W, R, V, x, y, eta):
    """One update as a student writes it: per sequence, per time step, no batching.

    W (I, D), R (I, I), V (K, I) are updated in place; x (B, T, D), y (B, K).
    Returns the mean loss and the gradients (dW, dR, dV) of the mean loss.
    """
    B, T, _ = x.shape
    dW, dR, dV = np.zeros_like(W), np.zeros_like(R), np.zeros_like(V)
    loss = 0.0
    for b in range(B):
        a = [np.zeros(R.shape[0], dtype=W.dtype)]  # a(0) = 0
        for t in range(T):
            a.append(np.tanh(W @ x[b, t] + R @ a[-1]))
        z = V @ a[-1]
        p = 1.0 / (1.0 + np.exp(-z))
        loss += np.sum(-y[b] * np.log(p) - (1 - y[b]) * np.log(1 - p))
        psi = p - y[b]
        dV += np.outer(psi, a[-1])
        g = V.T @ psi  # dL/da(T)
        for t in reversed(range(T)):
            delta = (1 - a[t + 1] ** 2) * g
            dW += np.outer(delta, x[b, t])
            dR += np.outer(delta, a[t])
            g = R.T @ delta
    dW /= B
    dR /= B
    dV /= B
    W -= eta * dW
    R -= eta * dR
    V -= eta * dV
    return loss / B, dW, dR, dV


class Impl:
    """One implementation on one problem: ``grads()`` for the check, ``step()`` to time."""

    name = ""

    def grads(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError


class Frnn(Impl):
    name = "frnn"

    def __init__(self, p, x, y, dtype):
        self.net = FullyRecurrentNetwork(D, I, K, dtype=dtype)
        for k in ("W", "R", "V"):
            getattr(self.net, k)[...] = p[k]
        self.x, self.y = x.astype(dtype), y.astype(dtype)

    def grads(self):
        self.net.forward(self.x, self.y)
        return tuple(g.copy() for g in self.net.backward())

    def step(self):
        self.net.forward(self.x, self.y)
        self.net.backward()
        self.net.update(ETA)


class Naive(Impl):
    name = "naive"

    def __init__(self, p, x, y, dtype):
        self.W, self.R, self.V = (p[k].astype(dtype) for k in ("W", "R", "V"))
        self.x, self.y = x.astype(dtype), y.astype(dtype)

    def grads(self):
        return naive_update(self.W, self.R, self.V, self.x, self.y, 0.0)[1:]

    def step(self):
        naive_update(self.W, self.R, self.V, self.x, self.y, ETA)


class Torch(Impl):
    name = "torch"

    def __init__(self, p, x, y, dtype):
        tdtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
        self.rnn = torch.nn.RNN(D, I, nonlinearity="tanh", bias=False, batch_first=True, dtype=tdtype)
        self.lin = torch.nn.Linear(I, K, bias=False, dtype=tdtype)
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(torch.from_numpy(p["W"]))
            self.rnn.weight_hh_l0.copy_(torch.from_numpy(p["R"]))
            self.lin.weight.copy_(torch.from_numpy(p["V"]))
        self.loss_fn = torch.nn.BCEWithLogitsLoss()  # mean over B (K = 1), as frnn
        self.opt = torch.optim.SGD([*self.rnn.parameters(), *self.lin.parameters()], lr=ETA)
        self.x = torch.from_numpy(x.astype(dtype))
        self.y = torch.from_numpy(y.astype(dtype))

    def _loss(self):
        _, h = self.rnn(self.x)  # h (1, B, I) = a(T)
        return self.loss_fn(self.lin(h[-1]), self.y)

    def grads(self):
        self.opt.zero_grad()
        self._loss().backward()
        ps = (self.rnn.weight_ih_l0, self.rnn.weight_hh_l0, self.lin.weight)
        return tuple(q.grad.detach().numpy().copy() for q in ps)

    def step(self):
        self.opt.zero_grad()
        self._loss().backward()
        self.opt.step()


def _jax_loss(params, x, y):
    W, R, V = params

    def cell(a, x_t):
        a = jnp.tanh(x_t @ W.T + a @ R.T)
        return a, None

    a0 = jnp.zeros((x.shape[0], R.shape[0]), x.dtype)
    a_T, _ = jax.lax.scan(cell, a0, jnp.swapaxes(x, 0, 1))
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
        self.params = tuple(jnp.asarray(p[k].astype(dtype)) for k in ("W", "R", "V"))
        self.x, self.y = jnp.asarray(x.astype(dtype)), jnp.asarray(y.astype(dtype))
        self.eta = jnp.asarray(ETA, dtype)  # traced, so XLA cannot fold the step away

    def grads(self):
        return tuple(np.asarray(g) for g in _jax_grad(self.params, self.x, self.y))

    def step(self):
        self.params = _jax_update(self.params, self.x, self.y, self.eta)
        jax.block_until_ready(self.params)


def available_impls() -> list[type[Impl]]:
    impls: list[type[Impl]] = [Frnn, Naive]
    if torch is not None:
        impls.append(Torch)
    if jax is not None:
        impls.append(Jax)
    return impls


# --------------------------------------------------------------------------- FLOPs and machine


def update_flops(B: int, T: int) -> tuple[int, int]:
    """FLOPs of one update (GEMMs at 2 m n k, 1 per elementwise op) and tanh evaluations.

    Counts what the textbook algorithm must do (frnn does exactly this): forward input
    term and recurrence at every step, read-out, V^T psi, R^T delta for t = T..2, dW over
    T steps, dR over T - 1 steps (a(0) = 0), dV; elementwise the add of the two terms of
    s(t), 1 - a^2 (2), the product with dL/da (1), and the update (2 per weight).
    """
    gemm = 2 * T * B * D * I + 2 * T * B * I * I + 2 * B * I * K  # forward
    gemm += 2 * B * K * I + 2 * (T - 1) * B * I * I  # backward through time
    gemm += 2 * T * B * D * I + 2 * (T - 1) * B * I * I + 2 * B * K * I  # dW, dR, dV
    elementwise = 4 * T * B * I + 2 * (I * D + I * I + K * I)
    return gemm + elementwise, T * B * I


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _aligned(n: int, dtype) -> np.ndarray:
    """n elements of ``dtype`` on a 64-byte boundary: the figure must not depend on malloc."""
    size = np.dtype(dtype).itemsize
    buf = np.empty(n * size + 64, np.uint8)
    off = -buf.ctypes.data % 64
    return buf[off : off + n * size].view(dtype)


def machine_peaks() -> dict:
    """Large-matmul GFLOP/s and the time of one tanh value, per dtype, on one thread.

    Both are best-of-many, so a burst of load from elsewhere lowers neither (a low peak
    would make the floor look easier to reach). tanh is timed on 32768 values, small
    enough to stay in L2 like frnn's per-step blocks, so it is tanh's compute cost.
    """
    rng = np.random.default_rng(0)
    out = {}
    for name, dtype in DTYPES.items():
        # The best rate over three sizes, each the best of many calls: on a shared machine a
        # 1024^3 product (~50 ms) is rarely left undisturbed, so it alone reads low (measured:
        # 9.5 GFLOP/s float64 at 1024 against 53 at 256 in the same minute, load average 9).
        gflops = 0.0
        for n, repeats in ((256, 400), (512, 100), (1024, 30)):
            a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
            c = np.empty((n, n), dtype)
            gflops = max(gflops, 2 * n**3 / _best_time(lambda: np.dot(a, b, out=c), repeats) / 1e9)
        v, w = _aligned(1 << 15, dtype), _aligned(1 << 15, dtype)  # frnn's blocks are aligned too
        v[:] = rng.uniform(-1, 1, v.size)
        t_tanh = _best_time(lambda: np.tanh(v, out=w), 300)
        out[name] = {"matmul_gflops": gflops, "tanh_ns": t_tanh / v.size * 1e9}
    return out


def openblas_core() -> str:
    """The kernel set OpenBLAS picked (e.g. SkylakeX), or "unknown"."""
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for lib in glob.glob(os.path.join(libdir, "*openblas*")):
        try:
            dll = ctypes.CDLL(lib)
        except OSError:
            continue
        for sym in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            fn = getattr(dll, sym, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return "unknown"


def numpy_simd() -> dict:
    """The SIMD extensions NumPy dispatches to on this machine (``np.show_config``).

    "highest" is the last of "found": the level of NumPy's fastest loops here (e.g.
    AVX512_ICL; X86_V3 is AVX2 + FMA3). NPY_DISABLE_CPU_FEATURES, if set, is reported too.
    """
    try:
        simd = np.show_config(mode="dicts")["SIMD Extensions"]
    except (TypeError, KeyError):  # NumPy < 1.26 has no mode="dicts"
        simd = {}
    found = list(simd.get("found", []))
    return {
        "baseline": list(simd.get("baseline", [])),
        "found": found,
        "not_found": list(simd.get("not found", [])),
        "highest": found[-1] if found else (simd.get("baseline") or ["unknown"])[-1],
        "NPY_DISABLE_CPU_FEATURES": os.environ.get("NPY_DISABLE_CPU_FEATURES"),
    }


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
        "python": platform.python_version(),
        "numpy": np.__version__,
        "frnn": frnn_version,
        "torch": torch.__version__ if torch is not None else None,
        "jax": jax.__version__ if jax is not None else None,
        "openblas_core": openblas_core(),
        "numpy_simd": numpy_simd(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "pinned_cpu": PINNED_CPU,
    }


# --------------------------------------------------------------------------- timing


def interleaved(fns: dict[str, Callable[[], None]], budget: float, min_calls: int) -> dict[str, dict]:
    """Time each function's calls in interleaved blocks; about ``budget`` seconds each.

    Returns, per name, the median / p10 / p90 of single-call times in microseconds, the
    number of timed calls and the ratio of process CPU time to wall time over them.
    """
    per_call = {}
    for name, fn in fns.items():  # warm-up (and JAX compilation), then a first estimate
        fn()
        t0 = time.perf_counter()
        n = 0
        while n < 3 or (time.perf_counter() - t0 < 0.05 and n < 200):
            fn()
            n += 1
        per_call[name] = (time.perf_counter() - t0) / n
    rounds = 20
    calls = {n: max(1, math.ceil(max(min_calls, budget / per_call[n]) / rounds)) for n in fns}
    times: dict[str, list[float]] = {n: [] for n in fns}
    cpu = dict.fromkeys(fns, 0.0)
    wall = dict.fromkeys(fns, 0.0)
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


def check_gradients(impls: dict[str, Impl], reference: tuple[np.ndarray, ...], rtol: float) -> dict[str, float]:
    """Largest relative gradient difference of each implementation from ``reference``."""
    worst = {}
    for name, impl in impls.items():
        got = impl.grads()
        rel = 0.0
        for pname, g, g_ref in zip("WRV", got, reference):
            scale = max(float(np.abs(g_ref).max()), 1e-300)  # dR is exactly 0 at T = 1
            err = float(np.abs(np.asarray(g, np.float64) - g_ref).max()) / scale
            if not err <= rtol:
                raise GradientMismatch(
                    f"{name}: d{pname} differs from frnn float64 by {err:.3g} (relative), allowed {rtol:g}"
                )
            rel = max(rel, err)
        worst[name] = rel
    return worst


class GradientMismatch(RuntimeError):
    """An implementation's gradients disagree with frnn's."""


def run_case(B: int, T: int, dtype_name: str, peaks: dict, budget: float, seed: int) -> dict:
    dtype = DTYPES[dtype_name]
    rng = np.random.default_rng([seed, B, T])
    x, y = sample_batch(rng, B, T)
    p = model.init_params(D, I, K, rng)  # reference initialisation, U(-0.01, 0.01)
    impls = {cls.name: cls(p, x, y, dtype) for cls in available_impls()}
    reference = Frnn(p, x, y, np.float64).grads()
    grad_rel = check_gradients(impls, reference, GRAD_RTOL[dtype_name])
    timings = interleaved({n: impl.step for n, impl in impls.items()}, budget, min_calls=5)
    flops, tanh_evals = update_flops(B, T)
    peak = peaks[dtype_name]
    floor_us = (flops / (peak["matmul_gflops"] * 1e9) + tanh_evals * peak["tanh_ns"] * 1e-9) * 1e6
    f = timings["frnn"]["us"]
    return {
        "B": B,
        "T": T,
        "dtype": dtype_name,
        "flops": flops,
        "tanh_evals": tanh_evals,
        "floor_us": floor_us,
        "frnn_gflops": flops / (f * 1e-6) / 1e9,
        "frnn_over_floor": f / floor_us,
        "grad_rel_err": grad_rel,
        "timings": timings,
        "speedup": {n: t["us"] / f for n, t in timings.items() if n != "frnn"},
    }


def subnormal_case(budget: float, seed: int, B: int = 32, T: int = 100) -> dict:
    """frnn float32 at long T: as shipped, without the flush, and under hardware FTZ/DAZ."""
    rng = np.random.default_rng([seed, B, T, 32])
    x, y = sample_batch(rng, B, T)
    p = model.init_params(D, I, K, rng)
    impl = Frnn(p, x, y, np.float32)
    _, cache = model.forward(impl.net.params, impl.x, impl.y)
    shipped_flush = model._flush_level

    def no_flush(dtype):
        return 0.0

    model._flush_level = no_flush
    try:
        delta = model.backward(impl.net.params, cache)["delta"]
    finally:
        model._flush_level = shipped_flush
    tiny = np.finfo(np.float32).tiny
    n_sub = int(np.count_nonzero((delta != 0) & (np.abs(delta) < tiny)))

    def unflushed():
        model._flush_level = no_flush
        try:
            impl.step()
        finally:
            model._flush_level = shipped_flush

    fns = {"frnn (flush, shipped)": impl.step, "frnn without flush": unflushed}
    if torch is not None:

        def hardware_ftz():
            torch.set_flush_denormal(True)  # sets FTZ/DAZ in MXCSR for this thread
            try:
                unflushed()
            finally:
                torch.set_flush_denormal(False)

        fns["frnn without flush, CPU FTZ/DAZ on"] = hardware_ftz
    timings = interleaved(fns, budget, min_calls=5)
    return {
        "B": B,
        "T": T,
        "dtype": "float32",
        "subnormal_deltas_without_flush": n_sub,
        "delta_size": delta.size,
        "timings": timings,
    }


def breakdown_case(B: int, T: int, dtype_name: str, peaks: dict, budget: float, seed: int) -> dict:
    """Where one update's time goes: tanh, GEMM, elementwise, and the rest (call overhead).

    The update is what :func:`frnn_cli.train.train` does per step: ``model.forward``,
    ``model.backward`` and an SGD step (learning rate 0). Each part is timed alone, with
    the update's own shapes, values and number of calls, interleaved with the update
    itself; "rest" is the update minus the parts. Returns µs per update (medians).
    """
    from frnn_cli.optim import SGD

    dtype = DTYPES[dtype_name]
    rng = np.random.default_rng([seed, B, T, 7])
    x, y = sample_batch(rng, B, T, dtype)
    p = model.init_params(D, I, K, rng, dtype=dtype)
    opt = SGD(ETA)
    _, cache = model.forward(p, x, y)
    g = model.backward(p, cache)
    A, xt, delta = cache.A, cache.x, g["delta"]
    RT, WT, VT = (np.ascontiguousarray(p[k].T) for k in ("R", "W", "V"))
    R, V = p["R"], p["V"]
    s, row, err = np.empty((B, I), dtype), np.empty((B, I), dtype), np.empty((B, I), dtype)
    buf = np.empty_like(delta)
    psi = np.full((B, K), 0.01, dtype)
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    scratch = {k: v.copy() for k, v in p.items()}

    def update():
        _, c = model.forward(p, x, y)
        opt.step(p, model.backward(p, c))

    def tanh():
        for t in range(1, T + 1):
            np.tanh(A[t], row)

    def gemm():
        np.dot(xt.reshape(T * B, D), WT, out=buf.reshape(T * B, I))  # input term W x(t)
        for t in range(T):
            A[t].dot(RT, s)  # forward recurrence
        np.dot(A[T], VT)  # read-out z(T)
        np.dot(psi, V, err)  # dL/da(T)
        for t in range(T - 1, 0, -1):
            delta[t].dot(R, err)  # BPTT
        delta.reshape(T * B, I).T @ xt.reshape(T * B, D)  # dW
        model._sum_outer(delta[1:], A[1:T])  # dR
        psi.T @ A[T]  # dV

    def elementwise():
        for t in range(1, T + 1):
            np.add(A[t], s, row)  # W x(t) + R a(t-1)
        np.multiply(A[1:], A[1:], buf)  # 1 - a^2, two passes
        np.subtract(1.0, buf, buf)
        for t in range(T - 1, 0, -1):
            np.multiply(buf[t], err, row)  # delta(t) = (1 - a^2) * dL/da(t)
        opt.step(scratch, grads)  # the SGD step: 6 in-place calls on the (I, .) weight arrays

    parts = {"tanh": tanh, "GEMM": gemm, "elementwise": elementwise}
    t = interleaved({"update": update, **parts}, budget, min_calls=5)
    flops, tanh_evals = update_flops(B, T)
    elem_flops = 4 * T * B * I + 2 * (I * D + I * I + K * I)
    peak = peaks[dtype_name]
    floors = {
        "tanh": tanh_evals * peak["tanh_ns"] * 1e-3,
        "GEMM": (flops - elem_flops) / (peak["matmul_gflops"] * 1e3),
        "elementwise": elem_flops / (peak["matmul_gflops"] * 1e3),
    }
    us = {n: t[n]["us"] for n in t}
    us["rest"] = us["update"] - sum(us[n] for n in parts)
    return {"B": B, "T": T, "dtype": dtype_name, "us": us, "floor_us": floors,
            "calls": {"tanh": T, "GEMM": 2 * T + 5, "elementwise": 2 * T + 1 + 6}}


# --------------------------------------------------------------------------- report


def _fmt_us(us: float) -> str:
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def markdown_table(cases: list[dict], names: list[str]) -> str:
    rivals = [n for n in names if n != "frnn"]
    head = ["B", "T", "dtype", *(f"{n} µs" for n in names), *(f"{n}/frnn" for n in rivals)]
    head += ["frnn GFLOP/s", "floor µs", "frnn/floor"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for c in cases:
        row = [str(c["B"]), str(c["T"]), c["dtype"]]
        row += [_fmt_us(c["timings"][n]["us"]) if n in c["timings"] else "-" for n in names]
        row += [f"{c['speedup'][n]:.1f}x" if n in c["speedup"] else "-" for n in rivals]
        row += [f"{c['frnn_gflops']:.1f}", _fmt_us(c["floor_us"]), f"{c['frnn_over_floor']:.2f}x"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def breakdown_table(rows: list[dict]) -> str:
    """Markdown: µs per update of each part (its floor in parentheses) and the rest."""
    head = ["B", "T", "dtype", "update µs", "tanh µs (floor)", "GEMM µs (floor)", "elementwise µs (floor)",
            "rest µs", "update / floor"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in rows:
        u, f = r["us"], r["floor_us"]
        floor = sum(f.values())
        cells = [str(r["B"]), str(r["T"]), r["dtype"], _fmt_us(u["update"])]
        cells += [f"{_fmt_us(u[n])} ({_fmt_us(f[n])})" for n in ("tanh", "GEMM", "elementwise")]
        cells += [_fmt_us(u["rest"]), f"{u['update'] / floor:.1f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_lines(cases: list[dict]) -> list[str]:
    lines = []
    for c in cases:
        if (c["B"], c["T"], c["dtype"]) == (32, 20, "float64"):
            for n, want in TARGET_RATIOS.items():
                if n in c["speedup"]:
                    got = c["speedup"][n]
                    verdict = "PASS" if got >= want else "MISS"
                    lines.append(f"{verdict}  B=32 T=20 float64: frnn {got:.1f}x faster than {n} (target >= {want:g}x)")
        if (c["B"], c["T"]) == (32, 20):
            got = c["frnn_over_floor"]
            lines.append(
                f"{'PASS' if got <= TARGET_FLOOR_32 else 'MISS'}  B=32 T=20 {c['dtype']}: frnn at {got:.2f}x the floor "
                f"({_fmt_us(c['timings']['frnn']['us'])} vs {_fmt_us(c['floor_us'])} µs; target <= {TARGET_FLOOR_32:g}x "
                "in the sweep's dtype)"
            )
        if (c["B"], c["T"]) in ((32, 20), (256, 20)):
            for n in ("torch", "jax"):
                if n in c["speedup"]:
                    got = c["speedup"][n]
                    lines.append(f"{'PASS' if got > 1 else 'MISS'}  B={c['B']} T=20 {c['dtype']}: frnn {got:.2f}x "
                                 f"faster than {n} (target > 1x)")
        if (c["B"], c["T"]) == (256, 20):
            got = c["frnn_over_floor"]
            lines.append(
                f"{'PASS' if got <= TARGET_FLOOR else 'MISS'}  B=256 T=20 {c['dtype']}: frnn at {got:.2f}x the floor "
                f"({_fmt_us(c['timings']['frnn']['us'])} vs {_fmt_us(c['floor_us'])} µs; target <= {TARGET_FLOOR:g}x)"
            )
    return lines


def _int_list(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return vals


def _dtype_list(text: str) -> list[str]:
    vals = text.split(",")
    bad = [v for v in vals if v not in DTYPES]
    if bad:
        raise argparse.ArgumentTypeError(f"expected float64 and/or float32, got {','.join(bad)!r}")
    return vals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Time one BPTT update of frnn against a naive NumPy loop, PyTorch and JAX (one thread).",
        epilog="example: python benchmarks/bench_update.py --B 32 --T 20 --dtype float64 --json out.json",
    )
    ap.add_argument("--B", type=_int_list, default=[1, 32, 256], help="batch sizes, e.g. 1,32,256")
    ap.add_argument("--T", type=_int_list, default=[1, 10, 20, 100], help="sequence lengths, e.g. 1,10,20,100")
    ap.add_argument("--dtype", type=_dtype_list, default=["float64", "float32"], help="float64 and/or float32")
    ap.add_argument(
        "--budget", type=float, default=1.0, help="seconds of timed calls per implementation and case (default 1)"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the problem instances")
    ap.add_argument("--subnormal", action=argparse.BooleanOptionalAction, default=None,
                    help="run the float32 subnormal check (default: when float32 is timed)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    ap.add_argument("--breakdown", action="store_true",
                    help="instead of the rivals: where frnn's update time goes (tanh, GEMM, elementwise, rest)")
    ap.add_argument("--model", choices=("rnn", "lstm"), default="rnn",
                    help="lstm: time the LSTM update instead (benchmarks/bench_lstm.py, (B, T) = (1, 100), (32, 20), "
                         "(32, 100) unless --B/--T are given)")
    args = ap.parse_args(argv)
    if args.model == "lstm":
        import bench_lstm  # the LSTM's rivals live there: nn.LSTM and a lax.scan LSTM

        given = argv if argv is not None else sys.argv[1:]
        sizes = [] if not any(a.startswith(("--B", "--T")) for a in given) else [
            "--sizes", ",".join(f"{b}x{t}" for b in args.B for t in args.T)]
        return bench_lstm.main([*sizes, "--dtype", args.dtype[0], "--budget", str(args.budget),
                                "--seed", str(args.seed), *(["--json", args.json] if args.json else []),
                                *(["--no-pin"] if args.no_pin else [])])
    if not args.budget > 0:
        ap.error(f"--budget must be > 0 seconds, got {args.budget}")
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        ap.error(f"--json {args.json}: its folder does not exist")

    if torch is not None:
        torch.set_num_threads(1)
    info = machine_info()
    peaks = machine_peaks()
    names = [cls.name for cls in available_impls()]
    pin = f"pinned to cpu {PINNED_CPU}" if PINNED_CPU is not None else "not pinned"
    print(f"# frnn {info['frnn']} update benchmark: D={D} I={I} K={K}, one thread ({pin}), median µs per update")
    print(f"# {info['cpu']}, {info['cores']} cores; numpy {info['numpy']} (OpenBLAS core {info['openblas_core']}"
          + (f", OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}" if info["OPENBLAS_CORETYPE"] else "")
          + f"), torch {info['torch']}, jax {info['jax']}")
    simd = info["numpy_simd"]
    off = simd["NPY_DISABLE_CPU_FEATURES"]
    print(f"# NumPy SIMD: highest dispatch level {simd['highest']} (found: {', '.join(simd['found']) or '-'}; "
          f"baseline {', '.join(simd['baseline']) or '-'})" + (f"; NPY_DISABLE_CPU_FEATURES={off!r}" if off else ""))
    for name, pk in peaks.items():
        print(f"# floor of this machine, {name}: matmul peak {pk['matmul_gflops']:.1f} GFLOP/s (best np.dot of n = 256..1024), "
              f"tanh {pk['tanh_ns']:.2f} ns/value (np.tanh on 32768 values)")
    missing = sorted({"torch", "jax"} - set(names))
    if missing:
        print(f"# not installed, skipped: {', '.join(missing)}")
    print(flush=True)

    if args.breakdown:
        rows = []
        for dtype_name in args.dtype:
            for B in args.B:
                for T in args.T:
                    rows.append(breakdown_case(B, T, dtype_name, peaks, args.budget, args.seed))
                    u = rows[-1]["us"]
                    print(f"  B={B:<3d} T={T:<3d} {dtype_name}: " + ", ".join(f"{n} {_fmt_us(v)} µs" for n, v in u.items()),
                          file=sys.stderr, flush=True)
        print(breakdown_table(rows))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"machine": info, "peaks": peaks, "breakdown": rows}, f, indent=1)
            print(f"\nwrote {args.json}")
        return 0

    cases = []
    try:
        for dtype_name in args.dtype:
            for B in args.B:
                for T in args.T:
                    c = run_case(B, T, dtype_name, peaks, args.budget, args.seed)
                    cases.append(c)
                    t = c["timings"]
                    cpu = max(v["cpu_per_wall"] for v in t.values())
                    each = ", ".join(f"{n} {_fmt_us(v['us'])} µs" for n, v in t.items())
                    print(f"  B={B:<3d} T={T:<3d} {dtype_name}: {each}  (cpu/wall <= {cpu:.2f})", file=sys.stderr, flush=True)
    except GradientMismatch as e:
        print(f"error: gradients disagree: {e}", file=sys.stderr)
        return 1

    print(markdown_table(cases, names))
    print()
    for line in target_lines(cases):
        print(line)

    sub = None
    if args.subnormal or (args.subnormal is None and "float32" in args.dtype):
        sub = subnormal_case(args.budget, args.seed)
        print(f"\nfloat32 subnormals, frnn B={sub['B']} T={sub['T']}, reference init: "
              f"{sub['subnormal_deltas_without_flush']} of {sub['delta_size']} deltas subnormal without the flush")
        for n, v in sub["timings"].items():
            print(f"  {n:36s} {_fmt_us(v['us'])} µs")

    if args.json:
        try:
            with open(args.json, "w") as f:
                json.dump({"machine": info, "peaks": peaks, "eta": ETA, "cases": cases, "subnormal": sub}, f, indent=1)
        except OSError as e:
            print(f"error: --json {args.json}: cannot write it ({e.strerror})", file=sys.stderr)
            return 2
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
