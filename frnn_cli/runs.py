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
    """The git commit of frnn's own code (with "-dirty" if its tree had changes), or None.

    From a source checkout (an editable install, or tests run in the repository) the commit
    is read live with ``git`` in frnn's own folder, so it is that of the code that ran, not of
    whatever repository the user happens to be in. An installed copy (``pip install .``, which
    copies no .git) reports the commit it was built from, which setuptools-scm wrote into
    ``frnn_cli/_version.py`` (an abbreviated hash). None when neither is known (git missing,
    or a build without git).

    Parameters
    ----------
    cwd : str or Path, optional
        Folder to ask git in; default: frnn's package folder.
    """
    package = Path(__file__).resolve().parent
    if cwd is None and not (package.parent / "pyproject.toml").is_file():
        return _built_commit()
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd or package, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd or package, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return _built_commit() if cwd is None else None
    return head + ("-dirty" if dirty else "") if head else None


def _built_commit() -> str | None:
    """The commit written at build time by setuptools-scm ("34e326e", "34e326e-dirty"), or None."""
    try:
        from frnn_cli import _version
    except ImportError:
        return None
    node = str(getattr(_version, "__commit__", "") or "")
    if not node or node == "None":
        return None
    node = node[1:] if node.startswith("g") else node  # git describe's "g" prefix
    return node + ("-dirty" if getattr(_version, "__dirty__", False) else "")


def carry_over_meta(run_dir: str | Path, meta: dict) -> dict:
    """Prepare the meta of a resumed sweep or compare: keep the stored original command and
    start time, and append this resumption (its command, start time, executor) to the stored
    ``"resumed"`` list.

    Parameters
    ----------
    run_dir : folder holding the meta.json written by the first run
    meta : dict from :func:`base_meta` for this invocation (updated in place and returned)

    An unreadable stored meta.json is replaced: this invocation becomes the record.
    """
    import json

    mine = {k: meta.get(k) for k in ("command", "start_time", "executor")}
    try:
        stored = json.loads((Path(run_dir) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = None
    if not isinstance(stored, dict):
        meta["resumed"] = [mine]
        return meta
    earlier = stored.get("resumed")
    meta["resumed"] = [*(earlier if isinstance(earlier, list) else []), mine]
    meta.update({k: stored[k] for k in ("command", "start_time") if k in stored})
    return meta


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


def read_status(run_dir: str | Path) -> str | None:
    """The ``status`` recorded in ``run_dir/meta.json`` ("running", "completed", ...), or None.

    None when meta.json is missing or unreadable. A run killed hard (SIGKILL, a power cut)
    never records its end, so "running" in a folder no process writes to means it died.
    """
    import json

    try:
        status = json.loads((Path(run_dir) / "meta.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return status if isinstance(status, str) else None


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


def _metrics_row(rec) -> str:
    """One ``metrics.csv`` line (no newline) for an EvalRecord or a mapping with its columns."""
    from frnn_cli.train import METRICS_COLUMNS

    row = rec if isinstance(rec, dict) else rec.as_dict()
    cells = []
    for col in METRICS_COLUMNS:
        v = row[col]
        cells.append("" if isinstance(v, float) and v != v else repr(v))
    return ",".join(cells)


def metrics_csv_text(history: list) -> str:
    """``metrics.csv`` content: a header of :data:`frnn_cli.train.METRICS_COLUMNS`, one row per record.

    Numbers are written with ``repr`` (shortest exact round trip); a NaN (no training loss
    or gradient at step 0) is an empty field.

    Parameters
    ----------
    history : list of EvalRecord or of mappings with those columns
    """
    from frnn_cli.train import METRICS_COLUMNS

    return "\n".join([",".join(METRICS_COLUMNS), *(_metrics_row(r) for r in history)]) + "\n"


class MetricsLog:
    """``metrics.csv`` that grows during a run: the header at once, then one row per evaluation.

    Each row is written and flushed to the operating system as soon as it is measured, so a
    run killed by SIGKILL or the OOM killer keeps every finished evaluation. With
    ``durable=True`` each row is also fsync'ed (about 2 ms here), so a power cut keeps them
    too; a sweep's jobs skip that, because ``--resume`` re-runs any job whose folder is
    incomplete. The content equals :func:`metrics_csv_text` of the rows logged, byte for
    byte; :func:`run_train_job` still replaces the file atomically with that text at the end.

    Parameters
    ----------
    path : str or Path
        The file to create (truncated if it exists).
    durable : bool, default True

    Raises
    ------
    OSError
        If the file cannot be created or written.
    """

    def __init__(self, path: str | Path, durable: bool = True) -> None:
        from frnn_cli.train import METRICS_COLUMNS

        self.durable = durable
        self._fh = open(path, "w", encoding="utf-8", newline="")
        self._write(",".join(METRICS_COLUMNS))

    def _write(self, line: str) -> None:
        self._fh.write(line + "\n")
        self._fh.flush()
        if self.durable:
            os.fsync(self._fh.fileno())

    def append(self, rec) -> None:
        """Write one evaluation record (an EvalRecord or a mapping with its columns)."""
        self._write(_metrics_row(rec))

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._fh.close()


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
        "optimizer", "seed", "network" (rnn/lstm; for quick reading -- config.yaml has the
        rest), "model" (what model.npz holds), "mechanism" (how the run learned:
        :func:`frnn_cli.experiment.verdict.learning_mechanism`; "guess" for random guessing),
        "st1_sequences" / "st2_sequences" (training sequences seen until the LSTM paper's ST1 /
        ST2 held, or None), "trials" and "trial" (random guessing: the trials drawn and the
        index k of the tested network; else None). NaN values are None.
    """
    from dataclasses import asdict

    from frnn_cli.experiment import verdict

    learned = result.test.better_than_chance and result.status == "completed" and result.best_step > 0
    mechanism = verdict.how_learned([r.as_dict() for r in result.history], learned, dtype=cfg.dtype,
                                    optimizer=cfg.optimizer, freeze=cfg.freeze, T=cfg.T,
                                    best_step=result.best_step if result.trial is None else result.trial + 1)
    names = ", ".join(result.params)
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
        "network": cfg.model,
        "model": (f"model.npz: {names} of the best validation checkpoint (step {result.best_step})"
                  if result.trial is None else f"model.npz: {names} of the network drawn at trial {result.trial + 1} "
                  f"(k = {result.trial})"),
        "mechanism": mechanism.as_dict(),
        "st1_sequences": result.st1_sequences,
        "st2_sequences": result.st2_sequences,
        "trials": result.trials,
        "trial": result.trial,
    })


def run_train_job(cfg, run_dir: str | Path, plots: bool = True, argv: list[str] | None = None,
                  callback=None, durable: bool = True) -> dict:
    """Train one run into an existing (empty) folder and write every file of a train run.

    Writes ``config.yaml`` (the resolved config) and ``meta.json`` (status "running") before
    training; ``metrics.csv`` grows by one flushed row per evaluation during training
    (:class:`MetricsLog`), so a hard kill keeps every finished evaluation, and with
    ``durable`` ``model.npz`` is rewritten at each new best checkpoint; after training
    ``metrics.csv`` again (atomically, same content), ``model.npz`` (the best checkpoint's
    weights), ``summary.json``, ``plots/learning_curves.png`` and ``plots/gradient_norms.png``
    (unless ``plots=False``), and finally ``meta.json`` with status "completed" or "diverged"
    and the end time. Every file but the growing metrics.csv is written atomically.
    Module-level and picklable, so a process pool can run it.

    On KeyboardInterrupt ``meta.json`` gets status "interrupted" and the last evaluated
    step, and the interrupt is re-raised. On any other exception ``meta.json`` gets status
    "failed" and "error" (type and message), and it is re-raised.

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
    durable : bool, default True
        fsync each metrics row (see :class:`MetricsLog`) and save each new best checkpoint
        as it comes (a sweep's jobs, re-run by ``--resume`` when killed, skip both).

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
    log = MetricsLog(run_dir / "metrics.csv", durable=durable)
    last_step: list[int] = []

    def on_eval(rec) -> None:
        log.append(rec)
        last_step[:] = [rec.step]
        if callback is not None:
            callback(rec)

    def on_best(rec, params) -> None:
        # The best checkpoint so far, so that a killed run still leaves a network to study
        # (frnn vanishing --run warns that it did not finish). About 1 ms per new best.
        atomic_save_npz(run_dir / "model.npz", **params)

    try:
        try:
            result = train(cfg, callback=on_eval, on_best=on_best if durable else None)
        finally:
            log.close()
        summary = train_summary(result, cfg)
        atomic_write_text(run_dir / "metrics.csv", metrics_csv_text(result.history))
        atomic_save_npz(run_dir / "model.npz", **result.params)
        atomic_write_json(run_dir / "summary.json", summary)
        if plots:
            from frnn_cli.plots import train as plotting

            (run_dir / "plots").mkdir(exist_ok=True)
            rows = [r.as_dict() for r in result.history]
            title = describe(cfg)
            # Random guessing counts trials, and tests the network of one trial, not a checkpoint.
            axis = {} if result.trial is None else {"x_label": "trials drawn"}
            best = {} if result.trial is None else {"best_label": f"network tested (trial {result.trial + 1})"}
            best_step = result.best_step if result.trial is None else result.trial + 1
            plotting.plot_learning_curves(rows, run_dir / "plots" / "learning_curves.png", title,
                                          best_step=best_step, test_accuracy=result.test.accuracy,
                                          verdict=result.test.verdict, **axis, **best)
            plotting.plot_gradient_norms(rows, run_dir / "plots" / "gradient_norms.png", title, cfg.T, **axis)
        finish_meta(run_dir, meta, result.status)
        return summary
    except KeyboardInterrupt:
        finish_meta(run_dir, meta, "interrupted", last_evaluated_step=last_step[0] if last_step else None)
        raise
    except BaseException as exc:
        finish_meta(run_dir, meta, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
