"""Running a sweep's jobs: each job one ``frnn train`` run folder, in a pool of worker processes.

Jobs run in a process pool (``spawn``, one BLAS thread per worker). Each job writes its own
complete run folder under ``<sweep folder>/jobs/<job id>/`` (:func:`frnn_cli.runs.run_train_job`);
a folder whose summary says completed or diverged is done, and ``--resume`` runs only the
others. Workers watch their parent and exit when it dies. No printing here: the caller
passes a callback.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frnn_cli import config
from frnn_cli.config import Config
from frnn_cli.experiment.plan import Job

#: A job summary with one of these statuses is done; any other job folder is run again.
DONE_STATUSES = ("completed", "diverged")

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


