"""The local process pool against a local Dask cluster: per-job overhead, and speed-up from 1 to 2 workers.

Two measurements, each interleaving the executors so that load from other processes on a
shared machine falls on both alike:

``overhead``
    Both executors open at once in this process (``LocalPool(W)`` and a local Dask cluster of
    W worker processes, one thread each), each warmed by one full round of the jobs, then
    ``--repeats`` rounds of the same N short jobs through
    :func:`frnn_cli.experiment.execute.run_jobs` into fresh folders, alternating which
    executor goes first. Reports start-up (opening the executor plus the cold first round),
    then wall milliseconds per job per executor (median, min-max over rounds), and the Dask
    path's extra wall time per job, overall and per worker (what one worker spends on a job
    beyond the local pool's cost). Both executors' job summaries must be identical.

``speedup``
    The real command line, ``frnn sweep <grid> --executor E --workers W`` for E in
    local, dask and W in 1, 2, ``--repeats`` rounds, the order rotating each round; wall time
    per run (``time.perf_counter`` around the subprocess: start-up, jobs, summary and plots
    included), the speed-up of 2 workers over 1 per executor and round, and whether every
    run's ``summary.csv`` is byte-identical.

Usage::

    python benchmarks/bench_executors.py overhead                   # T=1..4 lr=1 steps=20 eval_every=20, 50 seeds
    python benchmarks/bench_executors.py speedup --grid T=1..20     # the default sweep: 480 jobs per run (8 lr x 20 T x 3 seeds, float32)
    python benchmarks/bench_executors.py speedup --grid T=1..6 --repeats 3 --json out.json

Needs the cluster extra (``pip install -e '.[cluster]'``). Exit codes: 0 done, 1 a run failed
or results differ between executors, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OVERHEAD_GRID = ["T=1..4", "lr=1", "steps=20", "eval_every=20"]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def overhead(words: list[str], seeds: int, workers: int, repeats: int) -> dict:
    """Per-job wall time of each executor on the same short jobs, interleaved (see the module doc)."""
    from frnn_cli.experiment import execute, plan, sweep
    from frnn_cli.experiment.dask_executor import open_dask

    jobs = plan.plan(plan.resolve_spec(None, words, None, seeds))
    base = Path(tempfile.mkdtemp(prefix="frnn-bench-executors-"))
    times: dict[str, list[float]] = {"local": [], "dask": []}
    startup: dict[str, float] = {}
    results: dict[str, dict] = {}
    try:
        opened = {}
        for name in ("local", "dask"):
            t0 = time.perf_counter()
            ex = execute.open_executor(name, None, workers) if name == "local" else open_dask(None, workers)
            results[name] = execute.run_jobs(sweep.tasks(jobs, base / f"warm-{name}"), ex)  # cold round
            startup[name] = time.perf_counter() - t0
            opened[name] = ex
        for rep in range(repeats):
            order = ("local", "dask") if rep % 2 == 0 else ("dask", "local")
            for name in order:
                folder = base / f"{name}-{rep}"
                t0 = time.perf_counter()
                execute.run_jobs(sweep.tasks(jobs, folder), opened[name])
                times[name].append(time.perf_counter() - t0)
                shutil.rmtree(folder)
            print(f"  round {rep + 1}: local {times['local'][-1]:.2f} s, dask {times['dask'][-1]:.2f} s",
                  file=sys.stderr, flush=True)
        for ex in opened.values():
            ex.shutdown()
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def strip(r: dict) -> dict:  # the fields that do not depend on timing
        return {k: {f: v for f, v in s.items() if f not in ("seconds", "time_s")} for k, s in r.items()}

    n = len(jobs)
    ms = {k: [1000 * t / n for t in v] for k, v in times.items()}
    extra = [d - l for d, l in zip(ms["dask"], ms["local"])]
    print(f"# {n} jobs (frnn sweep {' '.join(words)} --seeds {seeds}), {workers} workers, {repeats} interleaved rounds")
    print("| executor | start-up + cold round s | wall ms per job, median (min-max) |")
    print("|---|---:|---:|")
    for k in ("local", "dask"):
        print(f"| {k} | {startup[k]:.1f} | {_spread(ms[k])} |")
    print(f"\nDask's extra wall time per job: {_spread(extra)} ms; per worker (x{workers}): "
          f"{_spread([e * workers for e in extra])} ms")
    same = strip(results["local"]) == strip(results["dask"])
    print(f"job summaries identical: {'yes' if same else 'NO'}")
    return {"jobs": n, "workers": workers, "startup_s": startup, "wall_s": times, "ms_per_job": ms,
            "extra_ms_per_job": extra, "identical": same}


def speedup(frnn: str, grid: list[str], repeats: int) -> dict:
    """Wall time of ``frnn sweep`` per executor and worker count, interleaved (see the module doc)."""
    configs = [(e, w) for e in ("local", "dask") for w in (1, 2)]
    base = Path(tempfile.mkdtemp(prefix="frnn-bench-executors-"))
    runs = []
    try:
        for rep in range(repeats):
            shift = rep % len(configs)
            for executor, workers in configs[shift:] + configs[:shift]:
                runs_dir = base / f"{executor}-{workers}-{rep}"
                cmd = [frnn, "sweep", *grid, "--executor", executor, "--workers", str(workers), "--runs-dir", str(runs_dir)]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                      env=dict(os.environ, COLUMNS="100"))
                wall = time.perf_counter() - t0
                m = re.search(r"Launching (\d+) jobs", proc.stdout)
                csv = next(iter(runs_dir.glob("*/summary.csv")), None)
                runs.append({"round": rep + 1, "executor": executor, "workers": workers, "wall_s": wall,
                             "exit_code": proc.returncode, "jobs": int(m.group(1)) if m else None,
                             "summary_csv": csv.read_text() if csv else None})
                print(f"  round {rep + 1}: --executor {executor} --workers {workers}: {wall:.1f} s, exit {proc.returncode}",
                      file=sys.stderr, flush=True)
                shutil.rmtree(runs_dir, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    jobs = next((r["jobs"] for r in runs if r["jobs"]), None)
    print(f"# frnn sweep {' '.join(grid)}: {jobs} jobs, {repeats} rounds, order rotating")
    print("| executor | workers | wall s per round | speed-up 1 -> 2 workers per round |")
    print("|---|---:|---|---|")
    for e in ("local", "dask"):
        for w in (1, 2):
            walls = [r["wall_s"] for r in runs if r["executor"] == e and r["workers"] == w]
            ups = ""
            if w == 2:
                ones = [r["wall_s"] for r in runs if r["executor"] == e and r["workers"] == 1]
                ups = ", ".join(f"{a / b:.2f}x" for a, b in zip(ones, walls))
            print(f"| {e} | {w} | {', '.join(f'{x:.1f}' for x in walls)} | {ups} |")
    ok = all(r["exit_code"] == 0 for r in runs)
    same = ok and len({r["summary_csv"] for r in runs}) == 1
    print(f"\nsummary.csv identical across executors and worker counts: {'yes' if same else 'NO'}")
    return {"jobs": jobs, "runs": runs, "identical": same}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Local process pool vs local Dask cluster: per-job overhead and speed-up.",
                                 epilog="example: python benchmarks/bench_executors.py overhead --seeds 50")
    ap.add_argument("what", choices=("overhead", "speedup"))
    ap.add_argument("--seeds", type=int, default=50, help="overhead: seeds per T (default 50: 200 jobs)")
    ap.add_argument("--workers", type=int, default=2, help="overhead: workers of each executor (default 2)")
    ap.add_argument("--grid", default="T=1..20", help="speedup: the sweep's words, space separated (default T=1..20)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default: overhead 5, speedup 1)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = ap.parse_args(argv)
    try:
        import distributed  # noqa: F401
    except ImportError:
        ap.error("needs the cluster extra: pip install -e '.[cluster]'")
    if args.what == "overhead":
        out = overhead(OVERHEAD_GRID, args.seeds, args.workers, args.repeats or 5)
    else:
        here = Path(sys.executable).with_name("frnn")
        frnn = str(here) if here.exists() else shutil.which("frnn")
        if frnn is None:
            ap.error("cannot find the frnn executable; install the project (pip install -e .)")
        out = speedup(frnn, args.grid.split(), args.repeats or 1)
    out["machine"] = {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    return 0 if out["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
