"""frnn export --mlflow: real sweeps exported into a real SQLite-backed MLflow store, read back.

Every test that talks to MLflow takes the ``mlflow_client`` fixture, which skips (with the
reason) where the optional extra is not installed. The sweeps are real ``frnn sweep`` runs with
tiny settings; the store is a fresh ``sqlite:///`` file in a temporary folder per test.
"""

import csv
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frnn_cli.cli import app
from frnn_cli.export.folders import flatten_params
from frnn_cli.export.mlflow_store import _one_line, export_folder
from frnn_cli.export.stores import hide_password

TINY = ["steps=50", "eval_every=10", "n_val=64", "n_test=64", "--workers", "1", "--seeds", "2"]


def _msg(r):
    return f"exit {r.exit_code}\nexception: {r.exception!r}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"


def _needs_mlflow() -> None:
    pytest.importorskip("mlflow", reason="MLflow is the optional extra frnn[mlflow]: pip install 'frnn[mlflow]'")


def _run_sweep(runs: Path, *words: str) -> Path:
    _needs_mlflow()  # no sweep to export without MLflow: skip before the seconds it takes
    r = CliRunner().invoke(app, ["sweep", *words, *TINY, "--runs-dir", str(runs)])
    assert r.exit_code == 0 and r.exception is None, _msg(r)
    (folder,) = [p for p in runs.iterdir() if "-sweep-" in p.name]
    return folder


@pytest.fixture(scope="module")
def sweep_a(tmp_path_factory) -> Path:
    """A real sweep: T=1,2 x lr=1 x 2 seeds (4 jobs)."""
    return _run_sweep(tmp_path_factory.mktemp("runs_a"), "T=1,2", "lr=1")


@pytest.fixture(scope="module")
def sweep_b(tmp_path_factory) -> Path:
    """Another real sweep: T=1 x lr=0.3 x 2 seeds (2 jobs)."""
    return _run_sweep(tmp_path_factory.mktemp("runs_b"), "T=1", "lr=0.3")


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An empty MLflow SQLite database, made once: creating its tables takes seconds, a copy does not."""
    _needs_mlflow()
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("store") / "empty.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def mlflow_client(empty_store, tmp_path):
    """MlflowClient, with a fresh store at ``_uri(tmp_path)``; skips the test when the extra is not installed."""
    from mlflow.tracking import MlflowClient

    (tmp_path / "store").mkdir()
    shutil.copyfile(empty_store, tmp_path / "store" / "mlflow.db")
    return MlflowClient


def _uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"


def _runs(client, experiment: str) -> dict[str, object]:
    """Every active run of the experiment, by its frnn.run_id tag (duplicates fail the test)."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    ids = [r.data.tags["frnn.run_id"] for r in runs]
    assert len(ids) == len(set(ids)), f"duplicate MLflow runs: {sorted(ids)}"
    return dict(zip(ids, runs))


def _csv_columns(path: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.csv read with the csv module: column -> [(step, value)] for the non-empty cells."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {col: [(int(r["step"]), float(r[col])) for r in rows if r[col] != ""] for col in rows[0] if col != "step"}


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, path)}


def test_a_sweep_exports_as_a_parent_with_one_child_per_job(sweep_a, tmp_path, mlflow_client):
    uri = _uri(tmp_path)
    report = export_folder(sweep_a, uri)
    assert report.experiment_name == "frnn-sweep" and len(report.created) == 5 and not report.skipped, report
    client = mlflow_client(uri)
    runs = _runs(client, "frnn-sweep")
    sweep_id = sweep_a.name
    jobs = sorted(p.name for p in (sweep_a / "jobs").iterdir())
    assert set(runs) == {sweep_id, *(f"{sweep_id}/{j}" for j in jobs)}
    parent = runs[sweep_id]
    assert parent.info.run_id == report.root_run_id
    assert "mlflow.parentRunId" not in parent.data.tags

    summary = json.loads((sweep_a / "summary.json").read_text())
    meta = json.loads((sweep_a / "meta.json").read_text())
    assert parent.info.status == "FINISHED" and parent.data.tags["frnn.status"] == meta["status"] == "completed"
    assert parent.data.tags["frnn.max_T"] == str(summary["max_T"])
    assert parent.data.tags["frnn.version"] == meta["frnn"]
    assert parent.data.tags["frnn.folder"] == str(sweep_a.resolve())
    assert parent.data.params["sweep.T"] == "[1, 2]" and parent.data.params["seeds"] == "2"
    assert parent.data.params["lr"] == "1.0" and parent.data.params["steps"] == "50"
    # The sweep's per-T results, step = T.
    assert _history(client, parent.info.run_id, "per_T/val_acc") == [(r["T"], r["val_acc"]) for r in summary["rows"]]
    assert _history(client, parent.info.run_id, "per_T/learned") == [(r["T"], float(r["learned"])) for r in summary["rows"]]
    top = _artifacts(client, parent.info.run_id)
    assert {"sweep.yaml", "summary.json", "summary.csv", "meta.json", "plots"} <= top, top
    plots = {f"plots/{p.name}" for p in (sweep_a / "plots").glob("*.png")}
    assert "plots/accuracy_vs_T.png" in plots and _artifacts(client, parent.info.run_id, "plots") == plots

    for job in jobs:
        run = runs[f"{sweep_id}/{job}"]
        folder = sweep_a / "jobs" / job
        job_meta = json.loads((folder / "meta.json").read_text())
        job_summary = json.loads((folder / "summary.json").read_text())
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id, job
        assert run.data.tags["mlflow.runName"] == job
        assert run.data.tags["frnn.status"] == job_meta["status"] and run.data.tags["frnn.verdict"] == job_summary["verdict"]
        assert run.data.tags["frnn.git_commit"] == (job_meta["git_commit"] or "none")
        assert run.info.status == "FINISHED"
        assert run.data.params["T"] == job[1] and run.data.params["seed"] == str(job_summary["seed"])
        columns = _csv_columns(folder / "metrics.csv")
        assert columns["train_loss"][0][0] == 10, "the empty step-0 cell must not be logged"
        for col, points in columns.items():
            assert _history(client, run.info.run_id, col) == points, (job, col)
        assert _history(client, run.info.run_id, "test_acc") == [(0, job_summary["test"]["accuracy"])]
        assert _artifacts(client, run.info.run_id) == {"config.yaml", "summary.json", "meta.json"}
        local = Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path / "dl" / job)))
        assert local.read_bytes() == (folder / "config.yaml").read_bytes()


def test_export_twice_adds_nothing_and_a_resumed_sweep_adds_only_its_new_job(sweep_a, tmp_path, mlflow_client):
    # The sweep as Ctrl-C leaves it: one job killed mid-run (config.yaml and meta.json with
    # status "running" only), no summary or plots, meta.json status "interrupted".
    sweep = tmp_path / sweep_a.name
    shutil.copytree(sweep_a, sweep)
    killed = sweep / "jobs" / "T2_r1"
    for name in ("metrics.csv", "summary.json", "model.npz"):
        (killed / name).unlink()
    for path, status in ((killed / "meta.json", "running"), (sweep / "meta.json", "interrupted")):
        meta = json.loads(path.read_text())
        path.write_text(json.dumps({**meta, "status": status, "end_time": None}))
    for name in ("summary.json", "summary.csv"):
        (sweep / name).unlink()
    shutil.rmtree(sweep / "plots")
    uri = _uri(tmp_path)
    first = export_folder(sweep, uri)
    assert len(first.created) == 4 and [s[0] for s in first.skipped] == [f"{sweep.name}/T2_r1"], first
    client = mlflow_client(uri)
    parent = client.get_run(first.root_run_id)
    assert parent.info.status == "KILLED" and not any(k.startswith("per_T/") for k in parent.data.metrics), parent

    again = export_folder(sweep, uri)
    assert again.created == [] and again.updated == [] and len(again.unchanged) == 4, again
    assert len(_runs(client, "frnn-sweep")) == 4

    r = CliRunner().invoke(app, ["sweep", "--resume", str(sweep), "--workers", "1"])
    assert r.exit_code == 0 and r.exception is None, _msg(r)
    resumed = export_folder(sweep, uri)
    assert resumed.created == [f"{sweep.name}/T2_r1"], resumed
    assert resumed.updated == [sweep.name] and len(resumed.unchanged) == 3 and not resumed.skipped, resumed
    runs = _runs(client, "frnn-sweep")
    assert len(runs) == 5
    new = runs[f"{sweep.name}/T2_r1"]
    assert new.data.tags["mlflow.parentRunId"] == runs[sweep.name].info.run_id == first.root_run_id
    for col, points in _csv_columns(killed / "metrics.csv").items():
        assert _history(client, new.info.run_id, col) == points, col
    summary = json.loads((sweep / "summary.json").read_text())
    assert _history(client, first.root_run_id, "per_T/val_acc") == [(r["T"], r["val_acc"]) for r in summary["rows"]]
    parent = client.get_run(first.root_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["frnn.max_T"] == str(summary["max_T"]), parent
    assert "summary.json" in _artifacts(client, first.root_run_id)
    # A job exported on its own keeps the id it has in its sweep.
    alone = export_folder(sweep / "jobs" / "T1_r0", uri)
    assert alone.experiment_name == "frnn-train" and alone.created == [f"{sweep.name}/T1_r0"], alone


def test_a_compare_exports_recipes_as_intermediate_parents(sweep_a, sweep_b, tmp_path, mlflow_client):
    compare = tmp_path / "2026-12-02_10-00-00-compare-abc123"
    shutil.copytree(sweep_a, compare / "recipes" / "rnn-sgd")
    shutil.copytree(sweep_b, compare / "recipes" / "rnn-slow")
    (compare / "meta.json").write_text(json.dumps({"kind": "compare", "status": "completed", "frnn": "test"}))
    (compare / "compare.yaml").write_text("recipes: [rnn-sgd, rnn-slow]\nseeds: 2\n")
    (compare / "summary.json").write_text(json.dumps({"recipes": {
        "rnn-sgd": {"max_T": 2, "max_T_contiguous": 2}, "rnn-slow": {"max_T": None, "max_T_contiguous": None}}}))
    uri = _uri(tmp_path)
    report = export_folder(compare, uri)
    assert report.experiment_name == "frnn-compare" and len(report.created) == 1 + 2 + 4 + 2, report
    client = mlflow_client(uri)
    runs = _runs(client, "frnn-compare")
    top = runs[compare.name]
    assert "mlflow.parentRunId" not in top.data.tags and top.data.params["recipes"] == '["rnn-sgd", "rnn-slow"]'
    # max_T from the compare's summary.json (written by this test), max_T_gradient from each real sweep's.
    gradient = {f"max_T_gradient/{r}": float(json.loads((p / "summary.json").read_text())["max_T_gradient"])
                for r, p in (("rnn-sgd", sweep_a), ("rnn-slow", sweep_b))}
    assert top.data.metrics == {"max_T/rnn-sgd": 2.0, "max_T_contiguous/rnn-sgd": 2.0, **gradient}
    assert top.data.tags["frnn.max_T"] == "rnn-sgd=2, rnn-slow=none"
    for recipe, sweep in (("rnn-sgd", sweep_a), ("rnn-slow", sweep_b)):
        mid = runs[f"{compare.name}/{recipe}"]
        assert mid.data.tags["mlflow.parentRunId"] == top.info.run_id and mid.data.tags["frnn.recipe"] == recipe
        assert mid.data.tags["frnn.kind"] == "sweep" and mid.data.tags["mlflow.runName"] == recipe
        for job in (sweep / "jobs").iterdir():
            run = runs[f"{compare.name}/{recipe}/{job.name}"]
            assert run.data.tags["mlflow.parentRunId"] == mid.info.run_id, job
            assert run.data.tags["frnn.recipe"] == recipe
    assert len(runs) == 9
    assert export_folder(compare, uri).created == [] and len(_runs(client, "frnn-compare")) == 9


def _export(folder: Path, uri: str, experiment: str) -> str:
    """``frnn export FOLDER --mlflow URI --experiment NAME``; its counts line ("1 runs created, ...")."""
    r = CliRunner().invoke(app, ["export", str(folder), "--mlflow", uri, "--experiment", experiment])
    assert r.exit_code == 0 and r.exception is None, _msg(r)
    return r.stdout.split(" s: ", 1)[1].split("\n", 1)[0]


def _family(client, experiment: str, sweep_id: str, jobs: list[str]) -> tuple[object, dict[str, object]]:
    """The sweep's MLflow run and its jobs' runs, after checking there is one run per frnn run id
    and that every job's run is a child of the sweep's run, tagged with the sweep as its root."""
    runs = _runs(client, experiment)
    assert set(runs) == {sweep_id, *(f"{sweep_id}/{j}" for j in jobs)}, sorted(runs)
    parent = runs.pop(sweep_id)
    assert "mlflow.parentRunId" not in parent.data.tags
    for frnn_id, run in runs.items():
        assert run.data.tags.get("mlflow.parentRunId") == parent.info.run_id, frnn_id
        assert run.data.tags["frnn.root_id"] == sweep_id, frnn_id
        assert run.data.tags["frnn.job_id"] == frnn_id.rsplit("/", 1)[1] and run.data.tags["frnn.sweep_id"] == sweep_id
    return parent, runs


def test_a_job_and_its_sweep_share_one_mlflow_run_whichever_is_exported_first(sweep_a, tmp_path, mlflow_client):
    uri = _uri(tmp_path)
    client = mlflow_client(uri)
    sweep_id = sweep_a.name
    jobs = sorted(p.name for p in (sweep_a / "jobs").iterdir())
    job = sweep_a / "jobs" / "T1_r0"
    job_id = f"{sweep_id}/T1_r0"

    # Job first: a run without a parent, which the sweep's export then adopts as its child.
    assert _export(job, uri, "job-first") == "1 runs created, 0 updated, 0 unchanged, 0 skipped"
    (alone,) = _runs(client, "job-first").values()
    assert "mlflow.parentRunId" not in alone.data.tags and alone.data.tags["frnn.root_id"] == job_id
    assert alone.data.tags["frnn.job_id"] == "T1_r0" and alone.data.tags["frnn.sweep_id"] == sweep_id
    assert _export(sweep_a, uri, "job-first") == "4 runs created, 1 updated, 0 unchanged, 0 skipped"
    parent, children = _family(client, "job-first", sweep_id, jobs)
    assert children[job_id].info.run_id == alone.info.run_id
    assert _history(client, alone.info.run_id, "test_acc") == [(0, json.loads((job / "summary.json").read_text())["test"]["accuracy"])]
    # Neither export changes anything now: the job keeps its parent when exported alone.
    assert _export(job, uri, "job-first") == "0 runs created, 0 updated, 1 unchanged, 0 skipped"
    assert _export(sweep_a, uri, "job-first") == "0 runs created, 0 updated, 5 unchanged, 0 skipped"
    assert _family(client, "job-first", sweep_id, jobs)[0].info.run_id == parent.info.run_id

    # Sweep first: the job exported alone finds its run in the sweep and leaves it as it is.
    assert _export(sweep_a, uri, "sweep-first") == "5 runs created, 0 updated, 0 unchanged, 0 skipped"
    parent, children = _family(client, "sweep-first", sweep_id, jobs)
    for _ in range(2):
        assert _export(job, uri, "sweep-first") == "0 runs created, 0 updated, 1 unchanged, 0 skipped"
        again, again_children = _family(client, "sweep-first", sweep_id, jobs)
        assert again.info.run_id == parent.info.run_id
        assert {k: r.info.run_id for k, r in again_children.items()} == {k: r.info.run_id for k, r in children.items()}

    # Once the sweep's MLflow run is deleted, the job exported alone drops the link to it, and
    # the sweep exported again gets a new run that takes its jobs back as children.
    client.delete_run(parent.info.run_id)
    assert _export(job, uri, "sweep-first") == "0 runs created, 1 updated, 0 unchanged, 0 skipped"
    orphan = client.get_run(children[job_id].info.run_id)
    assert "mlflow.parentRunId" not in orphan.data.tags and orphan.data.tags["frnn.root_id"] == job_id
    assert _export(sweep_a, uri, "sweep-first") == "1 runs created, 4 updated, 0 unchanged, 0 skipped"
    new_parent, new_children = _family(client, "sweep-first", sweep_id, jobs)
    assert new_parent.info.run_id != parent.info.run_id
    assert {k: r.info.run_id for k, r in new_children.items()} == {k: r.info.run_id for k, r in children.items()}

    # A second run with the job's id, as an export by an older frnn left: the child run is the
    # one kept up to date, and the export says there is a duplicate.
    stray = client.create_run(new_parent.info.experiment_id, tags={"frnn.run_id": job_id}).info.run_id
    report = export_folder(job, uri, "sweep-first")
    assert report.unchanged == [job_id] and report.updated == [] and report.created == [], report
    assert report.notes == [f"1 frnn run id(s) have more than one MLflow run in this experiment (e.g. {job_id}); only "
                            "the one with a parent run (else the first found) is kept up to date, the others are left "
                            "as they are"], report.notes
    assert "frnn.fingerprint" not in client.get_run(stray).data.tags


def test_cli_export_reports_counts_and_exits_0(sweep_b, tmp_path, mlflow_client):
    uri = _uri(tmp_path)
    r = CliRunner().invoke(app, ["export", str(sweep_b), "--mlflow", uri, "--experiment", "mine"])
    assert r.exit_code == 0 and r.exception is None, _msg(r)
    assert "to experiment mine" in r.stdout and "3 runs created, 0 updated, 0 unchanged, 0 skipped" in r.stdout, _msg(r)
    assert len(_runs(mlflow_client(uri), "mine")) == 3


def _postgres_driver_missing() -> str:
    """What the error must say for postgresql:// here: the module of SQLAlchemy's default PostgreSQL
    driver (psycopg from SQLAlchemy 2.1 on, psycopg2 before), which must not be installed; skips
    where it is installed (the export would then try to connect)."""
    from sqlalchemy.engine.url import make_url

    dialect = make_url("postgresql://").get_dialect()
    try:
        (getattr(dialect, "import_dbapi", None) or dialect.dbapi)()
    except ModuleNotFoundError as exc:
        hint = {"psycopg": "pip install 'psycopg[binary]'", "psycopg2": "pip install psycopg2-binary"}[exc.name]
        return f"needs the Python module {exc.name!r} (its database driver), which is not installed; install it: {hint}"
    pytest.skip("a PostgreSQL driver is installed: a postgresql:// store would be reached for, not refused")


def _refused_port() -> int:
    """A local TCP port nothing listens on: one the kernel just handed out, closed again."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def open_port():
    """A local TCP port that accepts connections (into the backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.mark.parametrize(
    "make_uri, folder, expected",
    [
        (lambda tmp, port: "nonsense://x", "sweep", "MLflow has no store for this kind of URI"),
        (lambda tmp, port: "mlflow.db", "sweep",
         "a folder or file path, not a store URI; for an SQLite file give sqlite:///mlflow.db"),
        (lambda tmp, port: f"sqlite:///{tmp / 'a_file' / 'sub' / 'm.db'}", "sweep",
         "a parent of the database path, is a file, not a folder"),
        (lambda tmp, port: f"sqlite:///{tmp / 'a_file'}", "sweep", "file is not a database"),
        (lambda tmp, port: "sqlite://", "sweep", "in-memory SQLite store keeps nothing"),
        (lambda tmp, port: f"sqlite:///{tmp / 'm.db'}", "parent", "is not an frnn run folder"),
        (lambda tmp, port: f"sqlite:///{tmp / 'm.db'}", "missing", "does not exist"),
        (lambda tmp, port: f"sqlite:///{tmp / 'm.db'}", "vanishing", "is a vanishing run"),
        # A port that accepts: the probe passes and the missing driver is what is reported.
        (lambda tmp, port: f"postgresql://u@127.0.0.1:{port}/db", "sweep", _postgres_driver_missing),
        (lambda tmp, port: "postgresql://u@127.0.0.1:99999/db", "sweep", "the port is not a number from 0 to 65535"),
        (lambda tmp, port: "postgresql://u:Secret42@127.0.0.1:1/db", "sweep",
         "'postgresql://u:***@127.0.0.1:1/db': cannot connect to 127.0.0.1:1 (Connection refused)"),
        (lambda tmp, port: "postgresql://127.0.0.1:1/db?user=u&password=Secret42", "sweep",
         "'postgresql://127.0.0.1:1/db?user=u&password=***': cannot connect"),
        (lambda tmp, port: "mysql+pymysql://127.0.0.1:1/db?PWD=Secret42&user=u&passwd=Secret42", "sweep",
         "'mysql+pymysql://127.0.0.1:1/db?PWD=***&user=u&passwd=***': cannot connect"),
    ],
    ids=["unknown-scheme", "bare-path", "sqlite-under-a-file", "not-a-database", "in-memory", "not-a-run-folder", "missing-folder",
         "vanishing-folder", "postgres-driver-missing", "bad-port", "password-hidden", "query-password-hidden",
         "query-passwd-pwd-hidden"],
)
def test_bad_store_or_folder_is_one_line_and_exit_2(sweep_b, tmp_path, mlflow_client, open_port, make_uri, folder,
                                                    expected):
    if callable(expected):
        expected = expected()
    (tmp_path / "a_file").write_text("not a database, and not a folder either\n")
    paths = {"sweep": sweep_b, "parent": sweep_b.parent, "missing": tmp_path / "nope"}
    if folder == "vanishing":
        r = CliRunner().invoke(app, ["vanishing", "T=3", "n=4", "--runs-dir", str(tmp_path / "v")])
        assert r.exit_code == 0 and r.exception is None, _msg(r)
        (paths["vanishing"],) = (tmp_path / "v").iterdir()
    path = paths[folder]
    r = CliRunner().invoke(app, ["export", str(path), "--mlflow", make_uri(tmp_path, open_port)])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), _msg(r)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], _msg(r)
    assert "Secret42" not in r.stdout + r.stderr, _msg(r)


def test_a_refused_database_port_is_one_line_within_seconds_without_the_driver(sweep_b, tmp_path):
    # A subprocess, so that MLflow's logging (bound to the real stderr) would show up too. The
    # PostgreSQL drivers are made unimportable, as in CI: the TCP probe must run before the
    # driver is imported (else this says "needs the Python module 'psycopg'"). Where a driver
    # is installed, the same probe spares MLflow's ten retries (100 s, 48 warning lines).
    port = _refused_port()
    uri = f"postgresql://u:Secret42@127.0.0.1:{port}/db"
    code = ("import sys; sys.modules.update(psycopg=None, psycopg2=None); sys.argv = ['frnn'] + sys.argv[1:]; "
            "from frnn_cli.cli import main; main()")
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, "export", str(sweep_b), "--mlflow", uri],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    seconds = time.perf_counter() - start
    assert p.returncode == 2, p
    assert p.stderr == (f"error: --mlflow 'postgresql://u:***@127.0.0.1:{port}/db': cannot connect to 127.0.0.1:{port} "
                        "(Connection refused); expected the address of a running postgresql server\n"), p
    assert seconds < 30, f"{seconds:.1f} s"  # MLflow's imports take a second or two; its retries took 100 s
    assert list(tmp_path.iterdir()) == []


def test_a_database_that_drops_the_connection_is_one_line_at_once(sweep_b, tmp_path, mlflow_client):
    # The probe's TCP connection is accepted; the driver's connection is closed by the "server"
    # at once, as a wrong password would be refused. MLflow alone retried this for 100 s.
    pytest.importorskip("psycopg", reason="needs a PostgreSQL driver (pip install 'psycopg[binary]')")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(30)
        port = server.getsockname()[1]

        def hang_up() -> None:
            for _ in range(2):  # the probe, then the driver
                try:
                    server.accept()[0].close()
                except OSError:
                    return

        threading.Thread(target=hang_up, daemon=True).start()
        start = time.perf_counter()
        r = CliRunner().invoke(app, ["export", str(sweep_b), "--mlflow", f"postgresql://u:Secret42@127.0.0.1:{port}/db"])
        seconds = time.perf_counter() - start
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), _msg(r)
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"error: --mlflow 'postgresql://u:***@127.0.0.1:{port}/db': (psycopg.OperationalError) "), line
    assert "server closed the connection unexpectedly" in line and not line.endswith("("), line
    assert "Secret42" not in r.stdout + r.stderr and seconds < 20, (seconds, line)


def test_hide_password_masks_user_info_and_query_passwords():
    assert hide_password("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert hide_password("postgresql://h/db?user=u&password=top&sslmode=require") == \
        "postgresql://h/db?user=u&password=***&sslmode=require"
    assert hide_password("mysql://h/db?Passwd=a&pwd=b") == "mysql://h/db?Passwd=***&pwd=***"
    # Nothing to hide: unchanged, character for character (an empty password included).
    for uri in ("postgresql://u@h/db?password=", "sqlite:///m.db", "http://h:5000", "mysql://h/db?passwords=x"):
        assert hide_password(uri) == uri


def test_one_line_drops_sqlalchemy_background_link():
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine("sqlite:////nonexistent-folder/x.db")
    with pytest.raises(sqlalchemy.exc.OperationalError) as info:
        engine.connect()
    assert "Background on this error" in str(info.value)  # what is cut
    assert _one_line(info.value) == "(sqlite3.OperationalError) unable to open database file"


def _train(runs: Path, *words: str) -> Path:
    """A real ``frnn train`` run folder (no plots)."""
    _needs_mlflow()
    r = CliRunner().invoke(app, ["train", *words, "--no-plots", "--runs-dir", str(runs)])
    assert r.exit_code == 0 and r.exception is None, _msg(r)
    (folder,) = runs.iterdir()
    return folder


def test_a_guessing_run_exports_trials_and_a_killed_train_run_says_it_did_not_finish(tmp_path, mlflow_client):
    uri = _uri(tmp_path)
    client = mlflow_client(uri)
    guess = _train(tmp_path / "guess", "optimizer=guess", "T=5", "hidden=5", "init_scale=1", "steps=200", "n_val=32",
                   "n_test=64")
    summary = json.loads((guess / "summary.json").read_text())
    assert isinstance(summary["trials"], int) and isinstance(summary["trial"], int), summary
    r = CliRunner().invoke(app, ["export", str(guess), "--mlflow", uri])
    assert r.exit_code == 0 and r.stderr == "", _msg(r)
    run = _runs(client, "frnn-train")[guess.name]
    assert _history(client, run.info.run_id, "trials") == [(0, summary["trials"])]
    assert _history(client, run.info.run_id, "trial") == [(0, summary["trial"])]
    assert run.info.status == "FINISHED"

    # A train run killed by SIGKILL: meta.json still says "running", no summary.json.
    killed = tmp_path / "killed" / f"{guess.name}-killed"
    shutil.copytree(guess, killed)
    (killed / "summary.json").unlink()
    meta = json.loads((killed / "meta.json").read_text())
    (killed / "meta.json").write_text(json.dumps({**meta, "status": "running", "end_time": None}))
    r = CliRunner().invoke(app, ["export", str(killed), "--mlflow", uri])
    assert r.exit_code == 0 and r.exception is None, _msg(r)
    assert r.stderr == (f"note: {killed.name}: the train run did not finish (status 'running' in meta.json, no "
                        "summary.json: killed, or still running); exported with MLflow status RUNNING\n"), _msg(r)
    run = _runs(client, "frnn-train")[killed.name]
    assert run.info.status == "RUNNING" and run.data.tags["frnn.status"] == "running"
    assert "trials" not in run.data.metrics and "val_acc" in run.data.metrics, run.data.metrics


def test_without_mlflow_the_export_says_how_to_install_it(tmp_path):
    # sys.modules["mlflow"] = None makes `import mlflow` raise ImportError, as when it is absent.
    # Runs with or without the extra; the missing extra is reported before the folder is read.
    code = ("import sys; sys.modules['mlflow'] = None; sys.argv = ['frnn'] + sys.argv[1:]; "
            "from frnn_cli.cli import main; main()")
    p = subprocess.run([sys.executable, "-c", code, "export", str(tmp_path), "--mlflow", "sqlite:///unused.db"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 2, p
    assert p.stderr.strip() == "error: --mlflow needs MLflow, which is not installed: pip install 'frnn[mlflow]'", p
    assert list(tmp_path.iterdir()) == []


def test_training_and_help_never_import_mlflow():
    code = ("import sys; import frnn_cli.cli.root, frnn_cli.experiment.sweep, frnn_cli.experiment.compare, frnn_cli.train, frnn_cli.runs, frnn_cli.export.mlflow_store; "
            "from typer.testing import CliRunner; r = CliRunner().invoke(frnn_cli.cli.root.app, ['--help']); "
            "assert r.exit_code == 0, r.output; print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "[]", p


def test_flatten_params_gives_dotted_keys_and_yaml_spelled_text():
    got = flatten_params({"lr": 0.3, "clip": None, "plots": True, "sweep": {"T": [1, 2], "lr": [0.1, 1.0]}, "bad key!": 1})
    assert got == {"lr": "0.3", "clip": "null", "plots": "true", "sweep.T": "[1, 2]", "sweep.lr": "[0.1, 1.0]",
                   "bad key_": "1"}
