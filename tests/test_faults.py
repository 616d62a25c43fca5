"""Hard faults with real processes and real signals: nothing finished is lost.

Each test starts ``python -m frnn_cli`` as a child process, hurts it the way the world does
(SIGKILL, the OOM killer's signal; SIGTERM from ``kill``; SIGINT from Ctrl-C; a reader that
closes the pipe) and then reads what is left on disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from frnn_cli.config import Config
from frnn_cli.runs import metrics_csv_text, read_metrics
from frnn_cli.train import train

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and sends POSIX signals")

FRNN = [sys.executable, "-m", "frnn_cli"]


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"process ended (exit {proc.returncode}) before {what}: {out}")
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _one_folder(runs: Path, kind: str) -> Path | None:
    found = [p for p in runs.glob(f"*-{kind}-*") if p.is_dir()]
    return found[0] if found else None


def _descendants(pid: int) -> set[int]:
    """All descendant process ids of ``pid`` (from /proc/<pid>/task/*/children)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie has finished running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_sigkill_during_train_keeps_every_finished_evaluation(tmp_path):
    keys = dict(T=30, eval_every=20, n_val=64, n_test=64, stop_loss=None)
    words = [f"{k}={'null' if v is None else v}" for k, v in keys.items()]
    proc = subprocess.Popen([*FRNN, "train", *words, "steps=1000000", "--no-plots", "--runs-dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        run = _wait_for(lambda: _one_folder(tmp_path, "train"), 30, "the run folder", proc)
        metrics = run / "metrics.csv"

        def rows_seen() -> int:
            return metrics.read_text().count("\n") - 1 if metrics.exists() else 0

        seen = _wait_for(lambda: rows_seen() >= 4 and rows_seen(), 60, "four evaluations", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    text = metrics.read_text()
    kept = read_metrics(metrics)
    assert len(kept) >= seen, (len(kept), seen)
    assert json.loads((run / "meta.json").read_text())["status"] == "running"  # it never saw its end
    # The rows are exactly those an uninterrupted run computes up to the last kept step...
    bests: list[dict] = []
    replay = train(Config(**keys, steps=kept[-1]["step"]), on_best=lambda rec, params: bests.append(params))
    assert text == metrics_csv_text(replay.history)
    # ...and model.npz holds a best checkpoint of that run: the last one (or the one before,
    # had the kill come between a row and its save).
    with np.load(run / "model.npz") as f:
        saved = {k: f[k] for k in f.files}
    assert any(all(np.array_equal(saved[k], b[k]) for k in ("W", "R", "V")) for b in bests[-2:]), len(bests)
    # frnn vanishing can study the killed run, and says it did not finish.
    r = subprocess.run([*FRNN, "vanishing", "--run", str(run), "T=5", "n=4", "--runs-dir", str(tmp_path / "v")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "did not finish (meta.json status: running)" in r.stderr, r.stderr


def test_sigkill_of_a_sweep_parent_leaves_no_worker_running(tmp_path):
    proc = subprocess.Popen(
        [*FRNN, "sweep", "T=40,41", "lr=1", "steps=1000000", "eval_every=1000", "stop_loss=null", "n_val=32",
         "n_test=32", "--seeds", "1", "--workers", "2", "--runs-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    workers: set[int] = set()
    try:
        sweep_dir = _wait_for(lambda: _one_folder(tmp_path, "sweep"), 30, "the sweep folder", proc)
        # Both jobs have started once both job folders have their meta.json.
        _wait_for(lambda: len(list(sweep_dir.glob("jobs/*/meta.json"))) == 2, 60, "two running jobs", proc)
        workers = _descendants(proc.pid)
        assert len(workers) >= 2, workers
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        survivors = [p for p in workers if _alive(p)]
        assert not survivors, f"processes still running 10 s after the parent was killed: {survivors}"
    finally:
        for p in workers:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def default_sigint() -> None:
    """In a child before exec: SIGINT back to its default action (a terminal's Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


SWEEP = ["sweep", "T=1,2", "lr=1", "steps=1500", "eval_every=50", "stop_loss=null", "n_val=64", "n_test=64",
         "--seeds", "3", "--workers", "1"]


@pytest.fixture(scope="module")
def uninterrupted_summary(tmp_path_factory) -> str:
    runs = tmp_path_factory.mktemp("reference")
    subprocess.run([*FRNN, *SWEEP, "--runs-dir", str(runs)], check=True, capture_output=True, timeout=300)
    return (_one_folder(runs, "sweep") / "summary.csv").read_text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_sweep_exits_130_and_resumes_to_the_same_summary(tmp_path, sig, uninterrupted_summary):
    # A new session, so that SIGINT can go to the whole process group as Ctrl-C sends it; and
    # SIGINT's default disposition, as a terminal gives it (a shell running the tests in the
    # background hands its children SIGINT ignored, and Python then installs no Ctrl-C handler).
    proc = subprocess.Popen([*FRNN, *SWEEP, "--runs-dir", str(tmp_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=default_sigint)
    sweep_dir = _wait_for(lambda: _one_folder(tmp_path, "sweep"), 30, "the sweep folder", proc)
    _wait_for(lambda: len(list(sweep_dir.glob("jobs/*/summary.json"))) >= 1, 60, "a finished job", proc)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "frnn sweep --resume" in err.decode()
    assert json.loads((sweep_dir / "meta.json").read_text())["status"] == "interrupted"
    done = len(list(sweep_dir.glob("jobs/*/summary.json")))
    assert 1 <= done < 6, f"{done} of 6 jobs finished: the interrupt came too late to test anything"
    assert not (sweep_dir / "summary.csv").exists()

    resumed = subprocess.run([*FRNN, "sweep", "--resume", str(sweep_dir), "--workers", "1"],
                             capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert f"{6 - done} of 6 jobs still to run" in resumed.stdout.decode()
    assert (sweep_dir / "summary.csv").read_text() == uninterrupted_summary


def test_a_reader_closing_stdout_does_not_stop_the_sweep(tmp_path):
    proc = subprocess.Popen([*FRNN, "sweep", "T=1,2", "lr=1", "steps=200", "n_val=32", "n_test=32", "--seeds", "1",
                             "--workers", "1", "--runs-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()  # like `| head -1`: read one line, then go away
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(120)
    assert first.startswith(b"Launching 2 jobs"), first
    assert proc.returncode == 0, err
    assert "note: stdout was closed by its reader" in err, err
    sweep_dir = _one_folder(tmp_path, "sweep")
    assert json.loads((sweep_dir / "meta.json").read_text())["status"] == "completed"
    assert (sweep_dir / "summary.csv").read_text().count("\n") == 3  # header + T=1, T=2


def test_help_read_by_head_ends_quietly():
    # `frnn --help | head -1`: no run, so no note that "the run goes on"; exit 0, no traceback.
    proc = subprocess.Popen([*FRNN, "sweep", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "80"})
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(60)
    assert proc.returncode == 0 and err == "", err
