"""Wall time of ``frnn sweep T=1..20`` (the default sweep) per worker count and dtype.

The sweep is what a user runs to answer the project's question. By default this script times
frnn's own default grid and dtype, read from :mod:`frnn_cli.experiment.plan` (``DEFAULT_LR``,
``SWEEP_DEFAULTS``) and written out on the command line and in the report: at the time of
writing 20 sequence lengths x 8 learning rates (0.1 .. 243) x 3 seeds = 480 training jobs in
float32. ``--lr 0.03,0.1,0.3,1,3 --dtype float64`` times the earlier default (300 jobs), the
grid of the figures in benchmarks/README.md that name it. This script runs the real command
line, as a user would, once per worker count and dtype, each into a fresh temporary runs
folder (removed afterwards unless ``--keep``), and reports:

* the machine: CPU model (/proc/cpuinfo), the SIMD level NumPy dispatches to, and the
  load average before and after each run (other processes on a shared machine slow it);
* the wall time of each run (``time.perf_counter`` around the subprocess, so it includes
  start-up, planning, the jobs, the summary and the plots), its exit code and job count,
  and the CPU seconds of the command and its workers (``getrusage``): on a machine shared
  with other work the wall time grows with the load, the CPU time much less, so CPU
  seconds / workers estimates the wall time on a quiet machine;
* the speed-up of the larger worker count over 1 worker, against the ideal (the count);
* whether the runs' ``summary.csv`` files are byte-identical across worker counts: job
  seeds come from ``np.random.SeedSequence``, so the result must not depend on them;
* whether the verdicts (learned or not at each T, and the longest T learned) are the same
  in every dtype.

Usage::

    python benchmarks/bench_sweep.py                        # frnn sweep T=1..20's grid, --workers 1 and 2, float32
    python benchmarks/bench_sweep.py --lr 0.03,0.1,0.3,1,3 --dtype float64   # the earlier default (300 jobs)
    python benchmarks/bench_sweep.py --workers 2 --dtype float64,float32 --json bench_sweep.json
    python benchmarks/bench_sweep.py --T 1..4 -- steps=200  # a quick one: extra key=value words after --
    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" python benchmarks/bench_sweep.py ...  # AVX2 paths

Exit codes: 0 done, 1 a sweep failed or the results differ between worker counts,
2 bad usage (``frnn`` not found, bad flags).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from frnn_cli.experiment import plan

DEFAULT_T = "1..20"
#: frnn sweep's own defaults, so that the benchmark times the sweep a user runs.
DEFAULT_LR = ",".join(f"{lr:g}" for lr in plan.DEFAULT_LR)
DEFAULT_DTYPE = plan.SWEEP_DEFAULTS["dtype"]


def machine() -> str:
    """CPU model and NumPy's SIMD dispatch level, one line."""
    import numpy as np

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        found = np.show_config(mode="dicts")["SIMD Extensions"]["found"]
    except (TypeError, KeyError):
        found = []
    off = os.environ.get("NPY_DISABLE_CPU_FEATURES")
    simd = f"NumPy {np.__version__} SIMD {found[-1] if found else 'baseline'}" + (f" (NPY_DISABLE_CPU_FEATURES={off!r})" if off else "")
    return f"{cpu}, {os.cpu_count()} cores, {simd}"


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def find_frnn() -> str | None:
    """The ``frnn`` console script next to this Python, else the one on PATH."""
    here = Path(sys.executable).with_name("frnn")
    return str(here) if here.exists() else shutil.which("frnn")


def run_sweep(frnn: str, workers: int, words: list[str], runs_dir: Path) -> dict:
    """Run one sweep; return wall seconds, exit code, job count and the summary.csv text."""
    cmd = [frnn, "sweep", *words, "--workers", str(workers), "--runs-dir", str(runs_dir)]
    env = dict(os.environ, COLUMNS="100")
    load_before = load_average()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of frnn and of its worker processes (reaped by it, so counted here).
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    out = proc.stdout + proc.stderr
    m = re.search(r"Launching (\d+) jobs", out)
    summaries = sorted(runs_dir.glob("*/summary.csv"))
    verdicts = None
    jsons = sorted(runs_dir.glob("*/summary.json"))
    if jsons:
        s = json.loads(jsons[-1].read_text())
        verdicts = {"max_T": s.get("max_T"), "learned": {str(r[s["axis"]]): r["learned"] for r in s["rows"]}}
    return {
        "workers": workers,
        "load_before": load_before,
        "load_after": load_average(),
        "verdicts": verdicts,
        "command": " ".join(["frnn", "sweep", *words, "--workers", str(workers)]),
        "wall_s": wall,
        "cpu_s": cpu,
        "exit_code": proc.returncode,
        "jobs": int(m.group(1)) if m else None,
        "summary_csv": summaries[-1].read_text() if summaries else None,
        "output_tail": out.strip().splitlines()[-3:],
    }


def _workers_list(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return vals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=f"Wall time of `frnn sweep T=1..20` (lr={DEFAULT_LR}, dtype={DEFAULT_DTYPE}) per worker count and dtype.",
        epilog="example: python benchmarks/bench_sweep.py --workers 1,2 --json bench_sweep.json",
    )
    ap.add_argument("--workers", type=_workers_list, default=[1, 2], help="worker counts, e.g. 1,2")
    ap.add_argument("--T", default=DEFAULT_T, help="the sweep's T values (default 1..20)")
    ap.add_argument("--lr", default=DEFAULT_LR, help=f"the sweep's learning rates (default frnn sweep's: {DEFAULT_LR})")
    ap.add_argument("--dtype", default=DEFAULT_DTYPE,
                    help=f"dtypes to time, e.g. float64,float32 (default frnn sweep's: {DEFAULT_DTYPE})")
    ap.add_argument("--frnn", help="path of the frnn executable (default: next to this Python, else PATH)")
    ap.add_argument("--keep", action="store_true", help="keep the sweep folders (their path is printed)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    ap.add_argument("extra", nargs="*", help="extra key=value words passed to frnn sweep (after --)")
    args = ap.parse_args(argv)
    frnn = args.frnn or find_frnn()
    if frnn is None or not Path(frnn).exists() and shutil.which(frnn) is None:
        ap.error("cannot find the frnn executable; install the project (pip install -e .) or pass --frnn PATH")

    dtypes = args.dtype.split(",")
    if any(d not in ("float64", "float32") for d in dtypes):
        ap.error(f"--dtype: expected float64 and/or float32, got {args.dtype!r}")
    words = [f"T={args.T}", f"lr={args.lr}", *args.extra]
    base = Path(tempfile.mkdtemp(prefix="frnn-bench-sweep-"))
    results = []
    try:
        for dt in dtypes:
            for w in args.workers:
                r = run_sweep(frnn, w, [*words, f"dtype={dt}"], base / f"{dt}-workers{w}")
                r["dtype"] = dt
                results.append(r)
                print(f"  {r['command']}: {r['wall_s']:.1f} s, exit {r['exit_code']}, load {r['load_before']} -> "
                      f"{r['load_after']}", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"sweep folders kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)

    jobs = next((r["jobs"] for r in results if r["jobs"]), None)
    print(f"# frnn sweep {' '.join(words)} (defaults otherwise): {jobs} jobs; {machine()}")
    print("| dtype | workers | wall s | CPU s | s per job | speed-up vs 1 worker | load average before -> after | exit |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for r in results:
        t1 = next((q["wall_s"] for q in results if q["dtype"] == r["dtype"] and q["workers"] == 1
                   and q["exit_code"] == 0), None)
        per_job = f"{r['wall_s'] / r['jobs']:.2f}" if r["jobs"] else "-"
        speedup = f"{t1 / r['wall_s']:.2f}x (ideal {r['workers']}x)" if t1 else "-"
        print(f"| {r['dtype']} | {r['workers']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {per_job} | {speedup} | "
              f"{r['load_before']} -> {r['load_after']} | {r['exit_code']} |")
    failed = [r for r in results if r["exit_code"] != 0]
    for r in failed:
        tail = " / ".join(r["output_tail"])
        print(f"sweep at --workers {r['workers']} exited {r['exit_code']}: {tail}", file=sys.stderr)
    same = not failed
    for dt in dtypes:
        runs = [r for r in results if r["dtype"] == dt]
        csvs = {r["summary_csv"] for r in runs if r["summary_csv"] is not None}
        if len(runs) > 1:
            same = same and len(csvs) == 1
            print(f"\n{dt}: summary.csv identical across worker counts: {'yes' if len(csvs) == 1 else 'NO'}")
    if len(dtypes) > 1:
        verdicts = [json.dumps(r["verdicts"], sort_keys=True) for r in results if r["verdicts"] is not None]
        print(f"verdicts (learned per T, max_T) equal in {' and '.join(dtypes)}: "
              f"{'yes' if len(set(verdicts)) == 1 and len(verdicts) == len(results) else 'NO'}")
    if args.json:
        with open(args.json, "w") as f:
            payload = {"jobs": jobs, "cores": os.cpu_count(), "runs": results, "identical_results": same}
            json.dump(payload, f, indent=1)
        print(f"wrote {args.json}")
    return 1 if failed or not same else 0


if __name__ == "__main__":
    sys.exit(main())
