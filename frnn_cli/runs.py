"""Files on disk: atomic writers, run folders and the metadata every run records.

Every file frnn writes goes through :func:`atomic_write_bytes`: the data goes to a
temporary file in the same folder and is renamed over the target (``os.replace`` is atomic
on POSIX), so an interrupted command (Ctrl-C, a crash, a kill) leaves either the old file or
the new one, never half of one. There is no fsync: a sweep writes thousands of small files,
and durability across a power cut is not what a re-runnable experiment needs.
"""

from __future__ import annotations

import io
import os
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, then rename).

    The file gets the permissions a plain ``open(path, "w")`` would give (0666 minus the
    umask), not the 0600 of ``mkstemp``.

    Raises
    ------
    OSError
        If the folder does not exist or is not writable (the target is left untouched).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text to ``path`` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """Save arrays to an ``.npz`` file atomically (``np.savez`` into memory, then rename)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_write_json(path: str | Path, obj: object) -> Path:
    """Write ``obj`` as indented JSON atomically; see :func:`atomic_write_bytes`."""
    import json

    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def create_run_dir(runs_dir: str | Path, kind: str, now: datetime | None = None) -> Path:
    """Create a new, empty run folder ``<runs_dir>/<YYYY-MM-DD_HH-MM-SS>-<kind>-<id>``.

    The id is 6 random hex digits; the folder is created with ``mkdir(exist_ok=False)``
    and a new id is drawn on a collision, so two runs started in the same second (even in
    two processes) never share a folder. ``runs_dir`` is created if missing.

    Parameters
    ----------
    runs_dir : str or Path
        Parent folder (``runs/`` by default in the CLI).
    kind : str
        "train", "sweep", "vanishing", ...
    now : datetime, optional
        Timestamp to use (local time); default: the current time.

    Returns
    -------
    Path of the new folder.

    Raises
    ------
    OSError
        If ``runs_dir`` cannot be created or written.
    """
    import secrets

    stamp = (now or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    parent = Path(runs_dir)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = parent / f"{stamp}-{kind}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The git commit of frnn's own code (with "-dirty" if its tree has changes), or None.

    ``cwd`` defaults to the folder of this package, so the commit is that of the code that
    ran, not of whatever repository the user happens to be in. None when frnn is not
    installed from a git checkout (a plain ``pip install .``) or git is missing.
    """
    if cwd is None:
        cwd = Path(__file__).resolve().parent
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


def finish_meta(run_dir: str | Path, meta: dict, status: str, **extra: object) -> dict:
    """Record the end of a run: set ``status``, ``end_time`` and ``extra`` in ``meta`` and
    rewrite ``run_dir/meta.json`` atomically.

    Parameters
    ----------
    run_dir : folder holding meta.json
    meta : dict from :func:`base_meta` (updated in place and returned)
    status : "completed", "diverged", "failed" or "interrupted"

    Raises
    ------
    OSError
        If meta.json cannot be written.
    """
    meta.update(status=status, end_time=datetime.now().astimezone().isoformat(timespec="seconds"), **extra)
    atomic_write_json(Path(run_dir) / "meta.json", meta)
    return meta


def base_meta(seed: int | None, argv: list[str] | None = None) -> dict:
    """The fields every run's ``meta.json`` starts with.

    Returns
    -------
    dict with "command" (the command line), "frnn", "python", "numpy" (versions),
    "git_commit" (or None), "seed", "start_time" (ISO 8601, local time with offset),
    "end_time" (None until the run ends) and "status" ("running").
    """
    import platform
    import sys

    from frnn_cli import __version__

    argv = list(sys.argv) if argv is None else argv
    return {
        "command": " ".join(["frnn", *argv[1:]]) if argv and argv[0].endswith("frnn") else " ".join(argv),
        "frnn": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "git_commit": git_commit(),
        "seed": seed,
        "start_time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "end_time": None,
        "status": "running",
    }


# ---------------------------------------------------------------------------------------
# Train runs: the files of one ``frnn train`` job

#: Files a finished train run folder holds (plots/ unless plots=False).
TRAIN_FILES = ("config.yaml", "meta.json", "metrics.csv", "summary.json", "model.npz")
TRAIN_PLOTS = ("plots/learning_curves.png", "plots/gradient_norms.png")


def metrics_csv_text(history: list) -> str:
    """``metrics.csv`` content: a header of :data:`frnn_cli.train.METRICS_COLUMNS`, one row per record.

    Numbers are written with ``repr`` (shortest exact round trip); a NaN (no training loss
    or gradient at step 0) is an empty field.

    Parameters
    ----------
    history : list of EvalRecord or of mappings with those columns
    """
    from frnn_cli.train import METRICS_COLUMNS

    lines = [",".join(METRICS_COLUMNS)]
    for rec in history:
        row = rec if isinstance(rec, dict) else rec.as_dict()
        cells = []
        for col in METRICS_COLUMNS:
            v = row[col]
            cells.append("" if isinstance(v, float) and v != v else repr(v))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Read a ``metrics.csv`` back: one dict per row, "step" as int, the rest float (NaN when empty).

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If a field is not a number.
    """
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [
        {k: (int(v) if k == "step" else (float(v) if v != "" else float("nan"))) for k, v in row.items()}
        for row in rows
    ]


def nan_to_none(obj: object) -> object:
    """JSON has no NaN: replace float NaN by None, recursively."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nan_to_none(v) for v in obj]
    return obj


def trained_past_init(summary: dict) -> bool:
    """Whether a run's verdict is about a *trained* network.

    True when the run completed (did not diverge) and its best checkpoint comes after at least
    one update. A diverged run, or one whose best checkpoint is the initial weights (step 0),
    has learned nothing, whatever its test accuracy: an orthogonal initialisation can sort
    the two classes by chance. ``frnn sweep`` counts a seed as beating chance only when this
    holds, and ``frnn train`` says so when it does not.

    Parameters
    ----------
    summary : dict, the content of a run's ``summary.json``
    """
    best = summary.get("best") or {}
    return summary.get("status") == "completed" and (best.get("step") or 0) > 0


def train_summary(result, cfg) -> dict:
    """The JSON-ready summary of a :class:`frnn_cli.train.TrainResult` (``summary.json``).

    Returns
    -------
    dict with
        "status" ("completed"/"diverged"), "stop_reason", "steps_done", "steps" (configured),
        "best_step", "best" and "final" (EvalRecord fields of the best checkpoint and of the
        last evaluation), "test" (n, correct, accuracy, loss, p_value, alpha,
        better_than_chance, verdict), "verdict" (the same sentence), "divergence" (None or
        {"step", "reason"}), "seconds" (wall time of training and testing), "T", "lr",
        "optimizer", "seed" (for quick reading; config.yaml has the rest) and "model"
        (what model.npz holds). NaN values are None.
    """
    from dataclasses import asdict

    return nan_to_none({
        "status": result.status,
        "stop_reason": result.stop_reason,
        "steps_done": result.steps_done,
        "steps": cfg.steps,
        "best_step": result.best_step,
        "best": result.best.as_dict(),
        "final": result.history[-1].as_dict(),
        "test": result.test.as_dict(),
        "verdict": result.test.verdict,
        "divergence": asdict(result.divergence) if result.divergence else None,
        "seconds": round(result.seconds, 4),
        "T": cfg.T,
        "lr": cfg.lr,
        "optimizer": cfg.optimizer,
        "seed": cfg.seed,
        "model": f"model.npz: W, R, V of the best validation checkpoint (step {result.best_step})",
    })


def run_train_job(cfg, run_dir: str | Path, plots: bool = True, argv: list[str] | None = None,
                  callback=None) -> dict:
    """Train one run into an existing (empty) folder and write every file of a train run.

    Writes, each atomically: ``config.yaml`` (the resolved config) and ``meta.json``
    (status "running") before training; after it ``metrics.csv``, ``model.npz`` (W, R, V
    of the best checkpoint), ``summary.json``, ``plots/learning_curves.png`` and
    ``plots/gradient_norms.png`` (unless ``plots=False``), and finally ``meta.json`` again
    with status "completed" or "diverged" and the end time. Module-level and picklable,
    so a process pool can run it.

    On KeyboardInterrupt the evaluations so far go to ``metrics.csv``, ``meta.json`` gets
    status "interrupted", and the interrupt is re-raised. On any other exception
    ``meta.json`` gets status "failed" and "error" (type and message), and it is re-raised.

    Parameters
    ----------
    cfg : frnn_cli.config.Config
    run_dir : str or Path
        The run's folder, e.g. from :func:`create_run_dir` (created if missing).
    plots : bool, default True
        Draw the two PNGs (about 0.3 s); a sweep may skip them.
    argv : list of str, optional
        Command line to record in meta.json; default ``sys.argv``.
    callback : callable, optional
        Called with each :class:`frnn_cli.train.EvalRecord` (e.g. a progress bar).

    Returns
    -------
    dict, the content of summary.json (see :func:`train_summary`).

    Raises
    ------
    KeyboardInterrupt
        Re-raised after recording status "interrupted".
    OSError
        If a file cannot be written (status "failed" when meta.json still can be).
    """
    from frnn_cli.config import dump_yaml
    from frnn_cli.train import describe, train

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_yaml(cfg))
    meta = {"kind": "train", **base_meta(cfg.seed, argv)}
    atomic_write_json(run_dir / "meta.json", meta)
    history: list = []

    def on_eval(rec) -> None:
        history.append(rec)
        if callback is not None:
            callback(rec)

    def finish(status: str, **extra: object) -> None:
        finish_meta(run_dir, meta, status, **extra)

    try:
        result = train(cfg, callback=on_eval)
        summary = train_summary(result, cfg)
        atomic_write_text(run_dir / "metrics.csv", metrics_csv_text(result.history))
        atomic_save_npz(run_dir / "model.npz", **result.params)
        atomic_write_json(run_dir / "summary.json", summary)
        if plots:
            from frnn_cli.plots import train as plotting

            (run_dir / "plots").mkdir(exist_ok=True)
            rows = [r.as_dict() for r in result.history]
            title = describe(cfg)
            plotting.plot_learning_curves(rows, run_dir / "plots" / "learning_curves.png", title,
                                          best_step=result.best_step, test_accuracy=result.test.accuracy,
                                          verdict=result.test.verdict)
            plotting.plot_gradient_norms(rows, run_dir / "plots" / "gradient_norms.png", title, cfg.T)
        finish(result.status)
        return summary
    except KeyboardInterrupt:
        try:
            atomic_write_text(run_dir / "metrics.csv", metrics_csv_text(history))
        finally:
            finish("interrupted", last_evaluated_step=history[-1].step if history else None)
        raise
    except BaseException as exc:
        finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise
