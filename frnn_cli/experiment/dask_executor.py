"""Running jobs on a Dask cluster: the ``concurrent.futures.Executor`` behind ``--executor dask``.

:func:`open_dask` connects to a running scheduler (``--scheduler tcp://head:8786``) or starts
a local cluster of worker processes, and returns a :class:`DaskExecutor`, which the job runner
(:func:`frnn_cli.experiment.execute.run_jobs`) uses like the local process pool. The work is
Dask's -- scheduling, retrying the tasks of a worker that died, reaching SLURM through
dask-jobqueue -- through its client's own executor (``client.get_executor(pure=False)``).
What this module adds is what frnn's contracts need around it:

* ``workers`` and ``description``, the cluster's live size (for the submission window) and
  the plan line;
* a scheduler that goes away mid-sweep stops the sweep like Ctrl-C (:class:`SchedulerLost`,
  a ``KeyboardInterrupt``), so the sweep records "interrupted" and ``--resume`` finishes it,
  instead of recording every job in flight as failed;
* bad input -- the extra not installed, an address nobody answers at -- is one line
  (:class:`frnn_cli.errors.BadInput`): at once for an unknown host or a refused port, within
  :data:`CONNECT_TIMEOUT_SECONDS` otherwise (:func:`_unreachable`).

Jobs write their folders themselves, on the worker; a remote worker must therefore see the
sweep folder at the same path (a shared file system), which :func:`run_job
<frnn_cli.experiment.execute.run_job>` checks. This module is imported only when Dask is asked
for; ``frnn`` never needs Dask otherwise.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from concurrent.futures import Executor, Future, InvalidStateError
from typing import Any, Callable

from frnn_cli.errors import BadInput, Note

#: Seconds to wait for a scheduler to answer before ``--scheduler`` is reported unreachable
#: (an unknown host or a refused port is reported at once, see :func:`_unreachable`).
CONNECT_TIMEOUT_SECONDS = 5.0
#: Seconds the worker count is cached (it is asked for before every submission).
WORKERS_REFRESH_SECONDS = 1.0
#: One BLAS thread per worker process, as in the local pool: the jobs are many and small,
#: and a BLAS thread pool per worker would only contend for the same cores.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
INSTALL = "pip install 'frnn[cluster]'"


class SchedulerLost(KeyboardInterrupt):
    """The client lost its scheduler mid-sweep: stop as if interrupted (exit 130, resumable).

    A ``KeyboardInterrupt`` so that the job runner, ``run_sweep``/``run_compare`` and the
    command line treat it exactly like Ctrl-C: jobs not started are dropped, meta.json says
    "interrupted", finished job folders are kept for ``--resume``. The message says why.
    """


def dask_setup(worker: Any) -> None:
    """Dask preload hook, run at the start of every worker of a local cluster (restarts too).

    Ctrl-C in the terminal reaches every process of frnn's process group, the local cluster's
    workers included; frnn alone handles it (as the local pool's workers do), so a worker
    ignores SIGINT instead of dying with a traceback. Dask calls this in the worker's
    main thread, where signal handlers can be set.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _blas_environment() -> dict[str, str | None]:
    """The BLAS thread settings of the process this runs in (run on each worker)."""
    return {name: os.environ.get(name) for name in ONE_BLAS_THREAD}


class DaskExecutor(Executor):
    """A Dask client's executor, with frnn's ``workers``, ``description`` and fault handling.

    ``submit`` hands the call to ``client.get_executor(pure=False)`` (``pure=False``: every
    call is a new task; Dask would otherwise run one of two identical calls and give both
    futures its result) and returns a future of its own that relays the outcome. A future
    that Dask cancels without frnn asking -- the client cancels every future when the
    connection to its scheduler breaks -- ends in :class:`SchedulerLost`, and so does a
    ``submit`` on a client that is no longer connected.

    ``shutdown`` closes the client (and the local cluster, if this executor started one)
    without waiting for running jobs: on Ctrl-C a remote worker still finishes the job it is
    running (Dask cannot stop a running task), a local cluster's workers are stopped; the
    jobs whose folders are incomplete run again on ``--resume``.

    While it is open, Dask's own log messages below CRITICAL are silenced in this process:
    frnn reports the faults that matter itself, in one line each, and a worker's death needs
    no report since Dask runs its jobs again.

    Parameters
    ----------
    client : distributed.Client
    cluster : distributed.LocalCluster, optional
        A cluster started for this executor; closed with it.

    Attributes
    ----------
    workers : int
        Jobs the cluster runs at once (the sum of its workers' threads), read from the
        scheduler at most once per :data:`WORKERS_REFRESH_SECONDS`.
    description : str
        "on a Dask cluster at tcp://... with N workers" or "on a local Dask cluster with N
        workers" (and the thread count when it differs from the worker count).
    address : str
        The scheduler's address.
    client : distributed.Client
    """

    def __init__(self, client: Any, cluster: Any = None) -> None:
        self.client = client
        self._cluster = cluster
        self._inner = client.get_executor(pure=False)
        self.address = str(client.scheduler.address)
        self._nthreads: dict[str, int] = {}
        self._counted_at = -float("inf")
        self._closed = False
        # Dask's loggers write through the handlers of the "distributed" logger (some set their
        # own level, so the parent's level would not do): raise those handlers' threshold.
        self._handlers = [(h, h.level) for h in logging.getLogger("distributed").handlers]
        for handler, _ in self._handlers:
            handler.setLevel(logging.CRITICAL)

    @property
    def workers(self) -> int:
        now = time.monotonic()
        if now - self._counted_at >= WORKERS_REFRESH_SECONDS and self.client.status == "running":
            try:
                self._nthreads = dict(self.client.nthreads())
            except Exception:  # the connection broke just now: keep the last count
                pass
            self._counted_at = now
        return sum(self._nthreads.values())

    @property
    def description(self) -> str:
        threads = self.workers
        n = len(self._nthreads)
        size = f"{n} worker{'' if n == 1 else 's'}" + ("" if threads == n else f" ({threads} threads)")
        where = "a local Dask cluster" if self._cluster is not None else f"a Dask cluster at {self.address}"
        return f"on {where} with {size}"

    def _lost(self) -> SchedulerLost:
        return SchedulerLost(f"lost the connection to the Dask scheduler at {self.address}")

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` as a Dask task; a future of its value.

        Raises
        ------
        SchedulerLost
            If the client is no longer connected to its scheduler.
        RuntimeError
            After :meth:`shutdown`.
        """
        if self._closed:
            raise RuntimeError("cannot submit jobs after shutdown")
        if self.client.status != "running":
            raise self._lost()
        inner = self._inner.submit(fn, *args, **kwargs)
        outer: Future = Future()

        def relay(done: Future) -> None:  # runs in the client's event-loop thread
            try:
                if done.cancelled():
                    if not outer.cancelled():  # cancelled by Dask, not by frnn: the scheduler is gone
                        outer.set_exception(self._lost())
                elif done.exception() is not None:
                    outer.set_exception(done.exception())
                else:
                    outer.set_result(done.result())
            except InvalidStateError:  # frnn cancelled ``outer`` meanwhile
                pass

        def cancel_inner(mine: Future) -> None:  # frnn cancelled a job not yet finished
            if mine.cancelled() and not self._closed and self.client.status == "running":
                inner.cancel()

        inner.add_done_callback(relay)
        outer.add_done_callback(cancel_inner)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close the client (and a local cluster started for it); safe to call twice.

        Does not wait for running jobs (see the class notes); ``wait`` and
        ``cancel_futures`` are accepted for the ``Executor`` interface.
        """
        if self._closed:
            return
        self._closed = True
        try:
            # Closing the client releases its tasks: the scheduler drops those not started.
            self.client.close(timeout=CONNECT_TIMEOUT_SECONDS)
            if self._cluster is not None:
                self._cluster.close(timeout=CONNECT_TIMEOUT_SECONDS)
        except Exception:  # the scheduler is gone already; nothing is left to close cleanly
            pass
        finally:
            for handler, level in self._handlers:
                handler.setLevel(level)


def _unreachable(address: str) -> str | None:
    """Why no Dask scheduler can answer at a tcp:// ``address``, or None if one may.

    One plain TCP connection, made before the client's, for two faults the client handles
    badly. It retries an unknown host or a refused port until its timeout (a scheduler may be
    starting), so a mistyped address took the whole :data:`CONNECT_TIMEOUT_SECONDS` to report;
    here they are reported at once. And it waits without a limit for the handshake of a server
    that accepts the connection but never answers -- an HTTP server such as the dashboard at
    :8787, a firewall that accepts -- so frnn hung; a Dask listener sends its handshake first,
    unasked, so here the first byte must come within :data:`CONNECT_TIMEOUT_SECONDS`. A
    scheduler that is only slow otherwise is left to the client and its timeout, as before.
    The scheduler logs the probe at INFO ("Connection from ... closed before handshake
    completed"). None also for an address the client should judge itself: another scheme
    (tls://, ...), no port.
    """
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address, strict=False)
        host, port = parse_host_port(location)
    except ValueError:
        return None
    if scheme != "tcp":
        return None
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS) as sock:
            try:
                first = sock.recv(1)
            except TimeoutError:
                return f"it accepts connections but sent no Dask handshake within {CONNECT_TIMEOUT_SECONDS:g} s"
    except OSError as exc:  # socket.gaierror, ConnectionRefusedError, TimeoutError, ...
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return None if first else "it closed the connection without a Dask handshake"


def open_dask(scheduler: str | None = None, workers: int | None = None) -> DaskExecutor:
    """Connect to the Dask scheduler at ``scheduler``, or start a local Dask cluster.

    Without an address: a ``LocalCluster`` of ``workers`` processes (default: the number of
    cores), one thread each, no dashboard, each worker with one BLAS thread
    (:data:`ONE_BLAS_THREAD`) and glibc's default malloc settings. With an address: a client of that cluster; if one of its
    workers runs more than one BLAS thread (Dask's nanny sets one by default; ``dask worker
    --no-nanny`` does not), a :class:`frnn_cli.errors.Note` says so.

    Parameters
    ----------
    scheduler : str, optional
        E.g. "tcp://head:8786".
    workers : int, optional
        Worker processes of a local cluster; not with ``scheduler``.

    Returns
    -------
    DaskExecutor (the caller shuts it down).

    Raises
    ------
    BadInput
        If dask[distributed] is not installed, if ``workers`` is given with ``scheduler``, or
        if no scheduler answers at ``scheduler``: at once if its host is unknown or its port
        refused (:func:`_unreachable`), else within :data:`CONNECT_TIMEOUT_SECONDS`.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BadInput(f"--executor dask: Dask is not installed; install it with: {INSTALL}") from None
    if scheduler is None:
        import dask

        n = workers or os.cpu_count() or 1
        # The nanny puts these variables into the environment before it starts a worker process
        # (BLAS reads them when NumPy loads). Only these: Dask's default list also sets
        # MALLOC_TRIM_THRESHOLD_, which fixes glibc's mmap threshold and made frnn's jobs
        # 20-30 % slower (measured; see README, "Running on a cluster").
        with dask.config.set({"distributed.nanny.pre-spawn-environ": dict(ONE_BLAS_THREAD)}):
            # No dashboard; the scheduler's small HTTP server (health checks) on any free port,
            # not on 8787, where another cluster would make Dask print a warning.
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   scheduler_kwargs={"dashboard_address": ":0"}, silence_logs=logging.CRITICAL,
                                   preload=[__name__])
        return DaskExecutor(Client(cluster, set_as_default=False), cluster=cluster)
    if workers is not None:
        raise BadInput(f"--workers: the cluster at {scheduler} has the workers started for it; "
                       "--workers sizes the local pool or a local Dask cluster only")
    reason = _unreachable(scheduler)
    if reason is None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=False)
        except Exception as exc:  # timed out, a malformed address, a reply that is not Dask's
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    if reason is not None:
        # Raised outside the except block, after a collection: a client that failed for a reason
        # other than OSError is left half-open, and the traceback would keep it alive until exit,
        # where its clean-up waits 10 s for an event loop that has stopped.
        import gc

        gc.collect()
        raise BadInput(f"--scheduler: no Dask scheduler at {scheduler} ({reason}); expected the address "
                       "that `dask scheduler` prints, e.g. tcp://head:8786")
    executor = DaskExecutor(client)
    try:
        many = sorted(w for w, env in client.run(_blas_environment).items()
                      if any(env.get(k) != v for k, v in ONE_BLAS_THREAD.items()))
    except Exception:  # a worker left meanwhile: the check is advice, not a requirement
        many = []
    if many:
        warnings.warn(Note(f"{len(many)} Dask worker(s) (e.g. {many[0]}) do not set OPENBLAS_NUM_THREADS=1: "
                           "start them with the nanny (the default) or export it, or each job may use several cores"))
    return executor
