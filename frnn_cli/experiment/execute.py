"""Running jobs: each job one ``frnn train`` run folder, on any ``concurrent.futures.Executor``.

:func:`run_jobs` is the one job runner of every experiment (``sweep``, ``compare``). It takes
(job, folder) pairs and an executor -- the local process pool :class:`LocalPool` by default --
and never knows where its jobs run: the choice is made once, at the command line. Each job is
a picklable call, :func:`run_job` (config as a plain dict, folder as a string), that writes its
own complete run folder (:func:`frnn_cli.runs.run_train_job`); a folder whose summary says
completed or diverged is done, and ``--resume`` runs only the others. Jobs are submitted in
the order given, a few more than there are workers at a time, so that a ``skip`` rule (compare's
"two failures in a row") can still stop jobs that have not started. No printing here: the
caller passes a callback. :func:`open_executor` makes the executor the command line asks for;
the Dask one lives in :mod:`frnn_cli.experiment.dask_executor`, imported only when asked for.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
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

    The folder must exist (:func:`run_jobs` makes it before submitting the job), and whatever
    it holds is deleted first: the job owns its folder. That makes a second attempt safe --
    Dask re-runs the job of a worker that died on another worker, into the same folder,
    which then holds the dead attempt's partial files (a half-grown ``metrics.csv``, a
    ``meta.json`` saying "running", a temporary file of an interrupted atomic write). A
    worker that cannot see the folder runs on a machine that does not share the sweep
    folder's file system; the job then fails with a message saying so, rather than writing
    its files where the sweep never reads them.

    Parameters
    ----------
    cfg_dict : dict
        The job's config as plain data (:func:`frnn_cli.config.to_dict`).
    run_dir : str
        The job's folder, an absolute path as seen by the machine that runs ``frnn``.

    Returns
    -------
    The job's summary dict (as in its ``summary.json``), or ``{"status": "failed",
    "error": "..."}`` if the folder is missing or training raised.
    """
    from frnn_cli.runs import run_train_job

    folder = Path(run_dir)
    try:
        if not folder.is_dir():
            import socket

            return {"status": "failed", "error": f"job folder {run_dir} does not exist on {socket.gethostname()}: "
                    "workers on other machines need the sweep folder on a shared file system, at the same path"}
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        return run_train_job(Config(**cfg_dict), folder, plots=False, durable=False)
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
    """What the callback receives after each finished or skipped job.

    Attributes
    ----------
    done : int
        Jobs finished or skipped so far (those found done on disk included).
    total : int
        All jobs.
    job : Job
    summary : dict
        The job's summary; ``{"status": "skipped", ...}`` for a job the skip rule stopped.
    """

    done: int
    total: int
    job: Job
    summary: dict[str, Any]


class LocalPool(Executor):
    """The default executor: a pool of worker processes on this machine.

    ``spawn`` start method (no inherited state), one BLAS thread per worker (set through the
    environment the workers inherit), Ctrl-C handled by the parent only, and a watchdog
    thread in each worker that ends it once its parent is gone. Workers start on demand,
    so a pool never starts more processes than it has jobs.

    Parameters
    ----------
    workers : int, >= 1
        Most worker processes at once.

    Attributes
    ----------
    workers : int
    description : str
        E.g. "on 2 workers", for the plan line.
    """

    def __init__(self, workers: int) -> None:
        self.workers = int(workers)
        self.description = f"on {self.workers} worker{'s' if self.workers > 1 else ''}"
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        """Schedule ``fn(*args, **kwargs)`` in a worker process; starts the pool on first use."""
        if self._pool is None:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = "1"  # inherited by the spawned workers
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init, initargs=(os.getpid(),),
            )
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the pool (if it was started), waiting for running jobs when ``wait``."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def pending_jobs(tasks: list[tuple[Job, Path]]) -> list[Job]:
    """The jobs whose folders are not complete (what a resume runs)."""
    return [job for job, folder in tasks if _load_done(folder) is None]


def run_jobs(
    tasks: list[tuple[Job, Path]],
    executor: Executor,
    callback: Callable[[SweepProgress], None] | None = None,
    skip: Callable[[Job, dict[str, dict[str, Any]]], str | None] | None = None,
    window: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the jobs whose folders are not already done; return every job's summary.

    A job whose folder holds a ``summary.json`` with status completed or diverged is not
    run again (this is what ``--resume`` relies on); any other folder is cleared and re-run.

    Parameters
    ----------
    tasks : list of (Job, folder)
        In the order to submit them (e.g. increasing T: cheap and decisive jobs first).
    executor : concurrent.futures.Executor
        Where jobs run: :class:`LocalPool`, or any executor whose futures return the
        value of :func:`run_job` (e.g. a Dask client's ``get_executor()``).
    callback : callable(SweepProgress), optional
        Called after each finished or skipped job, in the parent process.
    skip : callable(job, results so far) -> reason or None, optional
        Asked just before a job would be submitted; a reason skips it (its summary becomes
        ``{"status": "skipped", "reason": ...}``; no folder is made).
    window : int, optional
        Jobs in flight at once; default twice the executor's ``workers`` (read again before
        each submission, so a cluster that grows gets more jobs), or 2 if it has none.

    Returns
    -------
    dict job_id -> summary dict (skipped jobs included).

    Raises
    ------
    KeyboardInterrupt
        After cancelling the jobs not yet started and letting running ones finish; also
        when the executor's futures raise it (the Dask executor's ``SchedulerLost``).
    """
    results: dict[str, dict[str, Any]] = {}
    queue: list[tuple[Job, Path]] = []
    for job, folder in tasks:
        done = _load_done(folder)
        if done is not None:
            results[job.job_id] = done
        else:
            queue.append((job, folder))
    total = len(tasks)
    pending: dict[Future, Job] = {}

    def in_flight() -> int:
        # Read the executor's size again each time: a Dask cluster can grow or shrink mid-sweep.
        return window or 2 * max(1, int(getattr(executor, "workers", 2) or 1))

    def report(job: Job, summary: dict[str, Any]) -> None:
        results[job.job_id] = summary
        if callback is not None:
            callback(SweepProgress(len(results), total, job, summary))

    try:
        queue.reverse()  # pop() from the end takes the tasks in their given order
        while queue or pending:
            while queue and len(pending) < in_flight():
                job, folder = queue.pop()
                reason = skip(job, results) if skip is not None else None
                if reason:
                    report(job, {"status": "skipped", "reason": reason})
                    continue
                if folder.exists():
                    shutil.rmtree(folder)
                folder.mkdir(parents=True)
                # An absolute path: a remote worker does not share this process's working folder.
                pending[executor.submit(run_job, config.to_dict(job.cfg), str(folder.absolute()))] = job
            if not pending:
                continue
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                try:
                    summary = fut.result()
                except Exception as exc:  # the worker process died
                    summary = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                report(job, summary)
    except KeyboardInterrupt:
        for fut in pending:
            fut.cancel()
        raise
    return results


#: The executors ``--executor`` names.
EXECUTORS = ("local", "dask")


def open_executor(kind: str = "local", scheduler: str | None = None, workers: int | None = None) -> Executor:
    """The executor the command line asks for; the caller shuts it down (``with executor:``).

    Parameters
    ----------
    kind : {"local", "dask"}
        "local": a :class:`LocalPool` on this machine (started on first use). "dask": a Dask
        cluster -- the one at ``scheduler``, or a new local one (see
        :func:`frnn_cli.experiment.dask_executor.open_dask`). Dask is imported only here,
        only for "dask".
    scheduler : str, optional
        A Dask scheduler's address, e.g. "tcp://head:8786"; only with kind "dask".
    workers : int, optional
        Worker processes of the local pool or of a local Dask cluster (default: the number of
        cores); not with ``scheduler``, whose cluster has the workers it has.

    Returns
    -------
    concurrent.futures.Executor with attributes ``workers`` and ``description``.

    Raises
    ------
    BadInput
        An unknown kind, ``--scheduler`` without ``--executor dask``, or what
        :func:`~frnn_cli.experiment.dask_executor.open_dask` raises (extra not installed,
        scheduler unreachable).
    """
    from frnn_cli.errors import BadInput

    if kind not in EXECUTORS:
        raise BadInput(f"--executor: expected one of {', '.join(EXECUTORS)}, got {kind!r}")
    if kind == "local":
        if scheduler is not None:
            raise BadInput("--scheduler: a scheduler address needs --executor dask")
        return LocalPool(workers or os.cpu_count() or 1)
    from frnn_cli.experiment.dask_executor import open_dask

    return open_dask(scheduler, workers)
