"""``frnn sweep``: the main job — the longest sequence length learned better than chance."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from frnn_cli import config
from frnn_cli.experiment import execute, plan, sweep
from frnn_cli.cli import streams
from frnn_cli.cli.common import EXECUTOR_HELP, SCHEDULER_HELP, console, err_console, folder_name, new_run_dir
from frnn_cli.cli.show import answer_lines, print_table, sweep_table
from frnn_cli.errors import BadInput, ExperimentFailed


def sweep_cmd(
    grid: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[KEY=VALUES ...]",
            help="Swept or fixed config keys. VALUES is one value, a list a,b,c, or an inclusive integer "
            "range a..b (T=1..20 is the twenty values 1 to 20; unlike Hydra's range, the end is included).",
        ),
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML with config keys, a 'sweep:' mapping of grids, 'seeds:' and 'axis:'.")
    ] = None,
    axis: Annotated[str | None, typer.Option(help="The key results are reported against. (default: T)")] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Training runs (seeds) per setting. (default: 3)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes of the local pool or of a local Dask cluster. (default: the number of cores)")] = None,
    executor_kind: Annotated[Literal["local", "dask"], typer.Option("--executor", help=EXECUTOR_HELP)] = "local",
    scheduler: Annotated[str | None, typer.Option(metavar="ADDRESS", help=SCHEDULER_HELP)] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Finish an interrupted sweep in this folder: run only the missing jobs.")
    ] = None,
    runs_dir: Annotated[str, typer.Option("--runs-dir", metavar="DIR", callback=folder_name, help="Parent folder of the sweep folder.")] = "runs",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and stop.")] = False,
) -> None:
    """Train at every sequence length T, tune the learning rate and steps, find the longest T learned better than chance.

    At each T every setting of the tuned keys (default: lr=0.1,0.3,1,3,9,27,81,243, from the stable regime to a blow-up) is trained with several seeds; each run keeps its best validation checkpoint (that tunes the number of steps). The setting with the best mean validation accuracy wins; its checkpoints are tested on fresh sequences against chance (one-sided binomial test per seed). T counts as learned when a majority of seeds beat chance at alpha.

    Example: frnn sweep T=1..20 lr=0.1,0.3,1 --workers 2   (on a cluster: --executor dask --scheduler tcp://head:8786)
    """
    words = list(grid or [])
    if resume is not None:
        if not resume.exists():
            raise BadInput(f"--resume: folder {str(resume)!r} does not exist")
        if not resume.is_dir():
            raise BadInput(f"--resume: {str(resume)!r} is a file; expected a sweep folder")
        stored = plan.load_spec(resume)
        requested = plan.resolve_spec(config_file, words, axis, seeds) if (words or config_file or axis or seeds) else None
        asked = config.given_keys(config_file, words) | {k for k, v in (("seeds", seeds), ("axis", axis)) if v is not None}
        spec = plan.check_resume(stored, requested, asked)
    else:
        spec = plan.resolve_spec(config_file, words, axis, seeds)
        for note in config.ignored_keys(config.given_keys(config_file, words), spec.base, spec.grid):
            err_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    jobs = plan.plan(spec)
    if scheduler is None:  # a remote cluster's memory is not this machine's
        plan.check_memory(jobs, workers or os.cpu_count() or 1)
    executor = execute.open_executor(executor_kind, scheduler, workers)
    on = " " + executor.description
    if resume is not None:
        todo = len(execute.pending_jobs(sweep.tasks(jobs, resume)))
        console.print(f"Resuming {resume}: {todo} of {len(jobs)} jobs still to run{on}")
    else:
        verb = "Dry run (nothing is run): would launch " if dry_run else "Launching "
        console.print(verb + plan.describe_plan(spec, len(jobs)) + on)
    if dry_run:
        executor.shutdown()  # a Dask executor is connected already
        return
    try:
        sweep_dir = resume if resume is not None else new_run_dir(runs_dir, "sweep")
        streams.mark_run_active()
    except BadInput:
        executor.shutdown()
        raise
    console.print(f"sweep folder: {sweep_dir}")

    interactive = err_console.is_terminal
    progress = Progress(
        TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), console=err_console, disable=not interactive,
    )
    state = {"next_plain": 0.0}

    def on_job(p: execute.SweepProgress) -> None:
        status = p.summary.get("status", "?")
        acc = (p.summary.get("best") or {}).get("val_acc")
        desc = f"last: {p.job.job_id} {status}" + (f", val acc {acc:.3f}" if isinstance(acc, float) else "")
        if interactive:
            progress.update(task, completed=p.done, description=desc)
        elif p.done / p.total >= state["next_plain"] or p.done == p.total:
            print(f"jobs done {p.done}/{p.total} ({desc})", file=sys.stderr, flush=True)
            state["next_plain"] = p.done / p.total + 0.1
        if status not in execute.DONE_STATUSES:
            err_console.print(f"job {p.job.job_id} failed: {p.summary.get('error', status)}")

    with progress:
        task = progress.add_task("", total=len(jobs), completed=len(jobs) - len(execute.pending_jobs(sweep.tasks(jobs, sweep_dir))))
        try:
            with executor:
                summary = sweep.run_sweep(spec, sweep_dir, executor, on_job, argv=sys.argv, resumed=resume is not None)
        except KeyboardInterrupt as exc:
            progress.stop()
            if str(exc):  # why, when it was not Ctrl-C (e.g. the Dask scheduler went away)
                err_console.print(str(exc), soft_wrap=True)
            err_console.print(f"interrupted: finished jobs are kept; to finish: frnn sweep --resume {sweep_dir}", soft_wrap=True)
            raise

    print_table(console, sweep_table(summary))
    for line in answer_lines(summary):
        console.print(line)
    console.print(f"{summary['n_diverged']} diverged jobs, {summary['n_failed']} failed; wall time {summary['seconds']:.1f} s")
    console.print(f"results: {sweep_dir}/summary.csv, plots in {sweep_dir}/plots/")
    if summary["n_failed"]:
        raise ExperimentFailed(f"{summary['n_failed']} of {summary['n_jobs']} jobs failed; see {sweep_dir}/summary.json")
