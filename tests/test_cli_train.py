"""`frnn train` through typer's CliRunner: run folder contents, exit codes, verdict lines."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from frnn_cli import train as train_module
from frnn_cli.config import Config, load_config
from frnn_cli.runs import TRAIN_FILES, TRAIN_PLOTS, read_metrics
from frnn_cli.train import METRICS_COLUMNS
from helpers import expect_exit, msg as _msg

REPO = Path(__file__).resolve().parents[1]
DEFAULT = str(REPO / "configs" / "default.yaml")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"




def _only_run(runs_dir: Path) -> Path:
    dirs = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.fixture(scope="module")
def t2_run(tmp_path_factory):
    """`frnn train --config configs/default.yaml T=2` once, with plots."""
    from typer.testing import CliRunner

    from frnn_cli.cli import app

    runs_dir = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(app, ["train", "--config", DEFAULT, "T=2", "--runs-dir", str(runs_dir)])
    return r, _only_run(runs_dir)


def test_t2_default_exits_0_and_says_better_than_chance(t2_run):
    r, run_dir = t2_run
    assert r.exit_code == 0, _msg(r)
    assert "better than chance at alpha=0.01: test accuracy 1.0000" in r.stdout, _msg(r)
    assert "NOT better" not in r.stdout
    assert f"run folder: {run_dir}" in r.stdout, _msg(r)
    assert "\x1b[" not in r.stdout + r.stderr, "escape codes in non-terminal output"


def test_t2_run_folder_has_every_file(t2_run):
    _, run_dir = t2_run
    assert run_dir.name.split("-train-")[0].count("_") == 1  # <YYYY-MM-DD_HH-MM-SS>-train-<id>
    for name in (*TRAIN_FILES, *TRAIN_PLOTS):
        assert (run_dir / name).is_file(), name
    for name in TRAIN_PLOTS:
        assert (run_dir / name).read_bytes()[:8] == PNG_MAGIC, name
    assert not list(run_dir.rglob("*.tmp")), "leftover temporary files"


def test_t2_meta_json(t2_run):
    _, run_dir = t2_run
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["kind"] == "train"
    assert meta["seed"] == 0 and meta["end_time"] >= meta["start_time"]
    for key in ("command", "frnn", "python", "numpy", "git_commit"):
        assert key in meta, key
    assert meta["numpy"] == np.__version__


def test_t2_config_yaml_round_trip(t2_run):
    _, run_dir = t2_run
    back = load_config(run_dir / "config.yaml")
    assert back == load_config(DEFAULT, ["T=2"])
    assert type(back.lr) is float and back.clip is None


def test_t2_metrics_summary_and_model_agree(t2_run):
    _, run_dir = t2_run
    with open(run_dir / "metrics.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == METRICS_COLUMNS
    rows = read_metrics(run_dir / "metrics.csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert rows[0]["step"] == 0 and rows[-1]["step"] == summary["steps_done"]
    assert max(r["val_acc"] for r in rows) == 1.0 == summary["best"]["val_acc"]
    assert summary["final"]["step"] == rows[-1]["step"]
    assert summary["test"]["accuracy"] == 1.0 and summary["test"]["better_than_chance"] is True
    assert summary["best"]["train_loss"] is not None or summary["best_step"] == 0
    with np.load(run_dir / "model.npz") as f:
        assert sorted(f.files) == ["R", "V", "W"]
        assert f["W"].shape == (32, 1) and f["R"].shape == (32, 32) and f["V"].shape == (1, 32)
        params = {k: f[k] for k in f.files}
    # The saved weights are the best checkpoint's: they give its validation loss again.
    from frnn_cli.data import sample_batch
    from frnn_cli.model import forward
    from frnn_cli.train import streams

    x_val, y_val = sample_batch(streams(0)["val"], 500, 2)
    assert forward(params, x_val, y_val)[0] == pytest.approx(summary["best"]["val_loss"], rel=1e-10)


@pytest.mark.parametrize(
    "args, yaml_text, fragment",
    [
        (["hiden=5"], None, "did you mean 'hidden'"),
        (["lr=0.1,0.3"], None, "frnn sweep"),
        (["T=1..20"], None, "frnn sweep"),
        (["lr=yes"], None, "lr: expected a number"),
        (["optimizer=rmsprop"], None, "optimizer: expected one of sgd, momentum, adam"),
        (["T"], None, "expected key=value"),
        ([], "T: 2\nT: 3\n", "duplicate key 'T' at line 2"),
        ([], "T: 1:20\n", "T: '1:20' is not a range frnn reads; write the inclusive range as T=1..20"),
        ([], "T: on\n", "T: expected an integer, got 'on'"),
        ([], "lr: [0.1, 0.3]\n", "frnn sweep"),
        ([], "T: [unclosed\n", "not valid YAML"),
        (["--config", "/nonexistent/c.yaml"], None, "does not exist"),
    ],
)
def test_bad_input_is_exit_2_one_line_nothing_written(cli, tmp_path, args, yaml_text, fragment):
    runs_dir = tmp_path / "runs"
    if yaml_text is not None:
        cfg_file = tmp_path / "c.yaml"
        cfg_file.write_text(yaml_text)
        args = ["--config", str(cfg_file), *args]
    r = cli("train", *args, "--runs-dir", str(runs_dir))
    assert r.exit_code == 2, _msg(r)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], _msg(r)
    expect_exit(r, 2)
    assert not runs_dir.exists(), "a run folder was created for bad input"


def test_overrides_win_over_the_file(cli, tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("T: 9\nhidden: 4\nsteps: 30\n")
    r = cli("train", "--config", str(cfg_file), "T=2", "n_val=50", "n_test=50", "--no-plots",
            "--runs-dir", str(tmp_path / "runs"))
    assert r.exit_code == 0, _msg(r)
    cfg = load_config(_only_run(tmp_path / "runs") / "config.yaml")
    assert (cfg.T, cfg.hidden, cfg.steps, cfg.n_val) == (2, 4, 30, 50)
    assert cfg.lr == Config().lr


def test_diverging_setting_exits_1_with_one_clear_line(cli, tmp_path):
    r = cli("train", "T=5", "lr=1e6", "init_scale=3", "n_val=100", "n_test=100", "--no-plots",
            "--runs-dir", str(tmp_path))
    assert r.exit_code == 1, _msg(r)
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: training diverged at step "), _msg(r)
    assert "diverge_loss=1000" in lines[-1], _msg(r)
    expect_exit(r, 1)
    run_dir = _only_run(tmp_path)
    meta = json.loads((run_dir / "meta.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert meta["status"] == summary["status"] == "diverged"
    assert summary["divergence"]["step"] >= 1


def test_same_seed_gives_identical_metrics(cli, tmp_path):
    for _ in range(2):
        r = cli("train", "T=3", "steps=200", "n_val=100", "n_test=100", "seed=7", "--no-plots",
                "--runs-dir", str(tmp_path))
        assert r.exit_code == 0, _msg(r)
    a, b = sorted(p for p in tmp_path.iterdir())
    assert a != b
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    assert (a / "model.npz").read_bytes() == (b / "model.npz").read_bytes()


def test_ctrl_c_is_exit_130_with_files_intact(cli, tmp_path, monkeypatch):
    real = train_module.train

    def interrupted(cfg, callback=None, on_best=None):
        def cb(rec):
            callback(rec)
            if rec.step == 50:
                raise KeyboardInterrupt

        return real(cfg, cb, on_best)

    monkeypatch.setattr(train_module, "train", interrupted)
    r = cli("train", "T=6", "n_val=100", "--runs-dir", str(tmp_path))
    assert r.exit_code == 130, _msg(r)
    assert "interrupted after step 50" in r.stderr, _msg(r)
    run_dir = _only_run(tmp_path)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "interrupted"
    assert [row["step"] for row in read_metrics(run_dir / "metrics.csv")] == [0, 25, 50]
    assert load_config(run_dir / "config.yaml").T == 6


def test_not_better_than_chance_is_said_plainly(cli, tmp_path):
    # T = 8 with the reference setting and few steps stays at chance (the vanishing gradient).
    r = cli("train", "T=8", "steps=100", "n_val=100", "n_test=200", "--no-plots", "--runs-dir", str(tmp_path))
    assert r.exit_code == 0, _msg(r)
    assert "NOT better than chance at alpha=0.01" in r.stdout, _msg(r)
    assert "vanishing gradient" in r.stdout


def test_help_has_an_example(cli):
    r = cli("train", "--help")
    assert r.exit_code == 0, _msg(r)
    assert "Example: frnn train --config configs/default.yaml" in r.stdout
