"""Sweeps on a Dask cluster, with real processes: same results as the local pool, and the faults.

Every cluster here is real: frnn's own local cluster (``open_dask``: worker processes), or the
``dask scheduler`` and ``dask worker`` programs (run as ``python -m dask ...``, the same entry
point as the ``dask`` script) on 127.0.0.1. Faults are real too: SIGKILL for a worker in the
middle of a job, SIGKILL for the scheduler in the middle of a sweep, SIGINT to frnn's process
group (Ctrl-C), addresses where nothing listens or where a server never answers. The
reference for every result is the same sweep or comparison on the local process pool,
compared byte for byte (``summary.csv``, ``compare.csv``, each job's ``metrics.csv``). Tests
that need Dask are skipped when the ``cluster`` extra is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from frnn_cli import config
from frnn_cli.experiment import execute, plan, sweep
from frnn_cli.runs import TRAIN_FILES
from helpers import expect_exit, msg

HAVE_DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(not HAVE_DASK, reason="dask[distributed] is not installed (pip install 'frnn[cluster]')")
linux = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and sends POSIX signals")

FRNN = [sys.executable, "-m", "frnn_cli"]
# Six short jobs (three T, two seeds), and six longer ones (about half a second each) for the faults.
SHORT = ["T=1..3", "lr=1", "steps=60", "eval_every=20", "n_val=100", "n_test=200", "stop_loss=null"]
LONG = ["T=2..7", "lr=1", "steps=800", "eval_every=100", "n_val=100", "n_test=200", "stop_loss=null"]
SEEDS = {"SHORT": 2, "LONG": 1}


def _spec(words: list[str], seeds: int) -> plan.SweepSpec:
    return plan.resolve_spec(None, words, None, seeds)


def _sweep_dir(runs: Path) -> Path:
    (d,) = [p for p in runs.iterdir() if "-sweep-" in p.name]
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _same_jobs(d: Path, ref: Path) -> None:
    """Each job folder holds exactly the train files, and its metrics.csv equals the reference's."""
    for job in sorted((ref / "jobs").iterdir()):
        mine = d / "jobs" / job.name
        assert sorted(p.name for p in mine.iterdir()) == sorted(TRAIN_FILES), job.name
        assert json.loads((mine / "meta.json").read_text())["status"] == "completed", job.name
        assert (mine / "metrics.csv").read_bytes() == (job / "metrics.csv").read_bytes(), job.name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Both sweeps on the local process pool (2 workers): the results every executor must give."""
    out = {}
    with execute.LocalPool(2) as pool:
        for name, words in (("SHORT", SHORT), ("LONG", LONG)):
            out[name] = tmp_path_factory.mktemp(f"local-{name}")
            sweep.run_sweep(_spec(words, SEEDS[name]), out[name], pool)
    return out


@pytest.fixture(scope="module")
def local_cluster():
    """frnn's own local Dask cluster (two worker processes of one thread each); yields its client."""
    from frnn_cli.experiment.dask_executor import open_dask

    executor = open_dask(workers=2)
    try:
        yield executor.client
    finally:
        executor.shutdown()


@pytest.fixture
def dask_programs(tmp_path):
    """``dask scheduler`` and ``dask worker`` (2 worker processes, 1 thread each) on free ports."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = [open(tmp_path / f"{name}.log", "wb") for name in ("scheduler", "worker")]
    procs = [
        subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                          "--no-dashboard"], stdout=logs[0], stderr=subprocess.STDOUT, start_new_session=True),
        subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nworkers", "2", "--nthreads", "1",
                          "--no-dashboard"], stdout=logs[1], stderr=subprocess.STDOUT, start_new_session=True),
    ]
    try:
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(2, timeout=60)
        yield address, procs
    finally:
        for p in procs:  # each started in its own session: end its whole group (nannies, workers)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for f in logs:
            f.close()


@needs_dask
def test_local_cluster_sweep_equals_the_local_pool_byte_for_byte(local_cluster, reference, tmp_path):
    from frnn_cli.experiment.dask_executor import DaskExecutor

    executor = DaskExecutor(local_cluster)
    assert executor.workers == 2
    assert executor.description == f"on a Dask cluster at {local_cluster.scheduler.address} with 2 workers"
    sweep.run_sweep(_spec(SHORT, 2), tmp_path, executor)  # not shut down: the client belongs to the fixture
    assert (tmp_path / "summary.csv").read_bytes() == (reference["SHORT"] / "summary.csv").read_bytes()
    _same_jobs(tmp_path, reference["SHORT"])
    assert json.loads((tmp_path / "meta.json").read_text())["executor"] == executor.description


@needs_dask
def test_frnns_local_cluster_workers_run_one_blas_thread_without_dasks_malloc_setting(local_cluster):
    from frnn_cli.experiment.dask_executor import ONE_BLAS_THREAD, _blas_environment

    envs = local_cluster.run(_blas_environment)
    assert len(envs) == 2 and all(env == ONE_BLAS_THREAD for env in envs.values()), envs
    # Dask's own default would set MALLOC_TRIM_THRESHOLD_=65536 (20-30 % slower jobs); frnn leaves it out.
    assert set(local_cluster.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {None}
    # The preload: Ctrl-C reaches the workers too (one process group), and they leave it to frnn.
    assert set(local_cluster.run(lambda: signal.getsignal(signal.SIGINT) is signal.SIG_IGN).values()) == {True}


RECIPES = """\
plain: {description: the reference setting, source: this test, set: {}, tune: {lr: [1, 3]}}
wide: {description: weights in +-0.3, source: this test, set: {init_scale: 0.3}, tune: {lr: [1, 3]}}
"""


@needs_dask
def test_compare_on_dask_equals_the_local_pool_byte_for_byte(cli, local_cluster, tmp_path):
    """frnn compare of two recipes (8 jobs) on the local pool and, by --scheduler, on the cluster."""
    (tmp_path / "recipes.yaml").write_text(RECIPES)
    words = ["compare", "--recipes", "plain,wide", "--recipes-file", str(tmp_path / "recipes.yaml"), "T=1,2",
             "--seeds", "1", "steps=60", "eval_every=20", "n_val=64", "n_test=200"]
    address = local_cluster.scheduler.address
    folders = {}
    for name, how in (("local", ["--workers", "2"]), ("dask", ["--executor", "dask", "--scheduler", address])):
        r = cli(*words, *how, "--runs-dir", str(tmp_path / name))
        expect_exit(r, 0)
        (folders[name],) = (tmp_path / name).iterdir()
    meta = json.loads((folders["dask"] / "meta.json").read_text())
    assert meta["executor"] == f"on a Dask cluster at {address} with 2 workers", meta
    local, dask = folders["local"], folders["dask"]
    assert (dask / "compare.csv").read_text().count("\n") == 5  # the header, 2 recipes x 2 T
    assert (dask / "compare.csv").read_bytes() == (local / "compare.csv").read_bytes()
    for recipe in ("plain", "wide"):
        assert (dask / "recipes" / recipe / "summary.csv").read_bytes() == \
            (local / "recipes" / recipe / "summary.csv").read_bytes(), recipe
        _same_jobs(dask / "recipes" / recipe, local / "recipes" / recipe)


@needs_dask
def test_cli_executor_dask_without_an_address_starts_a_local_cluster(cli, reference, tmp_path):
    r = cli("sweep", *SHORT, "--seeds", "2", "--executor", "dask", "--workers", "2", "--runs-dir", str(tmp_path))
    expect_exit(r, 0)
    assert "Launching 6 jobs: T=1..3 x 2 seeds on a local Dask cluster with 2 workers" in r.stdout, msg(r)
    assert "Warning" not in r.stderr and "Traceback" not in r.stderr, msg(r)  # Dask stays quiet
    d = _sweep_dir(tmp_path)
    assert (d / "summary.csv").read_bytes() == (reference["SHORT"] / "summary.csv").read_bytes()


@needs_dask
@linux
def test_a_worker_killed_mid_job_loses_no_job(local_cluster, reference, tmp_path):
    """SIGKILL the worker process that has a job's metrics.csv open: Dask runs that job again,
    on a worker that clears the dead attempt's partial folder first."""
    from frnn_cli.experiment.dask_executor import DaskExecutor

    pids = set(local_cluster.run(os.getpid).values())
    killed: dict[str, object] = {}

    def job_being_written() -> tuple[int, Path] | None:
        for pid in pids:
            for fd in Path(f"/proc/{pid}/fd").glob("*"):
                try:
                    target = Path(os.readlink(fd))
                except OSError:
                    continue
                if target.name == "metrics.csv" and target.parent.parent == tmp_path / "jobs":
                    rows = target.read_text().count("\n") if target.exists() else 0
                    if rows >= 3:  # the header and two evaluations: the job is well under way
                        return pid, target.parent
        return None

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "pid" not in killed:
            found = job_being_written()
            if found:
                os.kill(found[0], signal.SIGKILL)
                killed.update(pid=found[0], job=found[1],
                              partial=sorted(p.name for p in found[1].iterdir()))
            time.sleep(0.005)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    summary = sweep.run_sweep(_spec(LONG, 1), tmp_path, DaskExecutor(local_cluster))
    thread.join(timeout=5)
    assert "pid" in killed, "no job was caught running"
    assert "summary.json" not in killed["partial"], killed  # it was killed before it finished
    assert summary["n_failed"] == 0 and summary["n_jobs"] == 6, summary["failed_jobs"]
    assert (tmp_path / "summary.csv").read_bytes() == (reference["LONG"] / "summary.csv").read_bytes()
    _same_jobs(tmp_path, reference["LONG"])


@needs_dask
@linux
def test_cli_on_the_dask_scheduler_and_worker_programs(dask_programs, reference, tmp_path):
    address, _ = dask_programs
    r = subprocess.run([*FRNN, "sweep", *SHORT, "--seeds", "2", "--executor", "dask", "--scheduler", address,
                        "--runs-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"Launching 6 jobs: T=1..3 x 2 seeds on a Dask cluster at {address} with 2 workers" in r.stdout, r.stdout
    assert "note:" not in r.stderr, r.stderr  # the workers run one BLAS thread each
    d = _sweep_dir(tmp_path)
    assert (d / "summary.csv").read_bytes() == (reference["SHORT"] / "summary.csv").read_bytes()
    _same_jobs(d, reference["SHORT"])


@needs_dask
@linux
def test_a_lost_scheduler_stops_the_sweep_like_an_interrupt_and_it_resumes_locally(dask_programs, reference, tmp_path):
    """Exit 130 and status "interrupted" soon after the scheduler dies; ``--resume`` on the local
    pool finishes the sweep with the local pool's results, and that run never imports Dask."""
    address, (scheduler, _) = dask_programs
    proc = subprocess.Popen([*FRNN, "sweep", *LONG, "--seeds", "1", "--executor", "dask", "--scheduler", address,
                             "--runs-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(list(tmp_path.glob("*-sweep-*/jobs/*/summary.json"))) >= 1, 60, "a finished job")
        os.killpg(scheduler.pid, signal.SIGKILL)
        lost_at = time.monotonic()
        out, err = proc.communicate(timeout=60)
        seconds = time.monotonic() - lost_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert seconds < 15, f"took {seconds:.1f} s to stop"
    lines = err.strip().splitlines()
    assert f"lost the connection to the Dask scheduler at {address}" in lines, err
    assert "Traceback" not in err, err
    d = _sweep_dir(tmp_path)
    assert json.loads((d / "meta.json").read_text())["status"] == "interrupted"
    assert not (d / "summary.csv").exists()

    # -X importtime logs every module the frnn process imports (to stderr).
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "frnn_cli", "sweep", "--resume", str(d), "--workers", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")]
    assert "frnn_cli.experiment.execute" in imported and "numpy" in imported
    assert not [m for m in imported if m.split(".")[0] in ("dask", "distributed")], "the local pool imported Dask"
    assert (d / "summary.csv").read_bytes() == (reference["LONG"] / "summary.csv").read_bytes()
    _same_jobs(d, reference["LONG"])
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["resumed"][-1]["executor"] == "on 2 workers", meta


@needs_dask
@linux
def default_sigint() -> None:
    """In a child before exec: SIGINT back to its default action, as a terminal gives it (a shell
    running the tests in the background hands its children SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_a_dask_sweep_at_exit_130_and_resume_on_the_local_pool_finishes_it(reference, tmp_path):
    """SIGINT to the process group of ``frnn sweep --executor dask`` (what Ctrl-C in a terminal
    does: frnn and its local cluster's workers) once a job has finished."""
    proc = subprocess.Popen([*FRNN, "sweep", *LONG, "--seeds", "1", "--executor", "dask", "--workers", "2",
                             "--runs-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=default_sigint)
    try:
        _wait_for(lambda: len(list(tmp_path.glob("*-sweep-*/jobs/*/summary.json"))) >= 1, 60, "a finished job")
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    d = _sweep_dir(tmp_path)
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["executor"] == "on a local Dask cluster with 2 workers", meta
    assert not (d / "summary.csv").exists()
    assert len(list(d.glob("jobs/*/summary.json"))) < 6, "every job finished before the interrupt"

    def group_gone() -> bool:  # no worker of the local cluster outlives frnn
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait_for(group_gone, 10, "the local cluster's workers to exit")
    r = subprocess.run([*FRNN, "sweep", "--resume", str(d), "--workers", "2"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert (d / "summary.csv").read_bytes() == (reference["LONG"] / "summary.csv").read_bytes()
    _same_jobs(d, reference["LONG"])
    assert json.loads((d / "meta.json").read_text())["status"] == "completed"


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never says a word (like an HTTP server, e.g. the dashboard)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"tcp://127.0.0.1:{s.getsockname()[1]}"


@needs_dask
@pytest.mark.parametrize("where", ["refused", "unknown host", "silent server"])
def test_no_scheduler_at_the_address_is_one_line_and_exit_2_without_the_clients_wait(cli, tmp_path, request, where):
    """A refused port or an unknown host fails at once (Dask's client would retry them for the
    whole 5 s timeout); a server that never sends Dask's handshake after the 5 s (the client
    would wait for it forever)."""
    import distributed  # noqa: F401 -- imported before the clock starts: a cold import is not what is timed

    from frnn_cli.experiment.dask_executor import CONNECT_TIMEOUT_SECONDS

    address = {"refused": lambda: f"tcp://127.0.0.1:{_free_port()}",  # nothing listens there
               "unknown host": lambda: "tcp://no-such-host.invalid:8786",  # .invalid never resolves (RFC 2606)
               "silent server": lambda: request.getfixturevalue("silent_server")}[where]()
    start = time.monotonic()
    r = cli("sweep", "T=1", "--executor", "dask", "--scheduler", address, "--runs-dir", str(tmp_path))
    seconds = time.monotonic() - start
    expect_exit(r, 2)
    assert r.stderr.startswith(f"error: --scheduler: no Dask scheduler at {address} ("), msg(r)
    assert r.stderr.count("\n") == 1, msg(r)
    if where == "silent server":
        assert "sent no Dask handshake within 5 s" in r.stderr, msg(r)
        assert CONNECT_TIMEOUT_SECONDS <= seconds < CONNECT_TIMEOUT_SECONDS + 3, f"{seconds:.1f} s"
    else:
        assert ("ConnectionRefusedError" if where == "refused" else "gaierror") in r.stderr, msg(r)
        assert seconds < 2, f"{seconds:.1f} s"  # the client's timeout would take 5 s
    assert list(tmp_path.iterdir()) == []  # no sweep folder is made


@pytest.mark.parametrize("args, flag", [
    (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler"),  # an address without --executor dask
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "--workers"),
])
def test_flags_that_do_not_go_together(cli, tmp_path, args, flag):
    if "--workers" in args and not HAVE_DASK:
        pytest.skip("dask[distributed] is not installed (pip install 'frnn[cluster]')")
    r = cli("sweep", "T=1", *args, "--runs-dir", str(tmp_path))
    expect_exit(r, 2)
    assert r.stderr.startswith(f"error: {flag}: ") and r.stderr.count("\n") == 1, msg(r)


def test_without_the_extra_executor_dask_is_one_line_and_exit_2(tmp_path):
    # A real interpreter in which `import dask` / `import distributed` fail, as when not installed.
    code = ("import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None; "
            "from frnn_cli.cli import main; main()")
    r = subprocess.run([sys.executable, "-c", code, "sweep", "T=1", "--executor", "dask", "--runs-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr == "error: --executor dask: Dask is not installed; install it with: pip install 'frnn[cluster]'\n"
    assert list(tmp_path.iterdir()) == []


def test_run_job_clears_what_a_dead_attempt_left_and_refuses_a_missing_folder(tmp_path):
    job = plan.plan(_spec(["T=2", "steps=40", "eval_every=20", "n_val=50", "n_test=50"], 1))[0]
    clean, reused = tmp_path / "clean", tmp_path / "reused"
    clean.mkdir()
    reused.mkdir()
    (reused / "metrics.csv").write_text("step,train_loss\n0,9\n20,9\n")  # a half-grown log
    (reused / ".model.npz.1234.tmp").write_bytes(b"partial")            # an atomic write cut short
    (reused / "plots").mkdir()
    (reused / "plots" / "stale.png").write_bytes(b"x")
    cfg = config.to_dict(job.cfg)
    assert execute.run_job(cfg, str(clean))["status"] == "completed"
    assert execute.run_job(cfg, str(reused))["status"] == "completed"
    assert sorted(p.name for p in reused.iterdir()) == sorted(TRAIN_FILES)
    assert (reused / "metrics.csv").read_bytes() == (clean / "metrics.csv").read_bytes()

    missing = execute.run_job(cfg, str(tmp_path / "elsewhere"))
    assert missing["status"] == "failed" and "shared file system" in missing["error"], missing
    assert not (tmp_path / "elsewhere").exists()
