"""The vanishing-gradient maths against finite differences and BPTT, and `frnn vanishing` end to end."""

import csv
import json

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from frnn_cli import config, model, vanishing
from frnn_cli.cli import cmd_vanishing
from frnn_cli.runs import atomic_save_npz, atomic_write_text
from helpers import expect_exit, msg as _msg




def _problem(seed, B=3, T=7, D=1, I=5, K=1, scale=0.6):
    """A small network with clearly non-linear tanh (|s| of order 1) and random inputs/targets."""
    rng = np.random.default_rng(seed)
    params = model.init_params(D, I, K, rng, init_scale=scale)
    x = rng.normal(size=(B, T, D))
    y = (rng.random((B, K)) < 0.5).astype(np.float64)
    return params, x, y


def _a1(params, x):
    """a(1) = tanh(W x(1)), since a(0) = 0."""
    return np.tanh(x[:, 0] @ params["W"].T)


def _end_loss(params, a_T, y):
    """Per-sequence loss L(T) (B,) from the final state a(T) (B, I)."""
    return model.bce_with_logits(a_T @ params["V"].T, y).sum(axis=1)


# ---------------------------------------------------------------------------------------
# The recurrence from a given state, and the Jacobian product


def test_run_from_state_reproduces_run_forward():
    params, x, _ = _problem(1, D=2)
    A = model.run_forward(params, np.ascontiguousarray(x.transpose(1, 0, 2)))  # (T+1, B, I)
    A1 = vanishing.run_from_state(params, x, _a1(params, x))  # (T, B, I)
    np.testing.assert_allclose(A1, A[1:], rtol=0, atol=1e-14)


@pytest.mark.parametrize("seed, scale", [(0, 0.3), (1, 0.6), (2, 1.5)])
def test_jacobian_products_match_finite_differences(seed, scale):
    # Perturb the state after step 1, entry by entry, and difference a(t) for every t.
    params, x, _ = _problem(seed, B=2, T=8, D=2, I=4, scale=scale)
    J = vanishing.jacobian_products(params, x)  # (T, B, I, I)
    a1 = _a1(params, x)
    eps = 1e-6
    J_num = np.empty_like(J)
    for j in range(a1.shape[1]):
        plus, minus = a1.copy(), a1.copy()
        plus[:, j] += eps
        minus[:, j] -= eps
        diff = vanishing.run_from_state(params, x, plus) - vanishing.run_from_state(params, x, minus)
        J_num[:, :, :, j] = diff / (2 * eps)  # column j of da(t)/da(1)
    err = np.abs(J - J_num).max()
    assert err < 1e-8, f"max |J - J_fd| = {err:.3g}; J(T)[0] =\n{J[-1, 0]}\nfinite differences:\n{J_num[-1, 0]}"
    np.testing.assert_array_equal(J[0], np.broadcast_to(np.eye(4), J[0].shape))


def test_jacobian_norms_are_spectral_norms_of_the_products():
    params, x, _ = _problem(3, B=4, T=6, scale=1.0)
    J = vanishing.jacobian_products(params, x)
    expected = np.array([[np.linalg.svd(J[t, b], compute_uv=False)[0] for b in range(4)] for t in range(6)])
    np.testing.assert_allclose(vanishing.jacobian_norms(params, x), expected, rtol=1e-12)
    np.testing.assert_allclose(vanishing.jacobian_norms(params, x, end_only=True), expected[-1], rtol=1e-12)


# ---------------------------------------------------------------------------------------
# The bound ||da(t)/da(1)||_2 <= ||R||_2^(t-1)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    I=st.integers(1, 8),
    T=st.integers(1, 25),
    scale=st.sampled_from([0.01, 0.1, 0.3, 1.0, 2.0]),
)
def test_bound_holds_on_random_networks(seed, I, T, scale):
    params, x, _ = _problem(seed, B=3, T=T, I=I, scale=scale)
    norms = vanishing.jacobian_norms(params, x)
    bound = vanishing.jacobian_bound(params["R"], T)
    ratio = norms / np.where(bound > 0, bound, 1.0)[:, None]
    assert vanishing.bound_violations(norms, bound).size == 0, f"max norm / bound = {ratio.max():.6g}"


@pytest.mark.parametrize("scale, above_one", [(0.1, False), (1.0, True)])
def test_bound_holds_below_and_above_one(scale, above_one):
    # I = 16: uniform(-0.1, 0.1) gives ||R||_2 ~ 0.5, uniform(-1, 1) gives ~ 5.
    params, x, _ = _problem(7, B=20, T=15, I=16, scale=scale)
    r = vanishing.spectral_norm(params["R"])
    assert (r > 1) == above_one, f"||R||_2 = {r:.4g}"
    norms = vanishing.jacobian_norms(params, x)
    bound = vanishing.jacobian_bound(params["R"], 15)
    assert np.all(norms <= bound[:, None] * (1 + 1e-12)), f"max ratio {np.max(norms / bound[:, None]):.6g}"
    # A one-step Jacobian diag(1 - a^2) R has norm at most ||R||_2 and, with a != 0, below it.
    assert np.all(norms[1] < r)


def test_bound_is_tight_for_a_scaled_orthogonal_R_at_zero_state():
    # W = 0 keeps a(t) = 0, so every 1 - a^2 = 1 and J(t) = R^(t-1); with R = c Q (Q orthogonal)
    # ||R^(t-1)||_2 = c^(t-1) exactly: the bound is attained.
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    c = 0.7
    params = {"W": np.zeros((6, 1)), "R": c * Q, "V": np.ones((1, 6))}
    x = rng.normal(size=(2, 12, 1))
    norms = vanishing.jacobian_norms(params, x)
    np.testing.assert_allclose(norms, np.repeat((c ** np.arange(12))[:, None], 2, axis=1), rtol=1e-12)
    np.testing.assert_allclose(vanishing.jacobian_bound(params["R"], 12), c ** np.arange(12), rtol=1e-12)


def test_bound_violations_finds_a_violation_and_ignores_rounding():
    bound = np.array([1.0, 0.5, 0.25])
    norms = np.array([[1.0, 1.0], [0.5 * (1 + 1e-13), 0.4], [0.2, 0.26]])
    np.testing.assert_array_equal(vanishing.bound_violations(norms, bound), [[3, 1]])
    assert vanishing.bound_violations(np.array([[np.nan]]), np.array([1.0])).tolist() == [[1, 0]]


def test_spectral_radius_of_a_triangular_matrix_is_its_largest_diagonal_entry():
    M = np.array([[0.5, 10.0], [0.0, -0.8]])
    assert vanishing.spectral_radius(M) == pytest.approx(0.8, rel=1e-14)
    assert vanishing.spectral_norm(M) > 10.0


# ---------------------------------------------------------------------------------------
# The back-propagated error dL/da(t)


@pytest.mark.parametrize("seed", [0, 1])
def test_error_vectors_match_finite_differences_at_every_t(seed):
    params, x, y = _problem(seed, B=2, T=6, I=4, scale=0.8)
    G = vanishing.error_vectors(params, x, y)  # (T, B, I)
    A = model.run_forward(params, np.ascontiguousarray(x.transpose(1, 0, 2)))
    T, B, I = G.shape
    eps = 1e-6
    for t in range(1, T + 1):
        # Restart the recurrence from a(t) (perturbed) and run to T.
        for j in range(I):
            plus, minus = A[t].copy(), A[t].copy()
            plus[:, j] += eps
            minus[:, j] -= eps
            Lp = _end_loss(params, vanishing.run_from_state(params, x[:, t - 1:], plus)[-1], y)
            Lm = _end_loss(params, vanishing.run_from_state(params, x[:, t - 1:], minus)[-1], y)
            num = (Lp - Lm) / (2 * eps)  # (B,)
            np.testing.assert_allclose(G[t - 1, :, j], num, rtol=1e-6, atol=1e-10, err_msg=f"t={t}, j={j}")


def test_error_vectors_match_model_backward_delta():
    # backward's delta(t) = (1 - a(t)^2) * dL_batch/da(t), and dL_batch/da(t) = g(t) / B;
    # so g(t) = B R^T delta(t+1) for t < T.
    params, x, y = _problem(4, B=5, T=9, I=6, scale=0.7)
    _, cache = model.forward(params, x, y)
    delta = model.backward(params, cache)["delta"]  # (T, B, I), time-major
    G = vanishing.error_vectors(params, x, y)
    B = x.shape[0]
    np.testing.assert_allclose(G[:-1], B * delta[1:] @ params["R"], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(B * delta[-1], (1 - cache.A[-1] ** 2) * G[-1], rtol=1e-12)
    np.testing.assert_allclose(vanishing.error_norms(params, x, y), np.linalg.norm(G, axis=2), rtol=1e-15)


def test_error_at_step_one_is_the_jacobian_transpose_times_the_error_at_T():
    params, x, y = _problem(5, B=3, T=10, I=5, scale=1.2)
    J = vanishing.jacobian_products(params, x)[-1]  # (B, I, I)
    G = vanishing.error_vectors(params, x, y)
    np.testing.assert_allclose(G[0], np.einsum("bij,bi->bj", J, G[-1]), rtol=1e-10, atol=1e-300)


# ---------------------------------------------------------------------------------------
# The summary


def test_summarize_medians_maxima_and_chunking(monkeypatch):
    params, x, y = _problem(6, B=7, T=5, I=3, scale=0.9)
    jac = vanishing.jacobian_norms(params, x)
    err = vanishing.error_norms(params, x, y)
    # 9 entries per chunk = 1 sequence of I = 3 at a time: the chunked result must not change.
    monkeypatch.setattr(vanishing, "_MAX_JACOBIAN_ENTRIES", 9)
    s = vanishing.summarize(params, x, y)
    np.testing.assert_array_equal(s.t, np.arange(1, 6))
    np.testing.assert_allclose(s.jacobian_median, np.median(jac, axis=1), rtol=1e-14)
    np.testing.assert_allclose(s.jacobian_max, jac.max(axis=1), rtol=1e-14)
    np.testing.assert_allclose(s.error_median, np.median(err, axis=1), rtol=1e-14)
    np.testing.assert_allclose(s.error_max, err.max(axis=1), rtol=1e-14)
    assert s.spectral_norm_R == pytest.approx(np.linalg.svd(params["R"], compute_uv=False)[0], rel=1e-14)
    assert s.n == 7 and s.violations == []
    assert s.per_step_factor() == pytest.approx(s.jacobian_median[-1] ** 0.25, rel=1e-12)


# ---------------------------------------------------------------------------------------
# The command


def _only_folder(runs_dir):
    folders = list(runs_dir.iterdir())
    assert len(folders) == 1, folders
    return folders[0]


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_help_ends_with_an_example(cli):
    r = cli("vanishing", "--help")
    assert r.exit_code == 0, _msg(r)
    assert "Example: frnn vanishing" in r.stdout


def test_cli_writes_csv_png_config_meta(cli, tmp_path):
    r = cli("vanishing", "T=6", "n=10", "hidden=8", "--seed", "3", "--runs-dir", str(tmp_path))
    assert r.exit_code == 0, _msg(r)
    folder = _only_folder(tmp_path)
    assert "-vanishing-" in folder.name and str(folder) in r.stdout.replace("\n", "")
    rows = _read_csv(folder / "vanishing.csv")
    assert [int(row["t"]) for row in rows] == list(range(1, 7))
    assert tuple(rows[0]) == cmd_vanishing.CSV_COLUMNS
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["seed"] == 3 and meta["bound_violations"] == 0
    # The recorded seed reproduces the numbers: same weights and sequences, same summary.
    cfg = config.load_config(folder / "config.yaml", schema=cmd_vanishing.VanishingConfig)
    assert (cfg.T, cfg.n, cfg.hidden, cfg.seed) == (6, 10, 8, 3)
    init_ss, data_ss = np.random.SeedSequence(3).spawn(2)
    params = model.init_params(1, 8, 1, np.random.default_rng(init_ss))
    from frnn_cli.data import sample_batch

    x, y = sample_batch(np.random.default_rng(data_ss), 10, 6)
    s = vanishing.summarize(params, x, y)
    for i, row in enumerate(rows):
        assert float(row["jacobian_norm_median"]) == s.jacobian_median[i]
        assert float(row["error_norm_max"]) == s.error_max[i]
        assert float(row["bound"]) == pytest.approx(s.spectral_norm_R**i, rel=1e-12)
        assert float(row["jacobian_norm_median"]) <= float(row["jacobian_norm_max"]) <= float(row["bound"]) * (1 + 1e-12)
    png = (folder / "plots" / "vanishing.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def _train_run(tmp_path, hidden=6, T=5, scale=0.5, **arrays):
    """A folder shaped like a train run: config.yaml + model.npz (W, R, V)."""
    run = tmp_path / "train-run"
    run.mkdir()
    params = model.init_params(1, hidden, 1, np.random.default_rng(11), init_scale=scale)
    params.update(arrays)
    atomic_save_npz(run / "model.npz", **params)
    atomic_write_text(run / "config.yaml", config.dump_yaml(config.Config(T=T, hidden=hidden, optimizer="adam", lr=0.01)))
    return run, params


def test_cli_run_folder_uses_the_trained_weights(cli, tmp_path):
    run, params = _train_run(tmp_path)
    out = tmp_path / "out"
    r = cli("vanishing", "--run", str(run), "n=4", "--runs-dir", str(out))
    assert r.exit_code == 0, _msg(r)
    folder = _only_folder(out)
    rows = _read_csv(folder / "vanishing.csv")
    assert len(rows) == 5, "T should default to the run's T"
    r2 = np.linalg.svd(params["R"], compute_uv=False)[0]
    assert float(rows[1]["bound"]) == pytest.approx(r2, rel=1e-12)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["source_run"] == str(run.resolve()) and "adam" in meta["network"]
    assert yaml.safe_load((folder / "config.yaml").read_text())["optimizer"] == "adam"
    # T can be overridden: the same network on longer sequences.
    r = cli("vanishing", "--run", str(run), "T=9", "n=4", "--runs-dir", str(tmp_path / "out9"))
    assert r.exit_code == 0, _msg(r)
    assert len(_read_csv(_only_folder(tmp_path / "out9") / "vanishing.csv")) == 9


def _corrupt(run):
    (run / "model.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda run: (run / "model.npz").unlink(), "model.npz does not exist"),
        (_corrupt, "not a valid .npz file"),
        (lambda run: (run / "model.npz").write_text("W,R,V\n1,2,3\n"), "not a valid .npz file"),
        (lambda run: atomic_save_npz(run / "model.npz", W=np.zeros((6, 1)), R=np.zeros((6, 6))), "no array V"),
        (lambda run: atomic_save_npz(run / "model.npz", W=np.zeros((6, 1)), R=np.zeros((5, 5)), V=np.zeros((1, 6))), "R has shape (5, 5), expected (6, 6)"),
        (lambda run: atomic_save_npz(run / "model.npz", W=np.full((6, 1), np.nan), R=np.zeros((6, 6)), V=np.zeros((1, 6))), "NaN or inf"),
        (lambda run: (run / "config.yaml").unlink(), "config.yaml does not exist"),
    ],
)
def test_cli_bad_run_folder_is_exit_2_one_line(cli, tmp_path, damage, fragment):
    run, _ = _train_run(tmp_path)
    damage(run)
    out = tmp_path / "out"
    r = cli("vanishing", "--run", str(run), "--runs-dir", str(out))
    assert r.exit_code == 2, _msg(r)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --run"), _msg(r)
    assert fragment in lines[0], _msg(r)
    expect_exit(r, 2)
    assert not out.exists(), "no run folder for bad input"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("hidden=4",), "hidden: cannot be changed with --run"),
        (("--config", "x.yaml"), "--run and --config"),
    ],
)
def test_cli_run_with_conflicting_settings_is_exit_2(cli, tmp_path, args, fragment):
    run, _ = _train_run(tmp_path)
    r = cli("vanishing", "--run", str(run), *args, "--runs-dir", str(tmp_path / "out"))
    assert r.exit_code == 2, _msg(r)
    assert fragment in r.stderr, _msg(r)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("n=0",), "n: expected a value >= 1"),
        (("T=1..5",), "frnn sweep"),
        (("hiden=3",), "did you mean 'hidden'"),
        (("--seed", "7", "seed=7"), "give the seed once"),
    ],
)
def test_cli_bad_keys_are_exit_2(cli, tmp_path, args, fragment):
    r = cli("vanishing", *args, "--runs-dir", str(tmp_path / "out"))
    assert r.exit_code == 2, _msg(r)
    assert fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1, _msg(r)
    assert not (tmp_path / "out").exists()


def test_cli_bound_violation_is_exit_1_and_says_bug(cli, tmp_path, monkeypatch):
    # Shrink the bound a million-fold: at T = 4 every norm (>= ~0.4 of the true bound for this
    # near-linear network) now "violates" it, at every t and in every sequence.
    true_bound = vanishing.jacobian_bound
    monkeypatch.setattr(vanishing, "jacobian_bound", lambda R, T: 1e-6 * true_bound(R, T))
    r = cli("vanishing", "T=4", "n=3", "--runs-dir", str(tmp_path))
    assert r.exit_code == 1, _msg(r)
    assert "bug" in r.stderr and "exceeds the bound" in r.stderr, _msg(r)
    meta = json.loads((_only_folder(tmp_path) / "meta.json").read_text())
    assert meta["status"] == "failed" and meta["bound_violations"] == 12


def test_cli_run_on_a_real_frnn_train_folder(cli, tmp_path):
    # The folder `frnn train` writes (its config.yaml keys, model.npz arrays) must load as is.
    r = cli("train", "T=3", "steps=20", "n_val=50", "n_test=50", "--no-plots", "--runs-dir", str(tmp_path / "train"))
    assert r.exit_code == 0, _msg(r)
    run = _only_folder(tmp_path / "train")
    r = cli("vanishing", "--run", str(run), "n=5", "--runs-dir", str(tmp_path / "out"))
    assert r.exit_code == 0, _msg(r)
    rows = _read_csv(_only_folder(tmp_path / "out") / "vanishing.csv")
    with np.load(run / "model.npz") as f:
        r2 = np.linalg.svd(f["R"], compute_uv=False)[0]
    assert len(rows) == 3 and float(rows[2]["bound"]) == pytest.approx(r2**2, rel=1e-12)
