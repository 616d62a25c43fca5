"""Wall time of ``frnn sweep T=1..20`` (all other settings at their defaults) at 1 and 2 workers.

The sweep is what a user runs to answer the project's question; with the defaults it is
20 sequence lengths x 5 learning rates x 3 seeds = 300 training jobs. This script runs the
real command line, as a user would, once per worker count, each into a fresh temporary
runs folder (removed afterwards unless ``--keep``), and reports:

* the wall time of each run (``time.perf_counter`` around the subprocess, so it includes
  start-up, planning, the jobs, the summary and the plots), its exit code and job count;
* the speed-up of the larger worker count over 1 worker, against the ideal (the count);
* whether the runs' ``summary.csv`` files are byte-identical: job seeds come from
  ``np.random.SeedSequence``, so the result must not depend on the number of workers.

Usage::

    python benchmarks/bench_sweep.py                        # --workers 1 and 2, defaults
    python benchmarks/bench_sweep.py --workers 1,2 --json bench_sweep.json
    python benchmarks/bench_sweep.py --T 1..4 -- steps=200  # a quick one: extra key=value words after --

Exit codes: 0 done, 1 a sweep failed or the results differ between worker counts,
2 bad usage (``frnn`` not found, bad flags).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_T = "1..20"


def find_frnn() -> str | None:
    """The ``frnn`` console script next to this Python, else the one on PATH."""
    here = Path(sys.executable).with_name("frnn")
    return str(here) if here.exists() else shutil.which("frnn")


def run_sweep(frnn: str, workers: int, words: list[str], runs_dir: Path) -> dict:
    """Run one sweep; return wall seconds, exit code, job count and the summary.csv text."""
    cmd = [frnn, "sweep", *words, "--workers", str(workers), "--runs-dir", str(runs_dir)]
    env = dict(os.environ, COLUMNS="100")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    m = re.search(r"Launching (\d+) jobs", out)
    summaries = sorted(runs_dir.glob("*/summary.csv"))
    return {
        "workers": workers,
        "command": " ".join(["frnn", "sweep", *words, "--workers", str(workers)]),
        "wall_s": wall,
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
        description="Wall time of `frnn sweep T=1..20` with defaults at 1 and 2 workers.",
        epilog="example: python benchmarks/bench_sweep.py --workers 1,2 --json bench_sweep.json",
    )
    ap.add_argument("--workers", type=_workers_list, default=[1, 2], help="worker counts, e.g. 1,2")
    ap.add_argument("--T", default=DEFAULT_T, help="the sweep's T values (default 1..20)")
    ap.add_argument("--frnn", help="path of the frnn executable (default: next to this Python, else PATH)")
    ap.add_argument("--keep", action="store_true", help="keep the sweep folders (their path is printed)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    ap.add_argument("extra", nargs="*", help="extra key=value words passed to frnn sweep (after --)")
    args = ap.parse_args(argv)
    frnn = args.frnn or find_frnn()
    if frnn is None or not Path(frnn).exists() and shutil.which(frnn) is None:
        ap.error("cannot find the frnn executable; install the project (pip install -e .) or pass --frnn PATH")

    words = [f"T={args.T}", *args.extra]
    base = Path(tempfile.mkdtemp(prefix="frnn-bench-sweep-"))
    results = []
    try:
        for w in args.workers:
            r = run_sweep(frnn, w, words, base / f"workers{w}")
            results.append(r)
            print(f"  {r['command']}: {r['wall_s']:.1f} s, exit {r['exit_code']}", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"sweep folders kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)

    jobs = next((r["jobs"] for r in results if r["jobs"]), None)
    print(f"# frnn sweep {' '.join(words)} (defaults otherwise): {jobs} jobs, {os.cpu_count()} cores")
    print("| workers | wall s | s per job | speed-up vs 1 worker | exit |")
    print("|---:|---:|---:|---:|---:|")
    t1 = next((r["wall_s"] for r in results if r["workers"] == 1 and r["exit_code"] == 0), None)
    for r in results:
        per_job = f"{r['wall_s'] / r['jobs']:.2f}" if r["jobs"] else "-"
        speedup = f"{t1 / r['wall_s']:.2f}x (ideal {r['workers']}x)" if t1 else "-"
        print(f"| {r['workers']} | {r['wall_s']:.1f} | {per_job} | {speedup} | {r['exit_code']} |")
    failed = [r for r in results if r["exit_code"] != 0]
    for r in failed:
        tail = " / ".join(r["output_tail"])
        print(f"sweep at --workers {r['workers']} exited {r['exit_code']}: {tail}", file=sys.stderr)
    csvs = {r["summary_csv"] for r in results if r["summary_csv"] is not None}
    same = len(csvs) == 1 and len(results) > 1 and not failed
    if len(results) > 1:
        print(f"\nsummary.csv identical across worker counts: {'yes' if same else 'NO'}")
    if args.json:
        with open(args.json, "w") as f:
            payload = {"jobs": jobs, "cores": os.cpu_count(), "runs": results, "identical_results": same}
            json.dump(payload, f, indent=1)
        print(f"wrote {args.json}")
    return 1 if failed or (len(results) > 1 and not same) else 0


if __name__ == "__main__":
    sys.exit(main())
