"""``frnn sweep``: train at every sequence length, tune, and find the longest T better than chance.

The experiment of the assignment: "Start at sequence length 1, tune the learning rate and the
number of update steps; increase T by one and tune again. What is the maximal T at which the
network is better than random?"

* The grid (:mod:`frnn_cli.grid`) has an *axis* (``T`` by default) and tuned keys (by default a
  learning-rate grid). Every setting is trained with ``seeds`` replicates.
* Each job is one ``frnn train`` run written into ``jobs/<job id>/`` of the sweep folder, by
  :func:`frnn_cli.runs.run_train_job`. The number of update steps is tuned inside each job:
  it keeps its best validation checkpoint and reports that step.
* At every axis value the setting with the highest mean validation accuracy over seeds wins
  (ties: lower mean validation loss; a setting with a diverged seed ranks below every setting
  without one). Its checkpoints' test accuracies (fresh sequences, disjoint from training and
  validation) are tested against chance per seed; the axis value counts as *learned* when a
  strict majority of seeds is better than chance at ``alpha``.

Jobs run in a process pool (``spawn``, one BLAS thread per worker); their seeds come from
``np.random.SeedSequence`` (:func:`frnn_cli.grid.job_seed`), so results do not depend on the
number of workers or the order in which jobs finish. No printing here: the CLI passes a
callback.
"""

from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import os
import shutil
import statistics
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from frnn_cli import config, grid
from frnn_cli.config import Config
from frnn_cli.errors import BadInput
from frnn_cli.runs import trained_past_init

#: Default learning-rate grid when the sweep does not set one: log-spaced, 0.03 to 3.
DEFAULT_LR = (0.03, 0.1, 0.3, 1.0, 3.0)
#: Default sequence lengths when the sweep does not set the axis.
DEFAULT_T = tuple(range(1, 21))
#: Base settings a sweep uses unless its config file or command line sets them, chosen so that
#: the default 300-job sweep finishes in about 70 s on 2 cores. An evaluation (validation set +
#: Jacobian norm) costs as much as ~30 updates at T = 20; every 100 steps keeps it near 10 % of
#: a job and still locates the best checkpoint to 100 steps. 1500 steps per run: the latest
#: learner of the reference setting at T = 3 (seed 0..2) converged at step 1500 of 2000.
SWEEP_DEFAULTS = {"eval_every": 100, "steps": 1500}
DONE_STATUSES = ("completed", "diverged")
SPEC_FILE = "sweep.yaml"
#: A grid larger than this is refused: it is almost surely a typo (T=1..100000), and even
#: listing its jobs would take minutes.
MAX_JOBS = 100_000


@dataclass
class SweepSpec:
    """Everything that defines a sweep's results (compared on ``--resume``).

    Attributes
    ----------
    base : Config
        Settings shared by every job (file + single-valued overrides).
    grid : dict key -> list
        Swept keys with two or more values, the axis first.
    axis : str
        The key results are reported against (``T``).
    seeds : int
        Replicates per setting.
    """

    base: Config
    grid: dict[str, list[Any]]
    axis: str = "T"
    seeds: int = 3

    @property
    def tuned(self) -> list[str]:
        """Swept keys other than the axis."""
        return [k for k in self.grid if k != self.axis]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``sweep.yaml`` (loads back with :func:`spec_from_dict`)."""
        return {"axis": self.axis, "seeds": self.seeds, "sweep": self.grid, **config.to_dict(self.base)}


def _split_sweep_keys(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Any, Any]:
    """Split a sweep mapping into (config keys, ``sweep:`` grid, ``seeds``, ``axis``).

    Raises
    ------
    BadInput
        If ``sweep:`` is not a mapping.
    """
    data = dict(data)
    sweep_grid = data.pop("sweep", None) or {}
    if not isinstance(sweep_grid, dict):
        raise BadInput("sweep: expected a mapping of keys to values, lists or ranges a..b")
    return data, sweep_grid, data.pop("seeds", None), data.pop("axis", None)


def _check_seeds(seeds: Any) -> int:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise BadInput(f"seeds: expected an integer >= 1, got {seeds!r}")
    return seeds


def spec_from_dict(data: dict[str, Any]) -> SweepSpec:
    """Rebuild a :class:`SweepSpec` from :meth:`SweepSpec.to_dict` output (or a sweep YAML).

    Raises
    ------
    BadInput
        On any invalid key or value.
    """
    values, sweep_grid, seeds, axis = _split_sweep_keys(data)
    base = config.build(Config, values)
    seeds = _check_seeds(3 if seeds is None else seeds)
    return _make_spec(base, grid.parse_grid(Config, sweep_grid), axis or "T", seeds, defaults=False)


def _make_spec(base: Config, g: dict[str, list[Any]], axis: str, seeds: int, defaults: bool = True) -> SweepSpec:
    if axis not in config.field_names(Config):
        config.coerce(Config, axis, None)  # raises the unknown-key error with a suggestion
    g = dict(g)
    if defaults:
        g.setdefault(axis, list(DEFAULT_T) if axis == "T" else [getattr(base, axis)])
        g.setdefault("lr", list(DEFAULT_LR))
    singles = {k: v[0] for k, v in g.items() if len(v) == 1 and k != axis}
    base = replace(base, **singles)
    swept = {axis: g[axis], **{k: v for k, v in g.items() if k != axis and len(v) > 1}}
    if axis == "T" and "T" in swept:
        swept["T"] = sorted(swept["T"])
    return SweepSpec(base=base, grid=swept, axis=axis, seeds=seeds)


def resolve_spec(
    config_file: str | Path | None, words: list[str], axis: str | None, seeds: int | None
) -> SweepSpec:
    """The sweep spec from a YAML file (keys + ``sweep:`` + ``seeds:``/``axis:``) and ``key=VALUES`` words.

    Command-line words win over the file's base keys and grid, key by key; ``--axis`` and
    ``--seeds`` win over the file. Without a learning-rate grid, :data:`DEFAULT_LR` is used;
    without the axis, ``T=1..20``; keys in :data:`SWEEP_DEFAULTS` not set anywhere take
    those values instead of the :class:`Config` defaults.

    Raises
    ------
    BadInput
        Any invalid file, key, value or range.
    """
    file_data: dict[str, Any] = config.load_yaml(config_file) if config_file is not None else {}
    if config_file is not None and not file_data:
        config.note_empty(config_file)
    try:
        file_values, file_grid, file_seeds, file_axis = _split_sweep_keys(file_data)
        base_values = dict(SWEEP_DEFAULTS)
        base_values.update({str(k): config.coerce(Config, str(k), v) for k, v in file_values.items()})
        g = grid.parse_grid(Config, file_grid)
        if file_seeds is not None:
            _check_seeds(file_seeds)
    except BadInput as exc:
        raise BadInput(f"{config_file}: {exc}") from None
    g.update(grid.parse_grid(Config, words))
    seeds = _check_seeds(seeds if seeds is not None else (file_seeds if file_seeds is not None else 3))
    return _make_spec(config.build(Config, base_values), g, axis or file_axis or "T", seeds)


# ---------------------------------------------------------------------------------------
# Jobs


@dataclass(frozen=True)
class Job:
    """One training run of the sweep.

    Attributes
    ----------
    job_id : str
        Folder name under ``jobs/``, e.g. ``T07_lr0.3_r1``.
    setting : dict
        Values of the swept keys (axis included).
    replicate : int
        Seed index r = 0..seeds-1.
    cfg : Config
        The job's full config (its seed from :func:`frnn_cli.grid.job_seed`).
    """

    job_id: str
    setting: dict[str, Any]
    replicate: int
    cfg: Config


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def n_jobs(spec: SweepSpec) -> int:
    """Number of jobs of the sweep: the product of the grid's lengths times the seeds."""
    return math.prod(len(v) for v in spec.grid.values()) * spec.seeds


def plan(spec: SweepSpec) -> list[Job]:
    """Every job of the sweep, axis value by axis value (so results for small T come first).

    Raises
    ------
    BadInput
        If the sweep has more than :data:`MAX_JOBS` jobs.
    """
    if n_jobs(spec) > MAX_JOBS:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in spec.grid.items())
        raise BadInput(f"the grid has {n_jobs(spec):,} jobs ({sizes} x {spec.seeds} seeds); at most {MAX_JOBS:,} are allowed")
    jobs = []
    for setting in grid.expand(spec.grid):
        base_seed = setting.get("seed", spec.base.seed)  # a swept seed is the base of its replicates
        for r in range(spec.seeds):
            cfg = replace(spec.base, **{**setting, "seed": grid.job_seed(base_seed, r)})
            job_id = "_".join(f"{k}{_fmt(v)}" for k, v in setting.items()) + f"_r{r}"
            jobs.append(Job(job_id, setting, r, cfg))
    return jobs


def check_memory(jobs: list[Job], workers: int) -> int:
    """Refuse a sweep whose largest job, times the workers running at once, does not fit in memory.

    Returns
    -------
    int, the estimated bytes (see :func:`frnn_cli.resources.check_fits`).

    Raises
    ------
    BadInput
        If it does not fit; the message names the largest job's sizes.
    """
    from frnn_cli.resources import check_fits, train_bytes

    def parts(c: Config) -> dict[str, int]:
        return train_bytes(c.T, c.hidden, c.batch_size, c.n_val, c.n_test)

    biggest = max(jobs, key=lambda j: sum(parts(j.cfg).values()))
    c = biggest.cfg
    return check_fits(
        parts(c), f"the sweep's largest job (T={c.T}, hidden={c.hidden}, batch_size={c.batch_size}, n_val={c.n_val}, "
        f"n_test={c.n_test})", copies=min(workers, len(jobs)),
    )


def describe_plan(spec: SweepSpec, n_jobs: int) -> str:
    """The plan in one phrase, e.g. ``300 jobs: T=1..20 x lr=0.03,0.1,0.3,1,3 x 3 seeds``."""

    def values(k: str) -> str:
        v = spec.grid[k]
        if all(isinstance(x, int) for x in v) and len(v) > 2 and v == list(range(v[0], v[-1] + 1)):
            return f"{v[0]}..{v[-1]}"
        return ",".join(_fmt(x) for x in v)

    parts = [f"{k}={values(k)}" for k in spec.grid]
    return f"{n_jobs} jobs: {' x '.join(parts)} x {spec.seeds} seeds"


#: Seconds between a worker's checks that the sweep's parent process is still alive.
PARENT_POLL_SECONDS = 1.0


def _exit_when_orphaned(parent_pid: int, poll: float) -> None:
    """Watchdog loop (a daemon thread in each worker): end the worker once its parent is gone.

    A parent killed hard (SIGKILL, the OOM killer) cannot shut its pool down, and its
    workers would train on under PID 1 for as long as their jobs last. When the parent
    dies the worker is re-parented, so ``os.getppid()`` changes; the worker then exits at
    once (``os._exit``: no clean-up of a half-written job folder is needed, since an
    incomplete job folder is re-run by ``--resume``).
    """
    import time

    while os.getppid() == parent_pid:
        time.sleep(poll)
    os._exit(1)


def _worker_init(parent_pid: int, poll: float = PARENT_POLL_SECONDS) -> None:
    """Set up a pool worker: ignore Ctrl-C (the parent handles it) and watch the parent."""
    import signal
    import threading

    # Ctrl-C is handled by the parent, which lets running jobs finish and cancels the rest.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid, poll), daemon=True,
                     name="frnn-orphan-watchdog").start()


def run_job(cfg_dict: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Run one training job into ``run_dir`` (module-level so a process pool can pickle it).

    Returns
    -------
    The job's summary dict (as in its ``summary.json``), or ``{"status": "failed",
    "error": "..."}`` if training raised.
    """
    from frnn_cli.runs import run_train_job

    try:
        return run_train_job(Config(**cfg_dict), Path(run_dir), plots=False, durable=False)
    except Exception as exc:  # a failed job is recorded; the sweep goes on
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def _load_done(job_dir: Path) -> dict[str, Any] | None:
    """The job's summary if its folder is complete (summary, metrics and model), else None."""
    try:
        summary = json.loads((job_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    from frnn_cli.runs import TRAIN_FILES

    complete = all((job_dir / name).is_file() for name in TRAIN_FILES)
    ok = isinstance(summary, dict) and summary.get("status") in DONE_STATUSES and complete
    return summary if ok else None


@dataclass
class SweepProgress:
    """What the callback receives after each finished job."""

    done: int
    total: int
    job: Job
    summary: dict[str, Any]


def pending_jobs(jobs: list[Job], sweep_dir: Path) -> list[Job]:
    """The jobs whose folders under ``sweep_dir/jobs`` are not complete (what a resume runs)."""
    return [j for j in jobs if _load_done(sweep_dir / "jobs" / j.job_id) is None]


def run_jobs(
    jobs: list[Job],
    sweep_dir: Path,
    workers: int,
    callback: Callable[[SweepProgress], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the jobs that are not already done in ``sweep_dir/jobs``; return every job's summary.

    A job whose folder holds a ``summary.json`` with status completed or diverged is not
    run again (this is what ``--resume`` relies on); any other folder is cleared and re-run.

    Parameters
    ----------
    jobs : list of Job
    sweep_dir : Path
    workers : int, >= 1
        Worker processes (each with one BLAS thread).
    callback : callable(SweepProgress), optional

    Returns
    -------
    dict job_id -> summary dict.

    Raises
    ------
    KeyboardInterrupt
        After letting running jobs finish and cancelling the queued ones.
    """
    jobs_dir = sweep_dir / "jobs"
    jobs_dir.mkdir(exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        done = _load_done(jobs_dir / job.job_id)
        if done is not None:
            results[job.job_id] = done
        else:
            todo.append(job)
    total = len(jobs)
    if not todo:
        return results
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # inherited by the spawned workers
    ctx = multiprocessing.get_context("spawn")
    # More processes than jobs would only cost start-up time.
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(todo)), mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)
    )
    pending: dict[Future, Job] = {}
    try:
        for job in todo:
            job_dir = jobs_dir / job.job_id
            if job_dir.exists():
                shutil.rmtree(job_dir)
            job_dir.mkdir()
            pending[pool.submit(run_job, config.to_dict(job.cfg), str(job_dir))] = job
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                try:
                    summary = fut.result()
                except Exception as exc:  # the worker process died
                    summary = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                results[job.job_id] = summary
                if callback is not None:
                    callback(SweepProgress(len(results), total, job, summary))
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


# ---------------------------------------------------------------------------------------
# Tuning and the verdict


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def summarize(spec: SweepSpec, jobs: list[Job], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Tune at every axis value, test the winner against chance per seed, find ``max_T``.

    Parameters
    ----------
    spec : SweepSpec
    jobs : list of Job (from :func:`plan`)
    results : dict job_id -> job summary (keys ``status``, ``best``, ``test``; see
        :func:`frnn_cli.runs.run_train_job`)

    Returns
    -------
    dict with "rows" (one per axis value: chosen setting, chosen steps per seed, validation
    accuracy, test accuracy and p-value per seed, learned), "settings" (every setting's mean
    validation accuracy and loss, for the tuning heat map), "max_T", "max_T_contiguous",
    "n_failed", "n_diverged".
    """
    alpha = spec.base.alpha
    by_setting: dict[tuple, list[tuple[Job, dict[str, Any]]]] = {}
    for job in jobs:
        key = tuple(job.setting.items())
        by_setting.setdefault(key, []).append((job, results.get(job.job_id, {"status": "missing"})))

    settings = []
    for key, members in by_setting.items():
        ok = [s for _, s in members if s.get("status") in DONE_STATUSES and s.get("best")]
        diverged = sum(s.get("status") == "diverged" for _, s in members)
        failed = sum(s.get("status") not in DONE_STATUSES for _, s in members)
        settings.append({
            "setting": dict(key),
            "val_acc": _mean([s["best"]["val_acc"] for s in ok]),
            "val_loss": _mean([s["best"]["val_loss"] for s in ok]),
            "n_diverged": diverged,
            "n_failed": failed,
            "members": members,
        })

    rows = []
    for value in spec.grid[spec.axis]:
        candidates = [s for s in settings if s["setting"][spec.axis] == value and not math.isnan(s["val_acc"])]
        if not candidates:
            rows.append({spec.axis: value, "learned": False, "status": "no completed job"})
            continue
        # Rank: no diverged seed first, then highest validation accuracy, then lowest loss.
        best = min(candidates, key=lambda s: (s["n_diverged"] > 0, -s["val_acc"], s["val_loss"]))
        tests, steps, p_values, accs = [], [], [], []
        for job, s in best["members"]:
            if s.get("status") in DONE_STATUSES and s.get("test"):
                t = grid.chance_test(int(s["test"]["correct"]), int(s["test"]["n"]), alpha)
                tests.append(t.better and trained_past_init(s))
                accs.append(t.accuracy)
                p_values.append(t.p_value)
                steps.append(s["best"]["step"])
            else:
                tests.append(False)
                accs.append(math.nan)
                p_values.append(math.nan)
                steps.append(None)
        rows.append({
            spec.axis: value,
            **{k: best["setting"][k] for k in spec.tuned},
            "best_step": steps,
            "val_acc": best["val_acc"],
            "val_loss": best["val_loss"],
            "test_acc": accs,
            "test_acc_mean": _mean([a for a in accs if not math.isnan(a)]),
            "p_value": p_values,
            "better_than_chance": tests,
            "learned": grid.learned(tests),
            "n_diverged": best["n_diverged"],
            "best_job": [job.job_id for job, _ in best["members"]],
        })
    axis_vals = [r[spec.axis] for r in rows]
    max_t, max_t_contiguous = grid.max_T(axis_vals, [r["learned"] for r in rows])
    return {
        "axis": spec.axis,
        "tuned": spec.tuned,
        "alpha": alpha,
        "seeds": spec.seeds,
        "n_test": spec.base.n_test,
        "max_T": max_t,
        "max_T_contiguous": max_t_contiguous,
        "rows": rows,
        "settings": [{k: v for k, v in s.items() if k != "members"} for s in settings],
        "n_jobs": len(jobs),
        "n_failed": sum(s["n_failed"] for s in settings),
        "n_diverged": sum(s["n_diverged"] for s in settings),
    }


def summary_csv(summary: dict[str, Any]) -> str:
    """``summary.csv`` text: one row per axis value; per-seed values joined with ``;``."""
    axis, tuned = summary["axis"], summary["tuned"]
    cols = [axis, *tuned, "best_step", "val_acc", "test_acc_mean", "test_acc", "p_value", "better_than_chance", "learned"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)

    def cell(v: Any) -> str:
        if isinstance(v, list):
            return ";".join(cell(x) for x in v)
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.6g}"
        if v is None:
            return ""
        return str(v).lower() if isinstance(v, bool) else str(v)

    for row in summary["rows"]:
        w.writerow([cell(row.get(c)) for c in cols])
    return buf.getvalue()


def dump_spec(spec: SweepSpec) -> str:
    """``sweep.yaml``: the resolved spec, readable by ``frnn sweep --config``."""
    return yaml.safe_dump(spec.to_dict(), sort_keys=False, default_flow_style=None)


def check_resume(stored: SweepSpec, requested: SweepSpec | None) -> SweepSpec:
    """The spec to resume with: the stored one, after checking it equals the requested one.

    Raises
    ------
    BadInput
        If a requested spec is given and differs (names the first differing key).
    """
    if requested is None:
        return stored
    a, b = stored.to_dict(), requested.to_dict()
    ga, gb = a.pop("sweep"), b.pop("sweep")
    diffs = [(f"the grid of {k}", ga.get(k), gb.get(k)) for k in [*ga, *(k for k in gb if k not in ga)] if ga.get(k) != gb.get(k)]
    diffs += [(k, a.get(k), b.get(k)) for k in a if a.get(k) != b.get(k)]
    if diffs:
        what, there, now = diffs[0]
        raise BadInput(
            f"--resume: {what} differs from the stored sweep ({there!r} there, {now!r} now); "
            "give --resume DIR alone to finish it as it was"
        )
    return stored


def load_spec(sweep_dir: Path) -> SweepSpec:
    """Read ``sweep.yaml`` of an existing sweep folder.

    Raises
    ------
    BadInput
        If the folder or its ``sweep.yaml`` is missing or invalid.
    """
    path = Path(sweep_dir) / SPEC_FILE
    if not path.is_file():
        raise BadInput(f"--resume: {str(sweep_dir)!r} is not a sweep folder (no {SPEC_FILE})")
    return spec_from_dict(config.load_yaml(path))


def _metric_columns(job_dir: Path) -> dict[str, list[float]]:
    """A job's ``metrics.csv`` as columns (empty dict if missing or unreadable)."""
    from frnn_cli.runs import read_metrics

    try:
        rows = read_metrics(job_dir / "metrics.csv")
    except (OSError, ValueError):
        return {}
    return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}


def collect_curves(sweep_dir: Path, summary: dict[str, Any]) -> tuple[dict, dict]:
    """Per axis value, the chosen setting's validation-loss curves and gradient-path norms.

    Returns
    -------
    curves : dict axis value -> list of (steps (N,), val_loss (N,)) per seed
    norms : dict axis value -> {"grad_W_first", "R_init", "R_best", "jac_init", "jac_best"},
        medians over seeds (see :func:`frnn_cli.plots.sweep.gradient_norms_vs_T`)
    """
    import numpy as np

    axis = summary["axis"]
    curves: dict[Any, list] = {}
    norms: dict[Any, dict[str, float]] = {}
    for row in summary["rows"]:
        if "best_job" not in row:
            continue
        per_seed: dict[str, list[float]] = {k: [] for k in ("grad_W_first", "R_init", "R_best", "jac_init", "jac_best")}
        for job_id, best_step in zip(row["best_job"], row["best_step"]):
            m = _metric_columns(sweep_dir / "jobs" / job_id)
            if not m or best_step is None:
                continue
            steps = np.array(m["step"])
            curves.setdefault(row[axis], []).append((steps, np.array(m["val_loss"])))
            b = int(np.argmin(np.abs(steps - best_step)))
            per_seed["grad_W_first"].append(m["grad_norm_W"][1] if len(steps) > 1 else math.nan)
            per_seed["R_init"].append(m["R_spectral_norm"][0])
            per_seed["R_best"].append(m["R_spectral_norm"][b])
            per_seed["jac_init"].append(m["jacobian_norm"][0])
            per_seed["jac_best"].append(m["jacobian_norm"][b])
        norms[row[axis]] = {k: float(np.nanmedian(v)) if v else math.nan for k, v in per_seed.items()}
    return curves, norms


def run_sweep(
    spec: SweepSpec,
    sweep_dir: Path,
    workers: int,
    callback: Callable[[SweepProgress], None] | None = None,
    argv: list[str] | None = None,
    resumed: bool = False,
) -> dict[str, Any]:
    """Run (or resume) a whole sweep in ``sweep_dir`` and write its summary and plots.

    Writes ``sweep.yaml`` (the resolved spec; kept when resuming), ``meta.json`` (status
    running -> completed / failed / interrupted), one folder per job under ``jobs/``,
    ``summary.json``, ``summary.csv`` and ``plots/{accuracy_vs_T, tuning_heatmap,
    learning_curves, gradient_norms_vs_T}.png``. All files are written atomically.

    Returns
    -------
    dict, the content of ``summary.json`` (see :func:`summarize`) plus "seconds".

    Raises
    ------
    KeyboardInterrupt
        After recording status "interrupted" (finished jobs stay on disk).
    """
    import time

    from frnn_cli.plots import sweep as plots_sweep
    from frnn_cli.runs import atomic_write_json, atomic_write_text, base_meta, finish_meta, nan_to_none

    start = time.perf_counter()
    jobs = plan(spec)
    if not resumed:
        atomic_write_text(sweep_dir / SPEC_FILE, dump_spec(spec))
    meta = base_meta(spec.base.seed, argv)
    meta.update({"kind": "sweep", "n_jobs": len(jobs), "workers": workers, "resumed": []})
    if resumed:
        # Keep the original command and start time; record each resumption after them.
        try:
            stored = json.loads((sweep_dir / "meta.json").read_text())
        except (OSError, ValueError):
            stored = None
        if isinstance(stored, dict):
            meta["resumed"] = [*stored.get("resumed", []), {k: meta[k] for k in ("command", "start_time", "workers")}]
            meta.update({k: stored[k] for k in ("command", "start_time") if k in stored})
    atomic_write_json(sweep_dir / "meta.json", meta)

    def finish(status: str) -> None:
        finish_meta(sweep_dir, meta, status)

    try:
        results = run_jobs(jobs, sweep_dir, workers, callback)
    except KeyboardInterrupt:
        finish("interrupted")
        raise
    summary = summarize(spec, jobs, results)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["failed_jobs"] = {
        j.job_id: results[j.job_id].get("error", "") for j in jobs if results[j.job_id].get("status") not in DONE_STATUSES
    }
    atomic_write_json(sweep_dir / "summary.json", nan_to_none(summary))
    atomic_write_text(sweep_dir / "summary.csv", summary_csv(summary))
    plot_dir = sweep_dir / "plots"
    plot_dir.mkdir(exist_ok=True)
    base = config.to_dict(spec.base)
    curves, norms = collect_curves(sweep_dir, summary)
    plots_sweep.accuracy_vs_T(summary, base, plot_dir / "accuracy_vs_T.png")
    if "lr" in spec.grid:
        plots_sweep.tuning_heatmap(summary, base, plot_dir / "tuning_heatmap.png", key="lr")
    elif spec.tuned:
        plots_sweep.tuning_heatmap(summary, base, plot_dir / "tuning_heatmap.png", key=spec.tuned[0])
    plots_sweep.learning_curves(summary, base, curves, plot_dir / "learning_curves.png")
    plots_sweep.gradient_norms_vs_T(summary, base, norms, plot_dir / "gradient_norms_vs_T.png")
    finish("failed" if summary["n_failed"] else "completed")
    return summary


__all__ = [
    "DEFAULT_LR",
    "Job",
    "SweepProgress",
    "SweepSpec",
    "check_resume",
    "describe_plan",
    "dump_spec",
    "load_spec",
    "plan",
    "resolve_spec",
    "run_jobs",
    "run_sweep",
    "summarize",
    "summary_csv",
]
