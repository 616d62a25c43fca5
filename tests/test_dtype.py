"""The ``dtype`` key: a float32 run computes in float32 throughout, and reaches float64's verdict.

Letters: B sequences, T time steps, I hidden units.
"""

from __future__ import annotations

import numpy as np
import yaml
import pytest

from frnn_cli import model
from frnn_cli.config import Config, load_config
from frnn_cli.data import sample_batch
from frnn_cli.errors import BadInput
from frnn_cli.optim import clip_global_norm, make_optimizer
from frnn_cli.train import train
from frnn_cli.vanishing import jacobian_norms, summarize

#: The NumPy functions the forward pass, BPTT and the optimizers call by name.
SPIED = ("dot", "add", "subtract", "multiply", "divide", "tanh", "sqrt", "logaddexp", "matmul", "exp")


@pytest.fixture
def float64_calls(monkeypatch):
    """Every float64 array or scalar handed to one of the SPIED NumPy functions, as text.

    An upcast inside the time loop shows up here even when its result is cast back into a
    float32 buffer (np.add(a32, s64, out=a32) casts silently), which the dtypes of the
    outputs alone would not reveal.
    """
    seen: list[str] = []

    def spy(name, fn):
        def call(*args, **kwargs):
            for a in (*args, *kwargs.values()):
                for v in a if isinstance(a, tuple) else (a,):
                    if isinstance(v, (np.ndarray, np.generic)) and v.dtype == np.float64:
                        seen.append(f"np.{name}: a float64 {type(v).__name__} of shape {np.shape(v)}")
            return fn(*args, **kwargs)

        return call

    for name in SPIED:
        monkeypatch.setattr(np, name, spy(name, getattr(np, name)))
    return seen


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("per_step", [False, True])
def test_float32_forward_backward_update_stay_float32(float64_calls, optimizer, per_step):
    B, T, I = 8, 12, 16
    rng = np.random.default_rng(5)
    params = model.init_params(1, I, 1, rng, init="glorot", dtype=np.float32)
    x, y = sample_batch(rng, B, T, np.float32)
    if per_step:
        y = np.repeat(y[:, None, :], T, axis=1)
    opt = make_optimizer(optimizer, 0.1)
    for _ in range(2):  # the second step runs with the optimizer state made by the first
        loss, cache = model.forward(params, x, y)
        grads = model.backward(params, cache)
        arrays = {f"cache.{k}": getattr(cache, k) for k in ("x", "A", "z", "y")}
        arrays.update({f"grad {k}": v for k, v in grads.items()})
        clip_global_norm(grads, 10.0, 1.0)  # scales in place: must not upcast either
        opt.step(params, grads)
        arrays.update({f"param {k}": v for k, v in params.items()})
        for k in ("velocity", "m", "v"):
            arrays.update({f"{optimizer}.{k}[{n}]": a for n, a in getattr(opt, k, {}).items()})
        wrong = {k: str(a.dtype) for k, a in arrays.items() if a.dtype != np.float32}
        assert not wrong, f"not float32: {wrong}"
        assert np.isfinite(loss)
    assert not float64_calls, "\n".join(float64_calls[:10])


def test_float64_inputs_to_a_float32_network_are_converted_once(float64_calls):
    # The network's dtype decides: float64 data is rounded on entry, not computed in float64.
    params = model.init_params(1, 8, 1, np.random.default_rng(1), dtype=np.float32)
    x, y = sample_batch(np.random.default_rng(2), 4, 6)  # float64
    _, cache = model.forward(params, x, y)
    assert cache.A.dtype == cache.x.dtype == cache.y.dtype == np.float32
    np.testing.assert_array_equal(cache.x, x.transpose(1, 0, 2).astype(np.float32))
    assert not float64_calls, "\n".join(float64_calls[:10])


def test_float32_gradients_match_float64_to_float32_precision():
    # Independent check of the float32 path's values: the same weights (rounded) and data
    # through float64 BPTT; T = 20 at the reference init reaches 1e-23 in the error signal.
    rng = np.random.default_rng(7)
    p32 = model.init_params(1, 32, 1, rng, dtype=np.float32)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    x, y = sample_batch(rng, 32, 20, np.float32)
    g32 = model.backward(p32, model.forward(p32, x, y)[1])
    g64 = model.backward(p64, model.forward(p64, x.astype(np.float64), y.astype(np.float64))[1])
    for k in model.PARAM_NAMES:
        err = np.abs(g32[k] - g64[k]).max() / np.abs(g64[k]).max()
        assert err < 1e-5, f"d{k}: float32 differs from float64 by {err:.2g} relative"


def test_dtype_key_rejects_other_types():
    with pytest.raises(BadInput, match="dtype: expected one of float64, float32, got 'float16'"):
        load_config(None, ["dtype=float16"])
    assert load_config(None, ["dtype=float32"]).dtype == "float32"


def test_train_in_float32_returns_float32_and_the_same_verdict_as_float64():
    results = {d: train(Config(T=2, steps=300, dtype=d, n_test=500)) for d in ("float32", "float64")}
    for d, r in results.items():
        dtypes = {k: str(v.dtype) for k, v in r.params.items()}
        assert set(dtypes.values()) == {d}, f"{d} run returned {dtypes}"
        assert r.status == "completed", (d, r.divergence)
    r32, r64 = results["float32"], results["float64"]
    assert r32.test.better_than_chance == r64.test.better_than_chance, (r32.test, r64.test)
    assert r64.test.better_than_chance, r64.test  # T = 2 is learned by the reference setting
    # Same data and initial weights (rounded), so the runs should stay close, not just agree.
    assert abs(r32.test.accuracy - r64.test.accuracy) <= 0.02, (r32.test.accuracy, r64.test.accuracy)
    # The Jacobian diagnostic is taken in float64 for both.
    assert r32.history[0].jacobian_norm == pytest.approx(r64.history[0].jacobian_norm, rel=1e-5)


def test_vanishing_of_a_float32_network_resolves_norms_below_float32_range():
    # At T = 40 the Jacobian norm of the reference init is ~1e-58: 0 in float32 arithmetic.
    rng = np.random.default_rng(3)
    p32 = model.init_params(1, 32, 1, rng, dtype=np.float32)
    x, y = sample_batch(rng, 16, 40, np.float32)
    norms32 = jacobian_norms(p32, x)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    norms64 = jacobian_norms(p64, x.astype(np.float64))
    assert norms32.dtype == np.float64
    assert norms32[-1].min() > 0, "the float32 network's Jacobian norms underflowed to 0"
    # The trajectories differ by float32 rounding only (~1e-7 relative per step).
    np.testing.assert_allclose(norms32, norms64, rtol=1e-4)
    s = summarize(p32, x, y)
    assert not s.violations, s.violations[:3]
    assert s.error_median[0] > 0


def test_describe_names_float32_runs_only():
    from frnn_cli.train import describe

    assert describe(Config(T=2)) == "T=2, lr=1, sgd, hidden=32, init uniform ±0.01, B=32, seed 0"
    assert describe(Config(T=2, dtype="float32")).endswith("seed 0, float32")


def test_cli_train_float32_then_vanishing_of_that_run(tmp_path, cli):
    r = cli("train", "T=2", "steps=50", "dtype=float32", "n_test=200", "--no-plots", "--runs-dir", str(tmp_path))
    assert r.exit_code == 0 and r.exception is None, r.output
    (run,) = [p for p in tmp_path.iterdir() if "train" in p.name]
    with np.load(run / "model.npz") as f:
        assert {f[k].dtype for k in f.files} == {np.dtype(np.float32)}
    r = cli("vanishing", "--run", str(run), "T=30", "n=20", "--runs-dir", str(tmp_path))
    assert r.exit_code == 0 and r.exception is None, r.output
    assert "the bound holds" in r.output, r.output
    (van,) = [p for p in tmp_path.iterdir() if "vanishing" in p.name]
    assert "dtype: float32" in (van / "config.yaml").read_text()  # the trained run's own dtype


def test_sweep_and_compare_jobs_train_in_float32_and_train_in_float64_by_default(tmp_path, cli):
    # The measured default (benchmarks/README.md): float32 for sweep and compare, float64 for train.
    words = ["steps=20", "n_val=16", "n_test=16", "--seeds", "1", "--workers", "1"]
    r = cli("sweep", "T=1", "lr=1", *words, "--runs-dir", str(tmp_path / "s"))
    assert r.exit_code == 0, r.stdout + r.stderr
    r = cli("compare", "--recipes", "reference", "T=1", *words, "--runs-dir", str(tmp_path / "c"))
    assert r.exit_code == 0, r.stdout + r.stderr
    r = cli("train", "T=1", "steps=20", "n_val=16", "n_test=16", "--no-plots", "--runs-dir", str(tmp_path / "t"))
    assert r.exit_code == 0, r.stdout + r.stderr
    jobs = list((tmp_path / "s").glob("*/jobs/*/config.yaml")) + list((tmp_path / "c").glob("*/recipes/*/jobs/*/config.yaml"))
    assert len(jobs) > 1 and all(yaml.safe_load(p.read_text())["dtype"] == "float32" for p in jobs), jobs
    (run,) = (tmp_path / "t").glob("*/config.yaml")
    assert yaml.safe_load(run.read_text())["dtype"] == "float64"
    with np.load(run.parent / "model.npz") as f:
        assert f["R"].dtype == np.float64
    with np.load(jobs[0].parent / "model.npz") as f:
        assert f["R"].dtype == np.float32
