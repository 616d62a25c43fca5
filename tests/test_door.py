"""Clear errors at the door: bad sizes, bad spellings and a hostile environment, refused or
survived before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import expect_exit
from helpers import msg as _msg

from frnn_cli import __version__, resources, runs
from frnn_cli.plots.train import learning_curves_figure

FRNN = [sys.executable, "-m", "frnn_cli"]


@pytest.mark.parametrize(
    "args, key",
    [
        (("train", "T=100000000"), "T=100000000"),
        (("train", "hidden=1000000"), "hidden=1000000"),
        (("train", "n_val=100000000000"), "n_val=100000000000"),
        (("train", "n_val=1000000000"), "n_val=1000000000"),  # 16 GB as a set: the OOM killer's case
        (("train", "optimizer=guess", "screen_n=100000000", "T=100"), "screen_n=100000000"),
        (("train", "n_test=100000000000"), "n_test=100000000000"),
        (("train", "batch_size=10000000000"), "batch_size=10000000000"),
        (("sweep", "T=1,2", "batch_size=10000000000"), "batch_size=10000000000"),
        (("sweep", "T=1,100000000", "--dry-run"), "T=100000000"),
        (("vanishing", "T=100000000"), "T=100000000"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_before_anything_is_written(cli, tmp_path, args, key):
    r = cli(*args, "--runs-dir", str(tmp_path))
    expect_exit(r, 2)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "needs about" in lines[0] and "available" in lines[0], _msg(r)
    assert not any(tmp_path.iterdir())


def test_generate_refuses_sequences_that_cannot_fit(cli):
    r = cli("generate", "T=1000000000", "n=1000")
    expect_exit(r, 2)
    assert "needs about 24 TB" in r.stderr, _msg(r)


def test_memory_estimate_is_checked_against_the_given_availability():
    parts = resources.train_bytes(T=20, hidden=32, batch_size=32, n_val=500, n_test=2000)
    total = sum(parts.values()) + resources.BASE_BYTES
    # A fifth of the memory stays spare: the estimates are rough.
    assert resources.check_fits(parts, "x", available=int(total / resources.SPARE) + 1) == total
    with pytest.raises(resources.BadInput):
        resources.check_fits(parts, "x", available=total)
    with pytest.raises(resources.BadInput, match=r"x needs about .* but this machine has 1 kB available"):
        resources.check_fits(parts, "x", available=1000)
    # The test set dominates at a large n_test, and the message says so.
    parts = resources.train_bytes(T=1000, hidden=32, batch_size=32, n_val=500, n_test=10**7)
    # n x T x (8 bytes of the set + 8 of its float64 noise) + the targets: 160 GB.
    with pytest.raises(resources.BadInput, match=r"mostly n_test x T \(the test set\): 160 GB"):
        resources.check_fits(parts, "x", available=10**9)


@pytest.mark.parametrize(
    "word, fragment",
    [("T=1:20", "write the inclusive range as T=1..20"), ("T=range(1,20)", "excludes 20; frnn writes inclusive ranges: T=1..19")],
)
def test_other_range_spellings_point_to_a_dotdot_b(cli, tmp_path, word, fragment):
    for cmd in ("sweep", "train"):
        r = cli(cmd, word, "--runs-dir", str(tmp_path))
        expect_exit(r, 2)
        assert fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1, _msg(r)
    assert not any(tmp_path.iterdir())


def test_an_empty_config_file_is_accepted_with_a_note(cli, tmp_path):
    cfg = tmp_path / "empty.yaml"
    cfg.write_text("# only a comment\n")
    r = cli("sweep", "--config", str(cfg), "--dry-run")
    expect_exit(r, 0)
    assert f"note: {cfg} sets no keys; using the defaults" in r.stderr, _msg(r)
    r = cli("train", "--config", str(cfg), "T=1", "steps=5", "n_val=10", "n_test=10", "--no-plots",
            "--runs-dir", str(tmp_path / "runs"))
    expect_exit(r, 0)
    assert "sets no keys" in r.stderr, _msg(r)


def test_a_bad_mplbackend_does_not_break_a_finished_run(tmp_path):
    env = {**os.environ, "MPLBACKEND": "nonsense"}
    p = subprocess.run([*FRNN, "train", "T=1", "steps=20", "n_val=20", "n_test=20", "--runs-dir", str(tmp_path)],
                       capture_output=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    (run,) = tmp_path.iterdir()
    assert (run / "plots" / "learning_curves.png").stat().st_size > 10_000


def test_a_bad_mplbackend_does_not_break_the_library_either(tmp_path):
    code = (
        "from frnn_cli.config import Config; from frnn_cli.runs import run_train_job; "
        f"run_train_job(Config(T=1, steps=20, n_val=20, n_test=20), {str(tmp_path)!r})"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, env={**os.environ, "MPLBACKEND": "nonsense"},
                       timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert (tmp_path / "plots" / "gradient_norms.png").is_file()


@pytest.mark.parametrize("command", ["train", "sweep", "compare", "vanishing"])
@pytest.mark.parametrize("name", ["", "  "])
def test_empty_runs_dir_is_an_error_not_the_current_folder(cli, tmp_path, monkeypatch, command, name):
    monkeypatch.chdir(tmp_path)
    r = cli(command, "T=1", "steps=5", "--runs-dir", name)
    expect_exit(r, 2)
    assert "'--runs-dir': expected a folder name, got an empty string" in r.stderr, _msg(r)
    assert r.stdout == "", _msg(r)  # refused before a plan is printed
    assert not any(tmp_path.iterdir())


def test_seed_010_means_ten_on_the_command_line_and_in_a_file(cli, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seed: 010\nT: 3\nn: 4\n")
    r1 = cli("vanishing", "--seed", "010", "T=3", "n=4", "--runs-dir", str(tmp_path / "a"))
    r2 = cli("vanishing", "--config", str(cfg), "--runs-dir", str(tmp_path / "b"))
    expect_exit(r1, 0)
    expect_exit(r2, 0)
    (a,), (b,) = (tmp_path / "a").iterdir(), (tmp_path / "b").iterdir()
    assert "seed: 10\n" in (a / "config.yaml").read_text()
    assert (a / "vanishing.csv").read_text() == (b / "vanishing.csv").read_text()


def test_python_dash_m_works_like_frnn():
    p = subprocess.run([*FRNN, "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == f"frnn {__version__}", p


def test_lines_in_a_log_are_not_hard_wrapped(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "runs"
    p = subprocess.run([*FRNN, "train", "T=1", "steps=10", "n_val=10", "n_test=10", "--no-plots",
                        "--runs-dir", str(deep)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    (run,) = deep.iterdir()
    assert f"run folder: {run}\n" in p.stdout, p.stdout  # the whole path, on one line
    verdict = [line for line in p.stdout.splitlines() if "than chance at alpha" in line]
    assert len(verdict) == 1 and verdict[0].endswith("step 10)"), p.stdout


@pytest.mark.parametrize("cmd", ["", "generate", "gradcheck", "train", "sweep", "compare", "vanishing", "export"])
def test_flags_show_no_bool_metavar(cli, cmd):
    r = cli(*([cmd] if cmd else []), "--help")
    expect_exit(r, 0)
    assert "<bool>" not in r.stdout, _msg(r)


def test_train_help_shows_every_key_with_its_default(cli):
    r = cli("train", "--help")
    expect_exit(r, 0)
    text = " ".join(r.stdout.replace("│", " ").split())
    for item in ("T=2", "hidden=32", "lr=1.0", "steps=2000", "init_scale=0.01", "clip=null",
                 "optimizer=sgd (sgd/momentum/adam/guess)", "model=rnn (rnn/lstm)", "alpha=0.01"):
        assert item in text, item


def test_accuracy_axis_shows_a_diverged_run_at_zero():
    history = [
        {"step": 0, "train_loss": float("nan"), "val_loss": 0.69, "val_acc": 0.5},
        {"step": 25, "train_loss": 50.0, "val_loss": 40.0, "val_acc": 0.0},
    ]
    fig = learning_curves_figure(history, "diverged", best_step=0, test_accuracy=0.0)
    low, high = fig.axes[1].get_ylim()
    assert low < 0.0 < 0.35 < high, (low, high)
    fig = learning_curves_figure([{**history[0]}, {**history[1], "val_acc": 0.9}], "fine")
    assert fig.axes[1].get_ylim()[0] == pytest.approx(0.35)


def test_meta_records_the_commit_frnn_was_built_from():
    repo = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    commit = runs.base_meta(0)["git_commit"]
    assert commit is not None and commit.split("-")[0] == head.stdout.strip(), (commit, head.stdout)


def test_an_installed_copy_records_the_commit_it_was_built_from(tmp_path):
    # What README says: pip install . from a clone. The installed copy has no .git; the commit
    # comes from what setuptools-scm wrote at build time. (Builds a wheel: about 10 s.)
    repo = Path(__file__).resolve().parents[1]
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    src = tmp_path / "src"
    subprocess.run(["git", "clone", "-q", str(repo), str(src)], check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True).stdout.strip()
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True)
    if built.returncode != 0 and any(s in built.stderr for s in ("Could not find a version", "Failed to establish")):
        pytest.skip("the package index is out of reach: cannot fetch the build backend")
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("frnn-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
                   check=True)
    code = "import frnn_cli.runs as r; print(r.__file__); print(r.git_commit())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}).stdout.split()
    assert out[0].startswith(str(tmp_path / "site")), out  # the installed copy ran, not the checkout
    assert out[1] != "None" and head.startswith(out[1]) and len(out[1]) >= 7, (out, head)


def test_vanishing_on_an_unfinished_run_warns_or_says_why(cli, tmp_path):
    run = tmp_path / "killed"
    run.mkdir()
    (run / "config.yaml").write_text("T: 5\nhidden: 4\n")
    (run / "meta.json").write_text(json.dumps({"status": "running"}))
    rng = np.random.default_rng(0)
    np.savez(run / "model.npz", W=rng.normal(size=(4, 1)), R=rng.normal(size=(4, 4)) * 0.1, V=rng.normal(size=(1, 4)))
    r = cli("vanishing", "--run", str(run), "T=5", "n=4", "--runs-dir", str(tmp_path / "out"))
    expect_exit(r, 0)
    assert "did not finish (meta.json status: running)" in r.stderr, _msg(r)
    (run / "model.npz").unlink()
    (run / "meta.json").write_text(json.dumps({"status": "interrupted"}))
    r = cli("vanishing", "--run", str(run), "--runs-dir", str(tmp_path / "out"))
    expect_exit(r, 2)
    assert "has no model.npz: the run did not finish (meta.json status: interrupted)" in r.stderr, _msg(r)


def test_a_range_too_long_to_list_is_refused_at_once(cli, tmp_path):
    r = cli("sweep", "T=1..1000000000", "--dry-run", "--runs-dir", str(tmp_path))
    expect_exit(r, 2)
    assert "T=1..1000000000: 1,000,000,000 values; a range may hold at most 100,000" in r.stderr, _msg(r)


@pytest.mark.parametrize("model, hidden, outputs", [("rnn", 7, 1), ("rnn", 5, 3), ("lstm", 5, 1), ("lstm", 3, 2)])
def test_gradcheck_cost_counts_the_entries_the_network_has(model, hidden, outputs):
    from frnn_cli import networks

    net = networks.get(model).network_class(1, hidden, outputs, rng=np.random.default_rng(0))
    entries = sum(getattr(net, name).size for name in net.PARAM_NAMES)
    cost = resources.gradcheck_cost(model, T=9, hidden=hidden, batch_size=2, outputs=outputs)
    assert cost["entries"] == entries and cost["steps"] == 2 * entries * 9


def test_a_gradient_check_too_large_for_minutes_is_refused(cli):
    r = cli("gradcheck", "hidden=1000")  # W 1000 + R 1000 x 1000 + V 1000 entries, each 2 forward passes
    expect_exit(r, 2)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "hidden=1000" in lines[0] and "1,002,000 entries" in lines[0], _msg(r)
    expect_exit(cli("gradcheck", "hidden=20", "T=20"), 0)  # an ordinary check is not
