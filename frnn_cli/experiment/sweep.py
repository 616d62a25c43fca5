"""``frnn sweep``: train at every sequence length, tune, and find the longest T better than chance.

A thin composition: the plan (:mod:`frnn_cli.experiment.plan`) is executed
(:mod:`frnn_cli.experiment.execute`), each axis value is tuned and judged
(:func:`summarize`, with the rules of :mod:`frnn_cli.experiment.verdict`), and the results
go to files and plots.

* At every axis value the setting with the highest mean validation accuracy over seeds wins
  (ties: lower mean validation loss; a setting with a diverged seed ranks below every setting
  without one). Its checkpoints' test accuracies (fresh sequences, disjoint from training and
  validation) are tested against chance per seed; the axis value counts as *learned* when a
  strict majority of seeds is better than chance at ``alpha``.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from frnn_cli import config
from frnn_cli.experiment import verdict
from frnn_cli.experiment.execute import DONE_STATUSES, SweepProgress, run_jobs
from frnn_cli.experiment.plan import SPEC_FILE, Job, SweepSpec, dump_spec, plan

def summarize(spec: SweepSpec, jobs: list[Job], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The sweep's verdict (:func:`frnn_cli.experiment.verdict.summarize`) for its jobs' summaries.

    Parameters
    ----------
    spec : SweepSpec
    jobs : list of Job (from :func:`frnn_cli.experiment.plan.plan`)
    results : dict job_id -> job summary (as in the job's summary.json)

    Returns
    -------
    The verdict dict plus "n_test", "n_jobs", "unit" ("steps", or "trials" for random
    guessing: what each row's "best_step" counts) and "dtype" (of the runs).
    """
    members: dict[tuple, list[tuple[str, dict[str, Any]]]] = {}
    for job in jobs:
        members.setdefault(tuple(job.setting.items()), []).append(
            (job.job_id, results.get(job.job_id, {"status": "missing"})))
    summary = verdict.summarize(spec.axis, spec.grid, spec.seeds, spec.base.alpha, members)
    # Random guessing counts trials where gradient descent counts steps ("best_step" holds either).
    unit = "trials" if spec.base.optimizer == "guess" and "optimizer" not in spec.grid else "steps"
    return {**summary, "n_test": spec.base.n_test, "n_jobs": len(jobs), "unit": unit, "dtype": spec.base.dtype}


def summary_csv(summary: dict[str, Any]) -> str:
    """``summary.csv`` text: one row per axis value; per-seed values joined with ``;``.

    Columns: the axis, the chosen tuned values, ``at_edge`` (e.g. ``lr=largest;steps=last``),
    ``best_step`` (named ``trials`` for random guessing), ``val_acc``, ``test_acc_mean``,
    ``test_acc``, ``p_value``, ``better_than_chance``, ``mechanism`` (per seed: gradient/latch/init/none), ``learned``,
    ``how`` (the mechanism of the learned seeds), ``learned_by_gradient`` (when only runs that
    learned by gradient count) and the tuned values chosen for that answer (``gradient_<key>``).

    An axis value without a verdict -- skipped by ``frnn compare``'s rule (two failed T before
    it), or with no finished job -- keeps its row, with ``learned`` and ``learned_by_gradient``
    left empty and a last column ``status`` saying why ("skipped", "no completed job"; empty
    for a judged row). The row is kept rather than left out so that the file lists every axis
    value of ``sweep.yaml`` and a skipped T reads differently from a T that was run and not
    learned. The ``status`` column is written only when some row needs it, so an ordinary
    sweep's file is unchanged (and stays byte-identical to a compare recipe's, a test).
    """
    axis, tuned = summary["axis"], summary["tuned"]
    # Random guessing has no steps: its column says what it counts.
    step_col = "trials" if summary.get("unit") == "trials" else "best_step"
    cols = [axis, *tuned, "at_edge", step_col, "val_acc", "test_acc_mean", "test_acc", "p_value",
            "better_than_chance", "mechanism", "learned", "how", "learned_by_gradient", *(f"gradient_{k}" for k in tuned)]
    if any(row.get("status") for row in summary["rows"]):
        cols.append("status")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)

    def cell(v: Any) -> str:
        if isinstance(v, list):
            return ";".join(cell(x) for x in v)
        if isinstance(v, dict):
            return ";".join(f"{k}={x}" for k, x in v.items())
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.6g}"
        if v is None:
            return ""
        return str(v).lower() if isinstance(v, bool) else str(v)

    for row in summary["rows"]:
        g = row.get("gradient", {})
        extra = {"learned_by_gradient": g.get("learned"), **{f"gradient_{k}": g.get(k) for k in tuned},
                 step_col: row.get("best_step")}
        if row.get("status"):  # not judged: neither learned nor not learned
            extra.update(learned=None, learned_by_gradient=None)
        w.writerow([cell(extra[c] if c in extra else row.get(c)) for c in cols])
    return buf.getvalue()


def _metric_columns(job_dir: Path) -> dict[str, list[float]]:
    """A job's ``metrics.csv`` as columns (empty dict if missing or unreadable)."""
    from frnn_cli.runs import read_metrics

    try:
        rows = read_metrics(job_dir / "metrics.csv")
    except (OSError, ValueError):
        return {}
    return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}


def _nanmedian(values: list[float]) -> float:
    """Median of the values that are not NaN (random guessing has no gradient norms), else NaN."""
    kept = [v for v in values if v == v]
    return float(statistics.median(kept)) if kept else math.nan


def collect_curves(sweep_dir: Path, summary: dict[str, Any]) -> tuple[dict, dict]:
    """Per axis value, the chosen setting's validation-accuracy curves and gradient-path norms.

    Returns
    -------
    curves : dict axis value -> list of (steps (N,), val_acc (N,), mechanism) per seed, the
        mechanism being "gradient"/"latch" for a seed that beat chance, else "none"
    norms : dict axis value -> {"grad_W_first", "R_init", "R_best", "jac_init", "jac_best"},
        medians over seeds (see :func:`frnn_cli.plots.sweep.gradient_norms_vs_axis`)
    """
    import numpy as np

    axis = summary["axis"]
    curves: dict[Any, list] = {}
    norms: dict[Any, dict[str, float]] = {}
    for row in summary["rows"]:
        if "best_job" not in row:
            continue
        per_seed: dict[str, list[float]] = {k: [] for k in ("grad_W_first", "R_init", "R_best", "jac_init", "jac_best")}
        for job_id, best_step, how in zip(row["best_job"], row["best_step"], row["mechanism"]):
            m = _metric_columns(sweep_dir / "jobs" / job_id)
            if not m or best_step is None:
                continue
            steps = np.array(m["step"])
            curves.setdefault(row[axis], []).append((steps, np.array(m["val_acc"]), how))
            b = int(np.argmin(np.abs(steps - best_step)))
            per_seed["grad_W_first"].append(m["grad_norm_W"][1] if len(steps) > 1 else math.nan)
            per_seed["R_init"].append(m["R_spectral_norm"][0])
            per_seed["R_best"].append(m["R_spectral_norm"][b])
            per_seed["jac_init"].append(m["jacobian_norm"][0])
            per_seed["jac_best"].append(m["jacobian_norm"][b])
        norms[row[axis]] = {k: _nanmedian(v) for k, v in per_seed.items()}
    return curves, norms


def write_plots(spec: SweepSpec, summary: dict[str, Any], sweep_dir: Path) -> list[Path]:
    """Draw the sweep's four figures into ``sweep_dir/plots/``, named after the axis.

    ``accuracy_vs_<axis>.png``, ``tuning_heatmap.png`` (when a key is tuned),
    ``learning_curves.png`` and ``gradient_norms_vs_<axis>.png``.

    Returns
    -------
    list of the PNG paths written.
    """
    from frnn_cli.plots import sweep as plots_sweep

    plot_dir = sweep_dir / "plots"
    plot_dir.mkdir(exist_ok=True)
    base = config.to_dict(spec.base)
    curves, norms = collect_curves(sweep_dir, summary)
    axis = spec.axis
    paths = [plots_sweep.accuracy_vs_axis(summary, base, plot_dir / f"accuracy_vs_{axis}.png")]
    if spec.tuned:
        key = "lr" if "lr" in spec.tuned else spec.tuned[0]
        paths.append(plots_sweep.tuning_heatmap(summary, base, plot_dir / "tuning_heatmap.png", key=key))
    paths.append(plots_sweep.learning_curves(summary, base, curves, plot_dir / "learning_curves.png"))
    paths.append(plots_sweep.gradient_norms_vs_axis(summary, base, norms, plot_dir / f"gradient_norms_vs_{axis}.png"))
    return paths


def tasks(jobs: list[Job], sweep_dir: Path) -> list[tuple[Job, Path]]:
    """Each job with its folder ``sweep_dir/jobs/<job id>``."""
    return [(job, sweep_dir / "jobs" / job.job_id) for job in jobs]


def run_sweep(
    spec: SweepSpec,
    sweep_dir: Path,
    executor: Executor,
    callback: Callable[[SweepProgress], None] | None = None,
    argv: list[str] | None = None,
    resumed: bool = False,
) -> dict[str, Any]:
    """Run (or resume) a whole sweep in ``sweep_dir`` and write its summary and plots.

    Writes ``sweep.yaml`` (the resolved spec; kept when resuming), ``meta.json`` (status
    running -> completed / failed / interrupted), one folder per job under ``jobs/``,
    ``summary.json``, ``summary.csv`` and the plots of :func:`write_plots`. All files are
    written atomically.

    Parameters
    ----------
    spec : SweepSpec
    sweep_dir : Path
        An existing folder (new, or the one being resumed).
    executor : concurrent.futures.Executor
        Where the jobs run (see :func:`frnn_cli.experiment.execute.run_jobs`).
    callback : callable(SweepProgress), optional
    argv : list of str, optional
        The command line to record.
    resumed : bool
        Keep the stored sweep.yaml and record this resumption in meta.json.

    Returns
    -------
    dict, the content of ``summary.json`` (see :func:`summarize`) plus "seconds": the wall
    time of this call, from its start until every file (plots included) is written.

    Raises
    ------
    KeyboardInterrupt
        After recording status "interrupted" (finished jobs stay on disk).
    """
    import time

    from frnn_cli.runs import finish_meta

    start = time.perf_counter()
    jobs = plan(spec)
    meta = start_files(spec, sweep_dir, getattr(executor, "description", type(executor).__name__), argv, resumed)
    try:  # an interrupt while the summary and plots are written counts too: resume finishes them
        results = run_jobs(tasks(jobs, sweep_dir), executor, callback)
        return finish_files(spec, sweep_dir, jobs, results, meta, start)
    except KeyboardInterrupt:
        finish_meta(sweep_dir, meta, "interrupted")
        raise


def start_files(spec: SweepSpec, sweep_dir: Path, where: str, argv: list[str] | None, resumed: bool) -> dict:
    """Write what a sweep folder holds before its jobs run: ``sweep.yaml`` (unless resuming)
    and ``meta.json`` with status "running".

    On a resume the original command and start time are kept, and this resumption is
    appended to ``meta["resumed"]``.

    Parameters
    ----------
    where : str
        Where the jobs run, e.g. "on 2 workers" (recorded as meta["executor"]).

    Returns
    -------
    dict, the meta written (to finish with :func:`frnn_cli.runs.finish_meta`).
    """
    from frnn_cli.runs import atomic_write_json, atomic_write_text, base_meta, carry_over_meta

    if not resumed:
        atomic_write_text(sweep_dir / SPEC_FILE, dump_spec(spec))
    meta = base_meta(spec.base.seed, argv)
    meta.update({"kind": "sweep", "n_jobs": len(plan(spec)), "executor": where, "resumed": []})
    if resumed:
        carry_over_meta(sweep_dir, meta)
    atomic_write_json(sweep_dir / "meta.json", meta)
    return meta


def finish_files(spec: SweepSpec, sweep_dir: Path, jobs: list[Job], results: dict[str, dict[str, Any]],
                 meta: dict, start: float) -> dict[str, Any]:
    """Judge the finished jobs and write ``summary.csv``, the plots, ``summary.json`` and
    ``meta.json`` with status "completed" (or "failed" when a job failed).

    Jobs whose summary says "skipped" (compare's rule) make their axis value a "skipped" row.

    Parameters
    ----------
    start : float
        ``time.perf_counter()`` when the sweep (or the comparison it belongs to) started:
        "seconds" is the wall time from then until the plots are written, the time a user
        waits, not only the jobs' (drawing the plots alone takes about two seconds).

    Returns
    -------
    dict, the content of summary.json (:func:`summarize` plus "seconds" and "failed_jobs").
    """
    import time

    from frnn_cli.runs import atomic_write_json, atomic_write_text, finish_meta, nan_to_none

    summary = summarize(spec, jobs, results)
    summary["seconds"] = None  # set once the plots are drawn; its place in the file stays
    summary["failed_jobs"] = {
        j.job_id: results[j.job_id].get("error", "") for j in jobs
        if results.get(j.job_id, {}).get("status") not in (*DONE_STATUSES, "skipped")
    }
    atomic_write_text(sweep_dir / "summary.csv", summary_csv(summary))
    write_plots(spec, summary, sweep_dir)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    atomic_write_json(sweep_dir / "summary.json", nan_to_none(summary))
    finish_meta(sweep_dir, meta, "failed" if summary["n_failed"] else "completed")
    return summary
