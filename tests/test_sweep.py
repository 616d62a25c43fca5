"""frnn sweep on small real grids: tuning, worker independence, resume, bad input."""

import json
import shutil
from pathlib import Path

import pytest

from frnn_cli.experiment import plan, sweep
from frnn_cli.config import Config
from helpers import msg as _msg

# Small and fast: T = 1 is learned within a few dozen steps with lr = 3, lr = 1e-4 stays at chance.
SMALL = ["steps=60", "eval_every=20", "n_val=100", "n_test=200", "stop_loss=null"]




def _sweep_dir(runs: Path) -> Path:
    (d,) = [p for p in runs.iterdir() if "-sweep-" in p.name]
    return d


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """One real sweep, T=1..2 x lr=1e-4,3 x 2 seeds, on 2 workers."""
    from typer.testing import CliRunner

    from frnn_cli.cli import app

    runs = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(app, ["sweep", "T=1..2", "lr=1e-4,3", "--seeds", "2", "--workers", "2",
                                 "--runs-dir", str(runs), *SMALL])
    assert r.exit_code == 0, _msg(r)
    return r, _sweep_dir(runs)


def test_sweep_writes_every_file_and_prints_max_T(small_sweep):
    r, d = small_sweep
    assert "Launching 8 jobs: T=1,2 x lr=0.0001,3 x 2 seeds" in r.stdout
    assert "maximal T better than chance:" in r.stdout
    for name in ("sweep.yaml", "meta.json", "summary.csv", "summary.json"):
        assert (d / name).is_file(), name
    for name in ("accuracy_vs_T", "tuning_heatmap", "learning_curves", "gradient_norms_vs_T"):
        assert (d / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert len(list((d / "jobs").iterdir())) == 8
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["n_jobs"] == 8


def test_in_a_log_the_table_is_one_plain_line_per_T_matching_summary_json(small_sweep):
    """CliRunner's stdout is not a terminal: no box drawing, and each T's line carries its verdict."""
    r, d = small_sweep
    assert not any(c in r.stdout for c in "┃│┏━"), r.stdout
    summary = json.loads((d / "summary.json").read_text())
    for row in summary["rows"]:
        (line,) = [ln for ln in r.stdout.splitlines() if ln.startswith(f"T={row['T']}  ")]
        steps = "/".join(str(s) for s in row["best_step"])
        assert line.startswith(f"T={row['T']}  lr={row['lr']:g}"), line
        assert f"  best step/seed {steps}" in line and f"  val acc {row['val_acc']:.3f}  " in line, line
        assert f"  > chance {sum(row['better_than_chance'])}/2  " in line, line
        assert f"  learned {'yes' if row['learned'] else 'no'}  " in line, line


def test_tuning_picks_the_setting_with_the_best_validation_accuracy(small_sweep):
    _, d = small_sweep
    summary = json.loads((d / "summary.json").read_text())
    for row in summary["rows"]:
        candidates = [s for s in summary["settings"] if s["setting"]["T"] == row["T"]]
        best = max(candidates, key=lambda s: (s["val_acc"], -s["val_loss"]))
        assert row["lr"] == best["setting"]["lr"], (row, candidates)
        # Cross-check against the jobs' own summary.json files.
        accs = [json.loads((d / "jobs" / j / "summary.json").read_text())["best"]["val_acc"] for j in row["best_job"]]
        assert row["val_acc"] == pytest.approx(sum(accs) / len(accs))
    # lr = 3 learns T = 1 (the first element is the class); lr = 1e-4 cannot in 60 steps.
    row1 = summary["rows"][0]
    assert row1["lr"] == 3.0 and row1["learned"] is True
    assert summary["max_T"] in (1, 2) and summary["max_T_contiguous"] >= 1


def test_summary_csv_matches_summary_json(small_sweep):
    _, d = small_sweep
    lines = (d / "summary.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header == ["T", "lr", "at_edge", "best_step", "val_acc", "test_acc_mean", "test_acc", "p_value",
                      "better_than_chance", "mechanism", "learned", "how", "learned_by_gradient", "gradient_lr"]
    summary = json.loads((d / "summary.json").read_text())
    assert len(lines) == 1 + len(summary["rows"])
    first = dict(zip(header, lines[1].split(",")))
    row = summary["rows"][0]
    assert first["T"] == "1" and float(first["lr"]) == row["lr"]
    assert first["learned"] == str(row["learned"]).lower()
    assert first["mechanism"] == ";".join(row["mechanism"])
    assert first["learned_by_gradient"] == str(row["gradient"]["learned"]).lower()


def test_one_worker_gives_the_identical_summary(small_sweep, tmp_path, cli):
    _, d2 = small_sweep
    r = cli("sweep", "T=1..2", "lr=1e-4,3", "--seeds", "2", "--workers", "1", "--runs-dir", str(tmp_path), *SMALL)
    assert r.exit_code == 0, _msg(r)
    assert (_sweep_dir(tmp_path) / "summary.csv").read_text() == (d2 / "summary.csv").read_text()


def test_resume_runs_only_the_missing_jobs(small_sweep, tmp_path, cli):
    _, done = small_sweep
    d = tmp_path / "interrupted"
    shutil.copytree(done, d)
    jobs = sorted((d / "jobs").iterdir())
    keep_mtime = {p.name: (p / "summary.json").stat().st_mtime_ns for p in jobs[2:]}
    shutil.rmtree(jobs[0])  # never started
    (jobs[1] / "summary.json").unlink()  # started, not finished
    (d / "summary.csv").unlink()
    r = cli("sweep", "--resume", str(d), "--workers", "1")
    assert r.exit_code == 0, _msg(r)
    assert (d / "summary.csv").read_text() == (done / "summary.csv").read_text()
    for p in jobs[2:]:
        assert (p / "summary.json").stat().st_mtime_ns == keep_mtime[p.name], p.name
    assert (jobs[0] / "summary.json").is_file() and (jobs[1] / "summary.json").is_file()


def test_an_interrupt_while_plotting_is_recorded_and_resume_writes_the_plots(small_sweep, tmp_path, cli, monkeypatch):
    """Ctrl-C after the last job, while the plots are drawn: status "interrupted", not "running"."""
    _, done = small_sweep
    d = tmp_path / "plotting"
    shutil.copytree(done, d)
    shutil.rmtree(d / "plots")
    original = json.loads((d / "meta.json").read_text())

    def ctrl_c(*_args, **_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "write_plots", ctrl_c)
    r = cli("sweep", "--resume", str(d), "--workers", "1")
    assert r.exit_code == 130, _msg(r)
    assert json.loads((d / "meta.json").read_text())["status"] == "interrupted"
    monkeypatch.undo()
    r = cli("sweep", "--resume", str(d), "--workers", "1")
    assert r.exit_code == 0, _msg(r)
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "completed" and (d / "plots" / "accuracy_vs_T.png").is_file()
    assert (meta["command"], meta["start_time"]) == (original["command"], original["start_time"])
    assert len(meta["resumed"]) == 2  # both resumptions are on record


def test_the_seconds_reported_are_the_wall_time_until_the_plots_are_drawn(small_sweep, tmp_path, cli, monkeypatch):
    """A resumed sweep with nothing left to run spends its time drawing the plots: "seconds" (in
    summary.json and on screen) must count them, from the sweep's first file to its last plot."""
    import time

    _, done = small_sweep
    d = tmp_path / "again"
    shutil.copytree(done, d)
    seen: dict[str, float] = {}
    start_files, write_plots = sweep.start_files, sweep.write_plots

    def first_file(*args, **kw):
        seen["start"] = time.perf_counter()
        return start_files(*args, **kw)

    def plots(*args, **kw):
        out = write_plots(*args, **kw)
        seen["plotted"] = time.perf_counter()
        return out

    monkeypatch.setattr(sweep, "start_files", first_file)
    monkeypatch.setattr(sweep, "write_plots", plots)
    before = time.perf_counter()
    r = cli("sweep", "--resume", str(d), "--workers", "1")
    wall = time.perf_counter() - before
    assert r.exit_code == 0, _msg(r)
    seconds = json.loads((d / "summary.json").read_text())["seconds"]
    assert seen["plotted"] - seen["start"] - 0.01 <= seconds <= wall, (seconds, seen, wall)
    assert f"; wall time {seconds:.1f} s" in r.stdout, r.stdout


def test_resume_refuses_a_different_grid(small_sweep, cli):
    _, d = small_sweep
    r = cli("sweep", "--resume", str(d), "T=1..3", "lr=1e-4,3", "--seeds", "2", *SMALL)
    assert r.exit_code == 2, _msg(r)
    assert "--resume: T differs from the stored sweep (1,2 there, 1,2,3 now)" in r.stderr, _msg(r)


def test_resume_compares_only_what_was_asked(small_sweep, cli):
    # The stored sweep: T=1,2, lr=1e-4,3, 2 seeds. --seeds 2 alone is no change (the defaults
    # T=1..20 and the default lr grid were not asked for); lr=1 is a change, named with both values.
    _, d = small_sweep
    r = cli("sweep", "--resume", str(d), "--seeds", "2", "--workers", "1")
    assert r.exit_code == 0, _msg(r)
    r = cli("sweep", "--resume", str(d), "lr=1", "--seeds", "2")
    assert r.exit_code == 2 and "--resume: lr differs from the stored sweep (0.0001,3 there, 1 now)" in r.stderr, _msg(r)
    r = cli("sweep", "--resume", str(d), "--seeds", "3")
    assert r.exit_code == 2 and "--resume: seeds differs from the stored sweep (2 there, 3 now)" in r.stderr, _msg(r)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["T=5..1"], "the range is empty"),
        (["T=0..3"], "T: expected a value >= 1"),
        (["T=1.5..3"], "needs two integers"),
        (["lr="], "has no value"),
        (["--axis", "TT"], "unknown key 'TT'"),
        (["--resume", "/nonexistent/sweep"], "does not exist"),
    ],
)
def test_bad_sweep_input_is_one_line_exit_2(cli, args, fragment, tmp_path):
    r = cli("sweep", *args, "--runs-dir", str(tmp_path), "--dry-run")
    assert r.exit_code == 2, _msg(r)
    assert len(r.stderr.strip().splitlines()) == 1 and fragment in r.stderr, _msg(r)
    assert not any(tmp_path.iterdir())


def test_dry_run_prints_the_plan_and_writes_nothing(cli, tmp_path):
    r = cli("sweep", "T=1..20", "--dry-run", "--runs-dir", str(tmp_path))
    assert r.exit_code == 0, _msg(r)
    n = 20 * len(plan.DEFAULT_LR) * 3
    assert f"Dry run (nothing is run): would launch {n} jobs: T=1..20 x lr=0.1,0.3,1,3,9,27,81,243 x 3 seeds" in r.stdout
    assert "Launching" not in r.stdout
    assert not any(tmp_path.iterdir())


def test_an_axis_without_values_takes_its_default_grid():
    """--axis lr alone sweeps the default learning rates, not the one base value."""
    assert plan.resolve_spec(None, ["T=5"], "lr", 1).grid == {"lr": [0.1, 0.3, 1, 3, 9, 27, 81, 243]}
    assert plan.resolve_spec(None, ["lr=1"], "hidden", 1).grid == {"hidden": [32]}  # no default grid: its value
    assert plan.resolve_spec(None, [], None, 1).grid["T"] == list(range(1, 21))


def test_spec_round_trips_through_sweep_yaml(tmp_path):
    spec = plan.resolve_spec(None, ["T=1..4", "lr=1e-5,1e-4", "optimizer=adam"], None, 2)
    assert spec.base.optimizer == "adam" and spec.grid == {"T": [1, 2, 3, 4], "lr": [1e-5, 1e-4]}
    (tmp_path / "sweep.yaml").write_text(plan.dump_spec(spec))
    again = plan.load_spec(tmp_path)
    assert again == spec
    jobs = plan.plan(spec)
    assert all(type(j.cfg.lr) is float for j in jobs) and {j.cfg.lr for j in jobs} == {1e-5, 1e-4}
    assert isinstance(again.base, Config)


def test_sweep_config_file_with_a_grid(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("steps: 50\nseeds: 2\nsweep:\n  T: 1..3\n  lr: [0.1, 1]\n")
    spec = plan.resolve_spec(f, ["lr=0.3,3"], None, None)
    assert spec.seeds == 2 and spec.base.steps == 50
    assert spec.grid == {"T": [1, 2, 3], "lr": [0.3, 3.0]}  # the command line wins


def test_a_huge_grid_is_refused_at_once(cli, tmp_path):
    r = cli("sweep", "T=1..100000", "--dry-run", "--runs-dir", str(tmp_path))
    assert r.exit_code == 2, _msg(r)
    assert "the grid has 2,400,000 jobs (100000 T x 8 lr x 3 seeds)" in r.stderr, _msg(r)


def test_sweeping_the_seed_gives_each_seed_its_own_replicates():
    spec = plan.resolve_spec(None, ["T=1..2", "lr=0.3", "seed=0,1"], None, 2)
    jobs = plan.plan(spec)
    assert len(jobs) == 2 * 2 * 2
    seeds = {(j.setting["seed"], j.replicate): j.cfg.seed for j in jobs}
    from frnn_cli.experiment.grid import job_seed

    assert seeds == {(s, r): job_seed(s, r) for s in (0, 1) for r in (0, 1)}


def _job_summary(status, best_step, correct, n=200):
    return {"status": status, "best": {"val_acc": 0.9, "val_loss": 0.3, "step": best_step},
            "test": {"correct": correct, "n": n}}


def test_untrained_or_diverged_checkpoints_never_count_as_learned():
    """A seed beats chance only if it completed and its best checkpoint is after step 0."""
    spec = plan.resolve_spec(None, ["T=5", "lr=1e5"], None, 3)
    jobs = plan.plan(spec)
    # All three seeds classify 190/200 on test (p ~ 1e-46), but: diverged, step 0, trained.
    results = {
        jobs[0].job_id: _job_summary("diverged", 100, 190),
        jobs[1].job_id: _job_summary("completed", 0, 190),
        jobs[2].job_id: _job_summary("completed", 100, 190),
    }
    (row,) = sweep.summarize(spec, jobs, results)["rows"]
    assert row["better_than_chance"] == [False, False, True]
    assert row["learned"] is False


def test_sweep_notes_a_key_no_job_uses_but_not_one_some_job_uses(cli, tmp_path):
    r = cli("sweep", "T=1,2", "forget_bias=3", "--dry-run", "--runs-dir", str(tmp_path))
    assert r.exit_code == 0, r.stderr
    assert "note: forget_bias is ignored: it acts only with model=lstm, and model=rnn here" in r.stderr, r.stderr
    r = cli("sweep", "T=1,2", "optimizer=sgd,momentum", "momentum=0.5", "--dry-run", "--runs-dir", str(tmp_path))
    assert r.exit_code == 0 and "note:" not in r.stderr, r.stderr


@pytest.mark.parametrize("words, fragment", [
    (["optimizer=guess", "lr=0.1,1"], "lr=0.1,1: optimizer=guess does not use lr"),
    (["optimizer=guess,adam"], "optimizer=guess does not use lr"),  # the default lr grid
    (["momentum=0.5,0.9"], "momentum=0.5,0.9: optimizer=sgd does not use momentum"),
    (["optimizer=guess", "eval_every=10,20"], "optimizer=guess does not use eval_every"),
])
def test_a_list_for_a_key_some_jobs_do_not_use_is_refused(cli, tmp_path, words, fragment):
    # Those jobs would run once per value with identical results.
    r = cli("sweep", "T=1,2", *words, "--runs-dir", str(tmp_path))
    assert r.exit_code == 2 and fragment in r.stderr and not any(tmp_path.iterdir()), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_list_for_a_key_every_job_uses_is_swept(cli, tmp_path):
    r = cli("sweep", "T=1,2", "optimizer=momentum", "momentum=0.5,0.9", "lr=1", "--dry-run", "--runs-dir", str(tmp_path))
    assert r.exit_code == 0 and "12 jobs: T=1,2 x momentum=0.5,0.9 x 3 seeds" in r.stdout, r.stdout + r.stderr


def test_a_recipe_tuning_a_key_its_setting_does_not_use_is_refused(cli, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("g2:\n  set: {optimizer: guess}\n  tune: {lr: [0.1, 1]}\n  description: x\n  source: y\n")
    r = cli("compare", "--recipes-file", str(f), "--recipes", "g2", "T=1", "--runs-dir", str(tmp_path / "runs"))
    assert r.exit_code == 2 and "recipe 'g2': lr=0.1,1: optimizer=guess does not use lr" in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists()
