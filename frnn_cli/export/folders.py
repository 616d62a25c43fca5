"""Read frnn run folders (train, sweep, compare) into a tree of runs, ready for a tracker.

Nothing here imports MLflow: :func:`read_run_folder` turns a folder into :class:`RunNode` objects
(params, metrics, tags, artifacts, a fingerprint), and :mod:`frnn_cli.export.mlflow_store` writes
them into a store.

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
  left out), plus single values from ``summary.json`` (``test_acc``, ``best_step``, ...; for
  random guessing ``trials`` and ``trial``, the networks drawn and the index of the tested
  one). A sweep logs its per-T results as ``per_T/val_acc``, ``per_T/test_acc_mean``,
  ``per_T/learned`` and the chosen value of each tuned key (``per_T/lr``) with step = T, and
  ``max_T``; a compare logs ``max_T/<recipe>``.
* Tags (``frnn.*``): run id, kind, status, verdict, max_T, frnn version, git commit, command,
  the folder's path, recipe; MLflow's own ``mlflow.runName``, ``mlflow.source.git.commit`` and
  ``mlflow.note.content`` (the command line, shown as the run's description).
* Artifacts: ``plots/*.png``, ``summary.json``, ``config.yaml``, ``meta.json`` (and a sweep's
  ``sweep.yaml``/``summary.csv``, a compare's ``compare.yaml``/``compare.csv``). ``model.npz``
  and ``metrics.csv`` stay in the folder (the ``frnn.folder`` tag points there).

The fingerprint of each node is a hash of the folder's files; the exporter uses it to tell an
unchanged run from one that changed since the last export (see mlflow_store).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from frnn_cli.errors import BadInput

KINDS = ("train", "sweep", "compare")

#: Tag names.
TAG_RUN_ID, TAG_ROOT_ID, TAG_FINGERPRINT = "frnn.run_id", "frnn.root_id", "frnn.fingerprint"
PARENT_TAG = "mlflow.parentRunId"
#: Job statuses that make a finished job folder (a killed job's folder is skipped).
JOB_EXPORT_STATUSES = ("completed", "diverged", "failed")
#: Single values of a train run's summary.json logged as metrics: metric name -> path in the dict.
SUMMARY_METRICS = {
    "test_acc": ("test", "accuracy"), "test_loss": ("test", "loss"), "test_p_value": ("test", "p_value"),
    "better_than_chance": ("test", "better_than_chance"), "best_step": ("best_step",),
    "best_val_acc": ("best", "val_acc"), "best_val_loss": ("best", "val_loss"),
    "steps_done": ("steps_done",), "seconds": ("seconds",),
    # Random weight guessing (optimizer=guess): the networks drawn, and the index k of the one tested.
    "trials": ("trials",), "trial": ("trial",),
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


def _chain(folder: Path) -> list[tuple[str, str | None]]:
    """The folder and the sweep or compare folders it sits in, outermost first, each as
    (name, the subfolder it sits in: "jobs", "recipes", or None for the outermost).

    ``C/recipes/rnn/jobs/T1_r0`` -> ``[("C", None), ("rnn", "recipes"), ("T1_r0", "jobs")]``.
    """
    folder = folder.resolve()
    chain: list[tuple[str, str | None]] = [(folder.name, None)]
    while folder.parent.name in ("jobs", "recipes") and (folder.parent.parent / "meta.json").is_file():
        chain[0] = (chain[0][0], folder.parent.name)
        folder = folder.parent.parent
        chain.insert(0, (folder.name, None))
    return chain


def frnn_run_id(folder: Path) -> str:
    """The frnn run id of a folder: its name, prefixed by its sweep's or compare's when it is a
    job (``<sweep>/jobs/<job>``) or a recipe (``<compare>/recipes/<recipe>``) of one.

    A job or recipe folder exported on its own thus gets the same id it has inside its parent
    (a job id such as ``T1_r0`` alone would repeat across sweeps).
    """
    return "/".join(name for name, _ in _chain(folder))


def _placement_tags(root: RunNode) -> None:
    """Give a job or recipe folder exported on its own the tags it gets inside its sweep or
    compare (``frnn.job_id``, ``frnn.sweep_id``, ``frnn.recipe``), so that its MLflow run carries
    the same tags whichever folder was exported last."""
    chain = _chain(root.folder)
    if len(chain) < 2:
        return
    if chain[-1][1] == "jobs":
        root.tags.update({"frnn.job_id": chain[-1][0], "frnn.sweep_id": "/".join(n for n, _ in chain[:-1])})
    recipe = next((name for name, where in chain if where == "recipes"), None)
    if recipe is not None:
        for node in root.walk():
            node.tags["frnn.recipe"] = recipe


def unfinished_note(node: RunNode) -> str | None:
    """Why a run that is exported did not finish, on one line; None if it finished.

    A sweep's jobs that did not finish are left out (:func:`_job_problem`); the folder that is
    exported, and a compare's recipes, are exported whatever their status, since their finished
    jobs are worth seeing. A train run killed by SIGKILL, a power cut or an out-of-memory kill
    never records its end: its meta.json still says "running" and it has no summary.json.
    """
    if node.status in JOB_EXPORT_STATUSES:
        return None
    why = {"running": "killed, or still running", "interrupted": "stopped by Ctrl-C or a signal"}.get(
        node.status, "meta.json records no end")
    missing = "" if (node.folder / "summary.json").is_file() else ", no summary.json"
    return f"{node.run_id}: the {node.kind} run did not finish (status {node.status!r} in meta.json{missing}: {why})"


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
    _placement_tags(root)
    return ReadResult(root, skipped)


__all__ = [
    "JOB_EXPORT_STATUSES",
    "KINDS",
    "PARENT_TAG",
    "TAG_FINGERPRINT",
    "TAG_ROOT_ID",
    "TAG_RUN_ID",
    "ReadResult",
    "RunNode",
    "detect_kind",
    "flatten_params",
    "frnn_run_id",
    "read_run_folder",
    "unfinished_note",
]
