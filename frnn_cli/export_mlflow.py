"""Export frnn run folders (train, sweep, compare) into an MLflow tracking store, after the fact.

frnn's run folders are the record of an experiment; this module copies what is in them into
MLflow (https://mlflow.org) so that runs can be filtered, compared and plotted in its web UI.
It only reads the folders: training never imports MLflow nor waits for it, and MLflow is an
optional extra (``pip install 'frnn[mlflow]'``), imported inside :func:`export_folder`.

How a folder maps to MLflow
---------------------------
* One MLflow *experiment* per export target: ``--experiment NAME``, by default ``frnn-<kind>``
  (``frnn-train``, ``frnn-sweep``, ``frnn-compare``), so that runs of one kind sit side by side.
* One MLflow *run* per frnn run folder. A sweep is a parent run with one child run per job
  (MLflow's ``mlflow.parentRunId`` tag); a compare is a parent run, each recipe an intermediate
  parent (a sweep run) and that recipe's jobs its children.
* Params: the resolved config (``config.yaml``; for a sweep ``sweep.yaml``, whose grid appears as
  ``sweep.<key>``; for a compare ``compare.yaml``), flattened to dotted keys, values as text.
* Metrics: every row of ``metrics.csv`` with its ``step`` (empty cells, the NaNs of step 0, are
  left out), plus single values from ``summary.json`` (``test_acc``, ``best_step``, ...). A sweep
  logs its per-T results as ``per_T/val_acc``, ``per_T/test_acc_mean``, ``per_T/learned`` and the
  chosen value of each tuned key (``per_T/lr``) with step = T, and ``max_T``; a compare logs
  ``max_T/<recipe>``.
* Tags (``frnn.*``): run id, kind, status, verdict, max_T, frnn version, git commit, command,
  the folder's path, recipe; MLflow's own ``mlflow.runName``, ``mlflow.source.git.commit`` and
  ``mlflow.note.content`` (the command line, shown as the run's description).
* Artifacts: ``plots/*.png``, ``summary.json``, ``config.yaml``, ``meta.json`` (and a sweep's
  ``sweep.yaml``/``summary.csv``, a compare's ``compare.yaml``/``compare.csv``). ``model.npz``
  and ``metrics.csv`` stay in the folder (the ``frnn.folder`` tag points there).

Idempotence
-----------
Each MLflow run carries the frnn run id in the tag ``frnn.run_id`` (the folder name; for a job
``<sweep id>/<job id>``, for a compare's recipe ``<compare id>/<recipe>``) and a fingerprint of
the folder's files in ``frnn.fingerprint``. An export looks the ids up first: a run whose
fingerprint is unchanged is skipped, a changed one (a sweep resumed since the last export) is
updated in place, a missing one (a new job) is created. The fingerprint is written last, so an
export that was interrupted half-way is completed by the next one.

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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from frnn_cli.errors import BadInput

#: Environment variables set (with ``os.environ.setdefault``) before MLflow is imported.
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow's own switch for usage telemetry
    "DO_NOT_TRACK": "true",  # the cross-tool convention, which MLflow also honours
    "MLFLOW_LOGGING_LEVEL": "WARNING",  # no "Creating initial MLflow database tables..." lines
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
}
INSTALL_HINT = "pip install 'frnn[mlflow]'"
KINDS = ("train", "sweep", "compare")

#: Tag names.
TAG_RUN_ID, TAG_ROOT_ID, TAG_FINGERPRINT = "frnn.run_id", "frnn.root_id", "frnn.fingerprint"
PARENT_TAG = "mlflow.parentRunId"
#: frnn status -> MLflow run status.
MLFLOW_STATUS = {"completed": "FINISHED", "diverged": "FINISHED", "failed": "FAILED",
                 "interrupted": "KILLED", "running": "RUNNING"}
#: Job statuses that make a finished job folder (a killed job's folder is skipped).
JOB_EXPORT_STATUSES = ("completed", "diverged", "failed")
#: Single values of a train run's summary.json logged as metrics: metric name -> path in the dict.
SUMMARY_METRICS = {
    "test_acc": ("test", "accuracy"), "test_loss": ("test", "loss"), "test_p_value": ("test", "p_value"),
    "better_than_chance": ("test", "better_than_chance"), "best_step": ("best_step",),
    "best_val_acc": ("best", "val_acc"), "best_val_loss": ("best", "val_loss"),
    "steps_done": ("steps_done",), "seconds": ("seconds",),
}
#: Single values of a sweep's summary.json logged as metrics.
SWEEP_METRICS = ("max_T", "max_T_contiguous", "max_T_gradient", "max_T_gradient_contiguous", "n_jobs", "n_failed",
                 "n_diverged", "seconds")
_BAD_KEY_CHARS = re.compile(r"[^\w\-. /:]")


@dataclass
class RunNode:
    """One frnn run folder as one MLflow run, read from disk (no MLflow involved).

    Attributes
    ----------
    run_id : str
        The frnn run id: the folder name, ``<sweep id>/<job id>`` for a job,
        ``<compare id>/<recipe>`` for a recipe of a compare.
    kind : str
        "train", "sweep" or "compare" (a job is a "train" run).
    folder : Path
        The run folder (absolute).
    name : str
        MLflow run name (folder name, job id or recipe name).
    status : str
        frnn status from meta.json ("completed", "diverged", "failed", "interrupted", "running").
    params : dict str -> str
    metrics : list of (key, value, step)
        value a finite or infinite float, never NaN; step an int.
    tags : dict str -> str
    artifacts : list of (file, artifact folder or None)
    start_ms, end_ms : int or None
        Start and end time in milliseconds since the epoch (meta.json), if recorded.
    fingerprint : str
        SHA-256 (hex, first 16 digits) of the files that define the run's content.
    children : list of RunNode
    """

    run_id: str
    kind: str
    folder: Path
    name: str
    status: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[tuple[Path, str | None]] = field(default_factory=list)
    start_ms: int | None = None
    end_ms: int | None = None
    fingerprint: str = ""
    children: list[RunNode] = field(default_factory=list)

    def walk(self) -> list[RunNode]:
        """This node and all its descendants, parents before children."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


@dataclass
class ReadResult:
    """What :func:`read_run_folder` found: the tree of runs and the folders it left out.

    Attributes
    ----------
    root : RunNode
    skipped : list of (frnn run id, reason)
        Job folders that are not exported (killed or incomplete), each with a one-line reason.
    """

    root: RunNode
    skipped: list[tuple[str, str]] = field(default_factory=list)


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
# Reading run folders


def _read_json(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or not valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def detect_kind(folder: Path) -> str:
    """The kind of an frnn run folder: meta.json's "kind", else guessed from the files present.

    Raises
    ------
    BadInput
        If ``folder`` is not a folder, is another kind of frnn run (vanishing), or has neither a
        meta.json with a kind nor compare.yaml, sweep.yaml or config.yaml with metrics.csv.
    """
    expected = "expected a train, sweep or compare run folder"
    if not folder.exists():
        raise BadInput(f"RUN_DIR: {str(folder)!r} does not exist ({expected})")
    if not folder.is_dir():
        raise BadInput(f"RUN_DIR: {str(folder)!r} is a file ({expected})")
    meta = _read_json(folder / "meta.json")
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if kind in KINDS:
        return kind
    if kind is None and (folder / "vanishing.csv").is_file():
        kind = "vanishing"  # frnn vanishing writes no "kind" into its meta.json
    if kind is not None:
        raise BadInput(f"RUN_DIR: {str(folder)!r} is a {kind} run; {expected}")
    for names, guess in ((("compare.yaml",), "compare"), (("sweep.yaml",), "sweep"), (("config.yaml", "metrics.csv"), "train")):
        if all((folder / name).is_file() for name in names):
            return guess
    raise BadInput(f"RUN_DIR: {str(folder)!r} is not an frnn run folder (no meta.json with a kind, no "
                   f"compare.yaml, sweep.yaml, or config.yaml with metrics.csv); {expected}")


def _fingerprint(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        try:
            h.update(p.read_bytes())
        except OSError:
            h.update(b"\0missing")
    return h.hexdigest()[:16]


def _ms(iso: Any) -> int | None:
    """Milliseconds since the epoch of an ISO 8601 time from meta.json (None if absent or bad)."""
    try:
        return int(datetime.fromisoformat(str(iso)).timestamp() * 1000) if iso else None
    except ValueError:
        return None


def _key(text: str) -> str:
    """A valid MLflow param/metric/tag key (letters, digits, ``_ - . / : space``; 250 chars)."""
    return _BAD_KEY_CHARS.sub("_", text)[:250]


def _text(value: Any) -> str:
    """A param value as text: YAML spelling for scalars (true, null, 0.001), JSON for lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def flatten_params(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested mapping as MLflow params: dotted keys, text values (at most 6000 characters).

    ``{"lr": 0.3, "sweep": {"T": [1, 2]}}`` -> ``{"lr": "0.3", "sweep.T": "[1, 2]"}``.
    """
    out: dict[str, str] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten_params(v, key + "."))
        else:
            out[_key(key)] = _text(v)[:6000]
    return out


def _number(value: Any) -> float | None:
    """A metric value: bools as 1/0, numbers as float; None for anything else and for NaN."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return None


def _dig(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _common_tags(node: RunNode, meta: dict[str, Any], root_id: str) -> dict[str, str]:
    tags = {
        TAG_RUN_ID: node.run_id,
        TAG_ROOT_ID: root_id,
        "frnn.kind": node.kind,
        "frnn.status": node.status,
        "frnn.folder": str(node.folder),
        "frnn.version": _text(meta.get("frnn", "unknown")),
        "frnn.git_commit": _text(meta.get("git_commit") or "none"),
        "mlflow.source.name": f"frnn {node.kind}",
        "mlflow.source.type": "LOCAL",
    }
    if meta.get("git_commit"):
        tags["mlflow.source.git.commit"] = str(meta["git_commit"]).removesuffix("-dirty")
    if meta.get("command"):
        tags["frnn.command"] = str(meta["command"])
        tags["mlflow.note.content"] = f"`{meta['command']}`"
    return tags


def _load_yaml_file(path: Path) -> dict[str, Any]:
    from frnn_cli.config import load_yaml

    return load_yaml(path) if path.is_file() else {}


def _plots(folder: Path) -> list[tuple[Path, str | None]]:
    return [(p, "plots") for p in sorted((folder / "plots").glob("*.png"))]


def _files(folder: Path, names: tuple[str, ...]) -> list[tuple[Path, str | None]]:
    return [(folder / n, None) for n in names if (folder / n).is_file()]


def read_train(folder: Path, run_id: str, root_id: str, name: str | None = None) -> RunNode:
    """A train run folder (or a sweep's job folder) as a :class:`RunNode`.

    Params come from config.yaml, metrics from every row of metrics.csv (step = the "step"
    column, empty cells left out) and from summary.json (:data:`SUMMARY_METRICS`, step 0).

    Parameters
    ----------
    folder : Path
        The run folder (config.yaml, meta.json, metrics.csv, summary.json, plots/).
    run_id : str
        Its frnn run id (tag ``frnn.run_id``).
    root_id : str
        The run id of the exported folder it belongs to (tag ``frnn.root_id``).
    name : str, optional
        MLflow run name; default the folder name.

    Raises
    ------
    BadInput
        If config.yaml or metrics.csv exists but cannot be read.
    """
    from frnn_cli.runs import read_metrics

    meta = _read_json(folder / "meta.json")
    meta = meta if isinstance(meta, dict) else {}
    summary = _read_json(folder / "summary.json")
    summary = summary if isinstance(summary, dict) else {}
    node = RunNode(run_id=run_id, kind="train", folder=folder.resolve(), name=name or folder.name,
                   status=str(meta.get("status") or summary.get("status") or "unknown"))
    node.params = flatten_params(_load_yaml_file(folder / "config.yaml"))
    if (folder / "metrics.csv").is_file():
        try:
            rows = read_metrics(folder / "metrics.csv")
        except (OSError, ValueError, KeyError) as exc:
            raise BadInput(f"{folder / 'metrics.csv'}: cannot read it ({exc})") from None
        for row in rows:
            step = row.pop("step")
            node.metrics += [(_key(k), v, step) for k, v in row.items() if v is not None and not math.isnan(v)]
    for metric, path in SUMMARY_METRICS.items():
        value = _number(_dig(summary, path))
        if value is not None:
            node.metrics.append((metric, value, 0))
    node.tags = _common_tags(node, meta, root_id)
    if summary.get("verdict"):
        node.tags["frnn.verdict"] = str(summary["verdict"])
    if meta.get("error"):
        node.tags["frnn.error"] = str(meta["error"])
    node.artifacts = _files(folder, ("config.yaml", "summary.json", "meta.json")) + _plots(folder)
    node.start_ms, node.end_ms = _ms(meta.get("start_time")), _ms(meta.get("end_time"))
    node.fingerprint = _fingerprint(*(folder / n for n in ("meta.json", "config.yaml", "summary.json", "metrics.csv")))
    return node


def _job_problem(folder: Path) -> str | None:
    """Why a sweep's job folder is not exported (None: it is a finished job)."""
    from frnn_cli.runs import TRAIN_FILES

    meta = _read_json(folder / "meta.json")
    if not isinstance(meta, dict):
        return "no readable meta.json (the job never started or was killed at once)"
    status = meta.get("status")
    if status not in JOB_EXPORT_STATUSES:
        return f"status {status!r}: the job did not finish (killed or still running)"
    if status != "failed":
        missing = [n for n in TRAIN_FILES if not (folder / n).is_file()]
        if missing:
            return f"incomplete: no {', '.join(missing)}"
    return None


def _per_axis_metrics(summary: dict[str, Any]) -> list[tuple[str, float, int]]:
    """A sweep's per-axis-value results as metrics with step = the axis value.

    The step is the axis value when every value is an integer (T always is), else the row's
    index (MLflow steps are integers).
    """
    axis = str(summary.get("axis", "T"))
    rows = [r for r in summary.get("rows") or [] if isinstance(r, dict)]
    values = [r.get(axis) for r in rows]
    integer = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    out = []
    for i, row in enumerate(rows):
        step = row[axis] if integer else i
        for name in ("val_acc", "test_acc_mean", "learned", *(summary.get("tuned") or [])):
            value = _number(row.get(name))
            if value is not None:
                out.append((_key(f"per_{axis}/{name}"), value, step))
        btc = row.get("better_than_chance")
        if isinstance(btc, list):
            out.append((_key(f"per_{axis}/seeds_better_than_chance"), float(sum(bool(b) for b in btc)), step))
    return out


def read_sweep(folder: Path, run_id: str, root_id: str, name: str | None = None,
               skipped: list[tuple[str, str]] | None = None) -> RunNode:
    """A sweep folder as a parent :class:`RunNode` with one child per finished job folder.

    Job folders that did not finish (see :func:`_job_problem`) or cannot be read are appended
    to ``skipped`` with a reason instead. A sweep without summary.json (interrupted or still
    running) gets no metrics; its jobs are exported all the same.

    Parameters
    ----------
    folder : Path
        The sweep folder (sweep.yaml, meta.json, summary.json, plots/, jobs/<job id>/).
    run_id, root_id, name
        As for :func:`read_train`; the jobs get the ids ``<run_id>/<job id>``.
    skipped : list, optional
        Receives (frnn run id, reason) for every job folder left out.

    Raises
    ------
    BadInput
        If sweep.yaml exists but is not valid YAML.
    """
    skipped = [] if skipped is None else skipped
    meta = _read_json(folder / "meta.json")
    meta = meta if isinstance(meta, dict) else {}
    summary = _read_json(folder / "summary.json")
    summary = summary if isinstance(summary, dict) else {}
    node = RunNode(run_id=run_id, kind="sweep", folder=folder.resolve(), name=name or folder.name,
                   status=str(meta.get("status") or "unknown"))
    node.params = flatten_params(_load_yaml_file(folder / "sweep.yaml"))
    node.metrics = [(k, v, 0) for k in SWEEP_METRICS if (v := _number(summary.get(k))) is not None]
    node.metrics += _per_axis_metrics(summary)
    node.tags = _common_tags(node, meta, root_id)
    if summary:
        max_t = summary.get("max_T")
        node.tags["frnn.max_T"] = "none" if max_t is None else str(max_t)
        g = summary.get("max_T_gradient")
        node.tags["frnn.max_T_gradient"] = "none" if g is None else str(g)
        node.tags["frnn.verdict"] = (
            f"max {summary.get('axis', 'T')} better than chance: {'none' if max_t is None else max_t} "
            f"(every value up to {summary.get('max_T_contiguous')} learned); by gradient descent in its stable "
            f"regime: {'none' if g is None else g}")
    else:
        node.tags["frnn.verdict"] = "no summary.json (the sweep has not finished)"
    node.artifacts = _files(folder, ("sweep.yaml", "summary.json", "summary.csv", "meta.json")) + _plots(folder)
    node.start_ms, node.end_ms = _ms(meta.get("start_time")), _ms(meta.get("end_time"))
    node.fingerprint = _fingerprint(*(folder / n for n in ("meta.json", "sweep.yaml", "summary.json")))
    jobs_dir = folder / "jobs"
    for job_dir in sorted(p for p in jobs_dir.iterdir() if p.is_dir()) if jobs_dir.is_dir() else []:
        job_id = f"{run_id}/{job_dir.name}"
        problem = _job_problem(job_dir)
        if problem is None:
            try:
                job = read_train(job_dir, job_id, root_id, name=job_dir.name)
            except BadInput as exc:
                problem = str(exc)
        if problem is not None:
            skipped.append((job_id, problem))
            continue
        job.tags.update({"frnn.job_id": job_dir.name, "frnn.sweep_id": run_id})
        node.children.append(job)
    return node


def _recipe_results(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per recipe name, its entry of a compare's summary.json (accepts a mapping or a list)."""
    recipes = summary.get("recipes", summary)
    if isinstance(recipes, list):
        return {str(r.get("recipe", r.get("name"))): r for r in recipes if isinstance(r, dict)}
    if isinstance(recipes, dict):
        return {str(k): v for k, v in recipes.items() if isinstance(v, dict)}
    return {}


def read_compare(folder: Path, run_id: str, skipped: list[tuple[str, str]]) -> RunNode:
    """A compare folder as a parent :class:`RunNode`; each ``recipes/<name>/`` a sweep node under it.

    Every run below the compare is tagged ``frnn.recipe``. The compare's metrics are
    ``max_T/<recipe>`` and ``max_T_contiguous/<recipe>`` from its summary.json, or from the
    recipe's own sweep summary.json where the compare's does not give them.

    Parameters
    ----------
    folder : Path
        The compare folder (compare.yaml, meta.json, summary.json, compare.csv, plots/,
        recipes/<recipe>/ each a sweep folder).
    run_id : str
        Its frnn run id; recipes get ``<run_id>/<recipe>``, their jobs ``<run_id>/<recipe>/<job id>``.
    skipped : list
        Receives (frnn run id, reason) for every job folder left out.

    Raises
    ------
    BadInput
        If compare.yaml or a recipe's sweep.yaml exists but is not valid YAML.
    """
    meta = _read_json(folder / "meta.json")
    meta = meta if isinstance(meta, dict) else {}
    summary = _read_json(folder / "summary.json")
    results = _recipe_results(summary) if isinstance(summary, dict) else {}
    node = RunNode(run_id=run_id, kind="compare", folder=folder.resolve(), name=folder.name,
                   status=str(meta.get("status") or "unknown"))
    node.params = flatten_params(_load_yaml_file(folder / "compare.yaml"))
    node.tags = _common_tags(node, meta, run_id)
    recipes_dir = folder / "recipes"
    names = sorted(p.name for p in recipes_dir.iterdir() if p.is_dir()) if recipes_dir.is_dir() else []
    node.tags["frnn.recipes"] = ",".join(names)
    max_ts = []
    for recipe in names:
        sweep = read_sweep(recipes_dir / recipe, f"{run_id}/{recipe}", run_id, name=recipe, skipped=skipped)
        for run in sweep.walk():
            run.tags["frnn.recipe"] = recipe
        node.children.append(sweep)
        own = _read_json(recipes_dir / recipe / "summary.json")
        entry = {**(own if isinstance(own, dict) else {}), **results.get(recipe, {})}
        for key in ("max_T", "max_T_contiguous", "max_T_gradient"):
            value = _number(entry.get(key))
            if value is not None:
                node.metrics.append((_key(f"{key}/{recipe}"), value, 0))
        max_ts.append(f"{recipe}={'none' if entry.get('max_T') is None else entry.get('max_T')}")
    node.tags["frnn.max_T"] = ", ".join(max_ts) or "none"
    node.tags["frnn.verdict"] = f"max T better than chance per recipe: {node.tags['frnn.max_T']}"
    node.artifacts = _files(folder, ("compare.yaml", "summary.json", "compare.csv", "meta.json")) + _plots(folder)
    node.start_ms, node.end_ms = _ms(meta.get("start_time")), _ms(meta.get("end_time"))
    node.fingerprint = _fingerprint(*(folder / n for n in ("meta.json", "compare.yaml", "summary.json", "compare.csv")))
    return node


def frnn_run_id(folder: Path) -> str:
    """The frnn run id of a folder: its name, prefixed by its sweep's or compare's when it is a
    job (``<sweep>/jobs/<job>``) or a recipe (``<compare>/recipes/<recipe>``) of one.

    A job or recipe folder exported on its own thus gets the same id it has inside its parent
    (a job id such as ``T1_r0`` alone would repeat across sweeps).
    """
    folder = folder.resolve()
    parts = [folder.name]
    while folder.parent.name in ("jobs", "recipes") and (folder.parent.parent / "meta.json").is_file():
        folder = folder.parent.parent
        parts.insert(0, folder.name)
    return "/".join(parts)


def read_run_folder(folder: str | Path) -> ReadResult:
    """Read a train, sweep or compare folder into a tree of :class:`RunNode` (no MLflow needed).

    Raises
    ------
    BadInput
        If the folder is not a train, sweep or compare run folder, or one of its top-level
        files cannot be read.
    """
    folder = Path(folder)
    kind = detect_kind(folder)
    run_id = frnn_run_id(folder)
    skipped: list[tuple[str, str]] = []
    if kind == "train":
        root = read_train(folder, run_id, run_id)
    elif kind == "sweep":
        root = read_sweep(folder, run_id, run_id, skipped=skipped)
    else:
        root = read_compare(folder, run_id, skipped)
    return ReadResult(root, skipped)


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


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the current folder, or absolute
    with four slashes), or None for any other URI.

    Raises
    ------
    BadInput
        For an in-memory SQLite URI (``sqlite://`` or ``:memory:``), which keeps nothing.
    """
    if not uri.startswith("sqlite:"):
        return None
    path = uri.removeprefix("sqlite:").split("?", 1)[0]
    if not path.startswith("///") or path[3:] in ("", ":memory:"):
        raise BadInput(f"--mlflow {uri!r}: an in-memory SQLite store keeps nothing; "
                       "expected sqlite:///FILE (relative) or sqlite:////ABS/PATH")
    return Path(path[3:])


def check_sqlite(uri: str, path: Path) -> None:
    """Make sure the SQLite file can be opened for writing before MLflow touches it.

    MLflow retries a failing SQLite connection ten times with growing pauses (about 100 s)
    before it gives up; this check fails in milliseconds instead. It creates the missing
    parent folders, as MLflow would, and an empty database file if there is none.

    Raises
    ------
    BadInput
        If the path is a folder, a parent cannot be created, or the file is not an SQLite
        database or is not writable.
    """
    if path.is_dir():
        raise BadInput(f"--mlflow {uri!r}: {str(path)!r} is a folder; expected an SQLite database file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=10)
        try:
            con.execute("PRAGMA schema_version").fetchone()  # fails on a file that is no database
            con.execute("BEGIN IMMEDIATE")  # takes the write lock: fails on a read-only file
            con.rollback()
        finally:
            con.close()
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BadInput(f"--mlflow {uri!r}: cannot write the SQLite database {str(path)!r}: {reason}") from None


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line, without MLflow's documentation links."""
    text = " ".join(str(exc).split())
    text = re.split(r"\s*(?:See|Background on this error at:?) \(?https?://", text)[0]
    return text[:400] or type(exc).__name__


class _Exporter:
    """Writes a tree of :class:`RunNode` into one MLflow experiment (see the module docstring)."""

    def __init__(self, client: Any, experiment_id: str, report: ExportReport) -> None:
        from mlflow.entities import Metric, Param, RunTag

        self.client, self.experiment_id, self.report = client, experiment_id, report
        self.Metric, self.Param, self.RunTag = Metric, Param, RunTag

    def existing(self, root_id: str) -> dict[str, Any]:
        """Active MLflow runs of this experiment that hold runs of the folder ``root_id``, by frnn run id."""
        found: dict[str, Any] = {}
        token = None
        if "'" in root_id:
            raise BadInput(f"RUN_DIR: the folder name {root_id!r} contains a quote, which an MLflow search cannot match")
        query = f"tags.`{TAG_ROOT_ID}` = '{root_id}'"
        while True:
            page = self.client.search_runs([self.experiment_id], query, max_results=10_000, page_token=token)
            for run in page:
                found.setdefault(run.data.tags.get(TAG_RUN_ID, ""), run)
            token = page.token
            if not token:
                return found

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
              and run.data.tags.get(PARENT_TAG) == (parent_id or None)):
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


def _client(MlflowClient: Any, uri: str) -> Any:
    """``MlflowClient(uri)``, with a plain message for a URI scheme MLflow does not know.

    Raises
    ------
    BadInput
        If MLflow has no store for the URI's scheme.
    """
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

    try:
        return MlflowClient(tracking_uri=uri)
    except UnsupportedModelRegistryStoreURIException:
        # MLflow words this as "model registry functionality is unavailable", which is true
        # but not the point: the tracking store cannot be reached through this URI either.
        raise BadInput(f"--mlflow {uri!r}: MLflow has no store for this kind of URI; expected sqlite:///FILE "
                       "(e.g. sqlite:///mlflow.db), http(s)://HOST:PORT of an MLflow server, or a database URI "
                       "(postgresql://, mysql://, mssql://)") from None


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
        can use, the store cannot be written, or the experiment was deleted.
    """
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
    try:
        client = _client(MlflowClient, uri)
        experiment_id = _experiment(client, name, uri, db)
        report = ExportReport(uri=uri, experiment_name=name, experiment_id=experiment_id, skipped=tree.skipped)
        exporter = _Exporter(client, experiment_id, report)
        report.root_run_id = exporter.sync(tree.root, exporter.existing(tree.root.run_id), None, callback,
                                          len(tree.root.walk()))
    except store_errors as exc:
        raise BadInput(f"--mlflow {uri!r}: {_one_line(exc)}") from None
    report.seconds = time.perf_counter() - start
    return report


__all__ = [
    "INSTALL_HINT",
    "QUIET_ENV",
    "ExportReport",
    "ReadResult",
    "RunNode",
    "check_sqlite",
    "detect_kind",
    "export_folder",
    "flatten_params",
    "frnn_run_id",
    "import_mlflow",
    "read_run_folder",
    "sqlite_path",
]
