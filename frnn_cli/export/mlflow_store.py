"""Write frnn run folders into an MLflow tracking store, after the fact.

frnn's run folders are the record of an experiment; this module copies what is in them into
MLflow (https://mlflow.org) so that runs can be filtered, compared and plotted in its web UI.
It only reads the folders: training never imports MLflow nor waits for it, and MLflow is an
optional extra (``pip install 'frnn[mlflow]'``), imported inside :func:`export_folder`.
How a folder maps to MLflow runs, params, metrics, tags and artifacts is described in
:mod:`frnn_cli.export.folders`, which reads the folders.

Idempotence
-----------
Each MLflow run carries the frnn run id in the tag ``frnn.run_id`` (the folder name; for a job
``<sweep id>/<job id>``, for a compare's recipe ``<compare id>/<recipe>``) and a fingerprint of
the folder's files in ``frnn.fingerprint``. An export looks the ids up first: a run whose
fingerprint is unchanged is skipped, a changed one (a sweep resumed since the last export) is
updated in place, a missing one (a new job) is created. The fingerprint is written last, so an
export that was interrupted half-way is completed by the next one.

The lookup is by frnn run id, not by the folder that was exported: it finds the exported
folder's run and every run whose id starts with ``<its id>/``. A job (or a compare's recipe)
exported on its own and then within its sweep (or compare), into the same experiment, thus
keeps one MLflow run, which the second export makes a child of the sweep's run. The other way
round, a job exported on its own after its sweep keeps its parent link (and its
``frnn.root_id``, the outermost folder exported with it) as long as the parent run is active,
so exporting either folder again finds nothing to change.

MLflow never forgets a metric value once logged, and refuses to change a param. An update
therefore adds only the metric points that are not in the run yet; a value that changed at a
step already logged (a failed sweep whose failed jobs a ``--resume`` re-ran) is logged again at
that step with a later timestamp. Params are never changed (frnn itself refuses to resume a
sweep with a different spec).

Quiet and offline
-----------------
Before importing MLflow, :func:`export_folder` sets (unless the environment already sets them)
:data:`QUIET_ENV`: no usage telemetry (``MLFLOW_DISABLE_TELEMETRY``, ``DO_NOT_TRACK``), no INFO
log lines, no progress bars, and two HTTP retries instead of seven (an unreachable server
fails in seconds, not four minutes).

Database stores
---------------
MLflow retries a database it cannot connect to ten times, with pauses that add up to about
100 s, and logs a warning with the driver's message before each retry. For a database URI
(``postgresql://``, ``mysql://``, ``mssql://``) the export therefore first opens one plain TCP
connection to the server's host and port (:func:`frnn_cli.export.stores.unreachable_database`), before
the driver is imported, and then one connection through SQLAlchemy with the driver's connect
timeout (:func:`frnn_cli.export.stores.check_database`): an unknown host, a refused port, a wrong password or a missing
database is reported in one line within seconds, and MLflow's retry warnings are silenced.
A password in the URI (``user:pw@`` or a ``password=``, ``passwd=`` or ``pwd=`` query
parameter) is shown as ``***`` in every message.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frnn_cli.errors import BadInput
from frnn_cli.export.stores import (INSTALL_HINT, _secrets, check_database, check_sqlite, database_dialect,
                                    hide_password, missing_module, sqlite_path, unreachable_database)
from frnn_cli.export.folders import (PARENT_TAG, TAG_FINGERPRINT, TAG_ROOT_ID, TAG_RUN_ID, RunNode, read_run_folder,
                                     unfinished_note)

#: Environment variables set (with ``os.environ.setdefault``) before MLflow is imported.
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow's own switch for usage telemetry
    "DO_NOT_TRACK": "true",  # the cross-tool convention, which MLflow also honours
    "MLFLOW_LOGGING_LEVEL": "WARNING",  # no "Creating initial MLflow database tables..." lines
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
}
#: The logger of MLflow's "SQLAlchemy engine could not be created ... retried in N seconds" warnings.
RETRY_LOGGER = "mlflow.store.db.utils"
#: frnn status -> MLflow run status.
MLFLOW_STATUS = {"completed": "FINISHED", "diverged": "FINISHED", "failed": "FAILED",
                 "interrupted": "KILLED", "running": "RUNNING"}


@dataclass
class ExportReport:
    """The outcome of :func:`export_folder`.

    Attributes
    ----------
    uri, experiment_name, experiment_id : str
    root_run_id : str
        MLflow run id of the exported folder's own run (the parent for a sweep or compare).
    created, updated, unchanged : list of str
        frnn run ids by what the export did with them.
    skipped : list of (frnn run id, reason)
    notes : list of str
        Other things worth telling (a param MLflow would not let change, ...).
    seconds : float
        Wall time of the export (s).
    """

    uri: str
    experiment_name: str
    experiment_id: str
    root_run_id: str = ""
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------
# Talking to MLflow


def import_mlflow() -> Any:
    """Set :data:`QUIET_ENV` (where unset), import MLflow and return ``MlflowClient``.

    Raises
    ------
    BadInput
        If MLflow is not installed (or cannot be imported): the message says
        ``pip install 'frnn[mlflow]'``.
    """
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow  # noqa: F401 -- on its own first, so that "not installed" is told apart
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        if exc.name == "mlflow":
            raise BadInput(f"--mlflow needs MLflow, which is not installed: {INSTALL_HINT}") from None
        raise BadInput(f"--mlflow: MLflow is installed but cannot be imported ({exc}); reinstall it: {INSTALL_HINT}") from None
    return MlflowClient


@contextmanager
def _quiet_retries() -> Iterator[None]:
    """Silence MLflow's warning before each retry of a database connection (restored after)."""
    logger = logging.getLogger(RETRY_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line, without MLflow's documentation links."""
    text = " ".join(str(exc).split())
    # Cut at the link, and at the "(" that opens SQLAlchemy's "(Background on this error at: ...)".
    text = re.split(r"\s*\(?(?:See|Background on this error at:?) \(?https?://", text)[0]
    return text[:400] or type(exc).__name__


class _Exporter:
    """Writes a tree of :class:`RunNode` into one MLflow experiment (see the module docstring)."""

    def __init__(self, client: Any, experiment_id: str, report: ExportReport) -> None:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException

        self.client, self.experiment_id, self.report = client, experiment_id, report
        self.Metric, self.Param, self.RunTag = Metric, Param, RunTag
        self.MlflowException = MlflowException

    def existing(self, root_id: str) -> dict[str, Any]:
        """The active MLflow runs of this experiment for the frnn run ``root_id`` and every run
        below it (frnn run id ``root_id`` or ``<root_id>/...``), by frnn run id.

        Runs are found whatever folder they were exported with (a job on its own, its sweep,
        the compare above). Should an frnn run id have more than one MLflow run (left by an
        export of an earlier frnn version), the one with a parent link is used, else the first
        found, and a note in the report says how many ids have extra runs.

        Parameters
        ----------
        root_id : str
            The frnn run id of the exported folder.

        Returns
        -------
        dict
            frnn run id -> MLflow ``Run``.

        Raises
        ------
        BadInput
            If ``root_id`` contains a single quote, which an MLflow search string cannot hold.
        """
        if "'" in root_id:
            raise BadInput(f"RUN_DIR: the folder name {root_id!r} contains a quote, which an MLflow search cannot match")
        # One prefix search finds the run and those below it. In LIKE, "_" and "%" match any
        # character(s) and some databases read a backslash as an escape, so the pattern stops
        # before any backslash and may match more runs than wanted; the exact test is below.
        pattern = root_id.split("\\", 1)[0] + "%"
        query = f"tags.`{TAG_RUN_ID}` LIKE '{pattern}'"
        found: dict[str, Any] = {}
        extra: set[str] = set()
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], query, max_results=10_000, page_token=token)
            for run in page:
                frnn_id = run.data.tags.get(TAG_RUN_ID, "")
                if frnn_id != root_id and not frnn_id.startswith(root_id + "/"):
                    continue
                held = found.get(frnn_id)
                if held is None:
                    found[frnn_id] = run
                    continue
                extra.add(frnn_id)
                if PARENT_TAG in run.data.tags and PARENT_TAG not in held.data.tags:
                    found[frnn_id] = run
            token = page.token
            if not token:
                break
        if extra:
            self.report.notes.append(f"{len(extra)} frnn run id(s) have more than one MLflow run in this experiment "
                                     f"(e.g. {min(extra)}); only the one with a parent run (else the first found) "
                                     "is kept up to date, the others are left as they are")
        return found

    def adopt_parent(self, root: RunNode, run: Any | None) -> str | None:
        """The parent MLflow run id the exported folder's own run keeps, or None.

        A job or recipe exported on its own after its sweep or compare already has a run that
        is a child of the sweep's (or compare's) run. That link is kept, rather than removed
        and put back by every other export, when the parent run is still an active run of this
        experiment; the whole exported tree then also keeps that run's ``frnn.root_id`` tag.

        Parameters
        ----------
        root : RunNode
            The exported folder's node; its tree's ``frnn.root_id`` tags are changed in place
            when the parent is kept.
        run : mlflow Run or None
            The existing MLflow run of ``root``, if any.

        Returns
        -------
        str or None
            The parent's MLflow run id, or None when there is no run, no parent link, or the
            parent run was deleted (the link is then removed by the update).
        """
        parent_id = run.data.tags.get(PARENT_TAG) if run is not None else None
        if not parent_id:
            return None
        try:
            parent = self.client.get_run(parent_id)
        except self.MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":  # the parent run was deleted for good
                return None
            raise
        if parent.info.lifecycle_stage != "active" or parent.info.experiment_id != self.experiment_id:
            return None
        outer = run.data.tags.get(TAG_ROOT_ID)
        if outer:
            for node in root.walk():
                node.tags[TAG_ROOT_ID] = outer
        return parent_id

    def _log_batch(self, run_id: str, metrics: list = (), params: list = (), tags: list = ()) -> None:
        # As few calls as MLflow's limits allow: at most 1000 entities per call, of which at
        # most 100 params and tags.
        keyed = [("params", p) for p in params] + [("tags", t) for t in tags]
        metrics = list(metrics)
        while keyed or metrics:
            batch: dict[str, list] = {"params": [], "tags": [], "metrics": []}
            for kind, item in keyed[:100]:
                batch[kind].append(item)
            keyed = keyed[100:]
            room = 1000 - len(batch["params"]) - len(batch["tags"])
            batch["metrics"], metrics = metrics[:room], metrics[room:]
            self.client.log_batch(run_id, **batch)

    def _tags(self, node: RunNode, parent_id: str | None) -> dict[str, str]:
        tags = {k: v[:8000] for k, v in node.tags.items()}
        tags["mlflow.runName"] = node.name
        if parent_id:
            tags[PARENT_TAG] = parent_id
        return tags

    def _metrics(self, points: list[tuple[str, float, int]], timestamp: int) -> list:
        return [self.Metric(k, v, timestamp, step) for k, v, step in points]

    def _finish(self, run_id: str, node: RunNode) -> None:
        if node.artifacts:
            # One call for all files: each call looks the run up in the store again.
            with tempfile.TemporaryDirectory(prefix="frnn-export-") as tmp:
                for path, folder in node.artifacts:
                    target = Path(tmp, folder or "", path.name)
                    target.parent.mkdir(exist_ok=True)
                    shutil.copyfile(path, target)
                self.client.log_artifacts(run_id, tmp)
        status = MLFLOW_STATUS.get(node.status, "FINISHED")
        if status == "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        else:
            self.client.set_terminated(run_id, status, end_time=node.end_ms)
        # Last: only a run whose every part was written counts as exported.
        self.client.set_tag(run_id, TAG_FINGERPRINT, node.fingerprint)

    def create(self, node: RunNode, parent_id: str | None) -> str:
        """Create the MLflow run of ``node``; return its MLflow run id."""
        run = self.client.create_run(self.experiment_id, start_time=node.start_ms, tags=self._tags(node, parent_id),
                                     run_name=node.name)
        run_id = run.info.run_id
        # One timestamp for every point: metrics.csv does not record when each row was written.
        stamp = node.end_ms or node.start_ms or int(time.time() * 1000)
        self._log_batch(run_id, self._metrics(node.metrics, stamp),
                        [self.Param(k, v) for k, v in node.params.items()])
        self._finish(run_id, node)
        self.report.created.append(node.run_id)
        return run_id

    def update(self, node: RunNode, run: Any, parent_id: str | None) -> str:
        """Bring an existing MLflow run up to date with a changed folder; return its run id."""
        run_id = run.info.run_id
        old = run.data.params
        changed = sorted(k for k, v in node.params.items() if k in old and old[k] != v)
        if changed:
            self.report.notes.append(f"{node.run_id}: MLflow keeps the params logged before; "
                                     f"not changed: {', '.join(changed)}")
        params = [self.Param(k, v) for k, v in node.params.items() if k not in old]
        have: dict[str, set[tuple[int, float]]] = {}
        for key in sorted({k for k, _, _ in node.metrics} & set(run.data.metrics)):
            have[key] = {(m.step, m.value) for m in self.client.get_metric_history(run_id, key)}
        new = [(k, v, s) for k, v, s in node.metrics if (s, v) not in have.get(k, ())]
        tags = self._tags(node, parent_id)
        self._log_batch(run_id, self._metrics(new, int(time.time() * 1000)), params,
                        [self.RunTag(k, v) for k, v in tags.items()])
        for key in run.data.tags:  # e.g. frnn.error of a failed job that a resume re-ran
            if key.startswith("frnn.") and key not in tags and key != TAG_FINGERPRINT:
                self.client.delete_tag(run_id, key)
        if parent_id is None and PARENT_TAG in run.data.tags:  # a link to a parent run that is gone
            self.client.delete_tag(run_id, PARENT_TAG)
        self._finish(run_id, node)
        self.report.updated.append(node.run_id)
        return run_id

    def sync(self, node: RunNode, existing: dict[str, Any], parent_id: str | None,
             callback: Callable[[int, int, str, str], None] | None, total: int) -> str:
        """Create, update or skip ``node`` and then its children; return its MLflow run id."""
        run = existing.get(node.run_id)
        if run is None:
            run_id, action = self.create(node, parent_id), "created"
        elif (run.data.tags.get(TAG_FINGERPRINT) == node.fingerprint
              and run.data.tags.get(PARENT_TAG) == (parent_id or None)
              and run.data.tags.get(TAG_ROOT_ID) == node.tags.get(TAG_ROOT_ID)):
            run_id, action = run.info.run_id, "unchanged"
            self.report.unchanged.append(node.run_id)
        else:
            run_id, action = self.update(node, run, parent_id), "updated"
        if callback is not None:
            r = self.report
            callback(len(r.created) + len(r.updated) + len(r.unchanged), total, node.run_id, action)
        for child in node.children:
            self.sync(child, existing, run_id, callback, total)
        return run_id


#: The tracking URIs frnn export takes, for messages.
EXPECTED_URIS = ("sqlite:///FILE (e.g. sqlite:///mlflow.db), http(s)://HOST:PORT of an MLflow server, or a database "
                 "URI (postgresql://, mysql://, mssql://)")


def _client(MlflowClient: Any, uri: str) -> Any:
    """``MlflowClient(uri)``, with a plain message for a URI scheme MLflow does not know.

    Raises
    ------
    BadInput
        If MLflow has no store for the URI's scheme, or ``uri`` is a path (MLflow's file
        store, in maintenance mode) rather than a URI.
    """
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

    if "://" not in uri or uri.startswith("file:"):
        # MLflow reads a bare path as its file store, which it keeps only in maintenance mode.
        path = uri.removeprefix("file://").removeprefix("file:")
        raise BadInput(f"--mlflow {uri!r}: a folder or file path, not a store URI; for an SQLite file give "
                       f"sqlite:///{path}, else {EXPECTED_URIS}")
    try:
        return MlflowClient(tracking_uri=uri)
    except UnsupportedModelRegistryStoreURIException:
        # MLflow words this as "model registry functionality is unavailable", which is true
        # but not the point: the tracking store cannot be reached through this URI either.
        raise BadInput(f"--mlflow {uri!r}: MLflow has no store for this kind of URI; expected {EXPECTED_URIS}") from None


def _experiment(client: Any, name: str, uri: str, db: Path | None) -> str:
    """The id of experiment ``name``, created if missing (for SQLite with its artifacts next to the database).

    Raises
    ------
    BadInput
        If the experiment exists but was deleted.
    """
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage != "active":
            raise BadInput(f"--experiment {name!r}: the experiment was deleted in {uri}; restore it "
                           f"(mlflow experiments restore --experiment-id {exp.experiment_id}) or choose another name")
        return exp.experiment_id
    location = None
    if db is not None:
        # MLflow would put artifacts in ./mlruns of whatever folder the export runs in; next to
        # the database they stay with it, whatever the current folder of a later `mlflow ui`.
        slug = re.sub(r"[^\w.-]", "_", name) or "experiment"
        location = (db.resolve().parent / "mlruns" / slug).as_uri()
    return client.create_experiment(name, artifact_location=location)


def export_folder(
    run_dir: str | Path,
    uri: str,
    experiment: str | None = None,
    callback: Callable[[int, int, str, str], None] | None = None,
) -> ExportReport:
    """Export a train, sweep or compare run folder into the MLflow tracking store at ``uri``.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    uri : str
        MLflow tracking URI, e.g. ``sqlite:///mlflow.db`` or ``http://host:5000``.
    experiment : str, optional
        MLflow experiment name; default ``frnn-<kind>``. Created if missing.
    callback : callable(done, total, frnn run id, action), optional
        Called after each run with the number of runs done so far, their total, and
        "created", "updated" or "unchanged" (for a progress display).

    Returns
    -------
    ExportReport

    Raises
    ------
    BadInput
        If MLflow is not installed, the folder is not a run folder, the URI is not one MLflow
        can use, the store's database driver is not installed, the store cannot be written, or
        the experiment was deleted. A password in ``uri`` is shown as ``***`` in messages and
        in the report.
    """
    shown = hide_password(uri)
    try:
        report = _export(run_dir, uri, experiment, callback)
    except BadInput as exc:
        if shown == uri:
            raise
        raise BadInput(_hide(str(exc), uri, shown)) from None
    report.uri = shown
    return report


def _hide(text: str, uri: str, shown: str) -> str:
    """``text`` with ``uri`` replaced by the shown form and any other copy of its passwords by ``***``."""
    text = text.replace(uri, shown)
    for secret in sorted(_secrets(uri), key=len, reverse=True):  # longest first: "p%40ss" before "p@ss"
        text = text.replace(secret, "***")
    return text


def _export(run_dir: str | Path, uri: str, experiment: str | None,
            callback: Callable[[int, int, str, str], None] | None) -> ExportReport:
    """:func:`export_folder` without the password hiding."""
    start = time.perf_counter()
    MlflowClient = import_mlflow()
    from mlflow.exceptions import MlflowException

    store_errors: tuple[type[BaseException], ...] = (MlflowException, OSError)
    try:  # the SQL stores' own errors (a file that is no database) are not MlflowExceptions
        from sqlalchemy.exc import SQLAlchemyError

        store_errors += (SQLAlchemyError,)
    except ImportError:  # mlflow-skinny has no SQL stores
        pass

    tree = read_run_folder(run_dir)
    if experiment is not None and not experiment.strip():
        raise BadInput("--experiment: expected a name, got an empty string")
    name = experiment or f"frnn-{tree.root.kind}"
    db = sqlite_path(uri)
    if db is not None:
        check_sqlite(uri, db)
    unreachable = unreachable_database(uri)  # before the driver is imported: needs none
    if unreachable is not None:
        raise unreachable
    try:
        with _quiet_retries():
            if database_dialect(uri) is not None:
                check_database(uri)
            client = _client(MlflowClient, uri)
        experiment_id = _experiment(client, name, uri, db)
        report = ExportReport(uri=uri, experiment_name=name, experiment_id=experiment_id, skipped=tree.skipped)
        exporter = _Exporter(client, experiment_id, report)
        existing = exporter.existing(tree.root.run_id)
        parent_id = exporter.adopt_parent(tree.root, existing.get(tree.root.run_id))
        report.root_run_id = exporter.sync(tree.root, existing, parent_id, callback, len(tree.root.walk()))
        for node in tree.root.walk():  # unfinished jobs are skipped; the folders above them are not
            why = unfinished_note(node)
            if why is not None:
                report.notes.append(f"{why}; exported with MLflow status {MLFLOW_STATUS.get(node.status, 'FINISHED')}")
    except ImportError as exc:  # SQLAlchemy imports a database's driver when MLflow opens the store
        error = missing_module(uri, exc)
        if error is None:
            raise
        raise error from None
    except store_errors as exc:
        raise BadInput(f"--mlflow {uri!r}: {_one_line(exc)}") from None
    report.seconds = time.perf_counter() - start
    return report


__all__ = [
    "QUIET_ENV",
    "ExportReport",
    "export_folder",
    "import_mlflow",
]
