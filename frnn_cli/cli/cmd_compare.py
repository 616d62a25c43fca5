"""``frnn compare``: the remedies side by side -- one table of the longest T learned per recipe."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from frnn_cli.cli import streams
from frnn_cli.cli.common import EXECUTOR_HELP, SCHEDULER_HELP, console, err_console, folder_name, new_run_dir
from frnn_cli.cli.show import compare_table, fmt, print_table
from frnn_cli.errors import BadInput, ExperimentFailed
from frnn_cli.experiment import compare, execute
from frnn_cli.experiment.plan import check_memory

def compare_cmd(
    words: Annotated[
        list[str] | None,
        typer.Argument(metavar="[T=VALUES] [key=value ...]",
                       help="The T grid (a list or an inclusive range a..b; default 1,2,3,4,5,10,20,50,100) and single "
                            "config values applied to every recipe (e.g. steps=3000)."),
    ] = None,
    recipe_names: Annotated[
        str | None, typer.Option("--recipes", metavar="NAMES", help="Recipes to compare, comma separated. (default: all)")
    ] = None,
    recipes_file: Annotated[
        Path | None, typer.Option("--recipes-file", metavar="FILE",
                                  help="A YAML file of recipes (the format of configs/recipes.yaml); adds or replaces by name.")
    ] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Training runs (seeds) per setting. (default: 3)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes of the local pool or of a local Dask cluster. (default: the number of cores)")] = None,
    executor_kind: Annotated[Literal["local", "dask"], typer.Option("--executor", help=EXECUTOR_HELP)] = "local",
    scheduler: Annotated[str | None, typer.Option(metavar="ADDRESS", help=SCHEDULER_HELP)] = None,
    no_skip: Annotated[bool, typer.Option("--no-skip", help="Run every T, also after a recipe failed at two T in a row.")] = False,
    resume: Annotated[Path | None, typer.Option(metavar="DIR", help="Finish an interrupted comparison in this folder.")] = None,
    runs_dir: Annotated[str, typer.Option("--runs-dir", metavar="DIR", callback=folder_name, help="Parent folder of the compare folder.")] = "runs",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and stop.")] = False,
) -> None:
    """Run every recipe's sweep with one protocol and compare the longest T each learns better than chance.

    A recipe is a named change to the reference setting with its own tuned grid (configs/recipes.yaml: reference, momentum, clip, adam, glorot, orthogonal, large_init, large_lr, reservoir). Every recipe sees the same seeds, validation and test sequences, and verdict as frnn sweep. Once a recipe fails at two T in a row its larger T are skipped (--no-skip runs them). Writes runs/<time>-compare-<id>/ with compare.yaml, one sweep folder per recipe under recipes/, compare.csv, summary.json and plots/. Exit 1 if a job failed.

    Example: frnn compare --recipes reference,adam,clip T=1..10   (on a cluster: --executor dask --scheduler tcp://head:8786)
    """
    words = list(words or [])
    names = [n.strip() for n in recipe_names.split(",")] if recipe_names is not None else None
    if resume is not None:
        if not resume.is_dir():
            raise BadInput(f"--resume: {str(resume)!r} is not a folder; expected a compare folder")
        stored = compare.load_spec(resume)
        asked = words or names is not None or recipes_file is not None or seeds is not None or no_skip
        requested = compare.resolve_spec(words, names, recipes_file, seeds, not no_skip) if asked else None
        given = {w.split("=", 1)[0] for w in words if "=" in w}
        asked = ({"T"} & given) | ({"overrides"} if given - {"T"} else set()) | {
            part for part, set_ in (("seeds", seeds is not None), ("skip", no_skip),
                                    ("recipes", names is not None or recipes_file is not None)) if set_}
        spec = compare.check_resume(stored, requested, asked)
    else:
        spec = compare.resolve_spec(words, names, recipes_file, seeds, not no_skip)
    folder_for_plan = resume if resume is not None else Path(runs_dir or ".")
    p = compare.make_plan(spec, folder_for_plan)
    if scheduler is None:  # a remote cluster's memory is not this machine's
        check_memory([job for job, _ in p.tasks], workers or os.cpu_count() or 1)
    executor = execute.open_executor(executor_kind, scheduler, workers)
    if resume is not None:
        todo = len(execute.pending_jobs(p.tasks))
        console.print(f"Resuming {resume}: {todo} of {len(p.tasks)} jobs not done (some may be skipped) {executor.description}")
    else:
        verb = "Dry run (nothing is run): would launch " if dry_run else "Launching "
        console.print(verb + compare.describe_plan(spec, p) + " " + executor.description, markup=False, highlight=False)
        replaced = compare.replaced_settings(spec)
        if replaced:
            console.print("your key=value replaces recipe settings: " + ", ".join(replaced), markup=False, highlight=False)
    if dry_run:
        for r in spec.recipes:
            grid = ", ".join(f"{k}={','.join(fmt(v) for v in vs)}" for k, vs in r.tune.items())
            console.print(f"  {r.name}: {r.description}; tunes {grid or 'nothing'}", markup=False, highlight=False)
        executor.shutdown()  # a Dask executor is connected already
        return
    try:
        folder = resume if resume is not None else new_run_dir(runs_dir, "compare")
        streams.mark_run_active()
    except BadInput:
        executor.shutdown()
        raise
    console.print(f"compare folder: {folder}")

    interactive = err_console.is_terminal
    progress = Progress(TextColumn("[bold]compare"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                        TimeElapsedColumn(), console=err_console, disable=not interactive)
    state = {"next_plain": 0.0}

    def on_job(pr: execute.SweepProgress) -> None:
        status = pr.summary.get("status", "?")
        desc = f"last: T={pr.job.cfg.T} {pr.job.job_id} {status}"
        if interactive:
            progress.update(task, completed=pr.done, description=desc)
        elif pr.done / pr.total >= state["next_plain"] or pr.done == pr.total:
            print(f"jobs done or skipped {pr.done}/{pr.total} ({desc})", file=sys.stderr, flush=True)
            state["next_plain"] = pr.done / pr.total + 0.1
        if status not in (*execute.DONE_STATUSES, "skipped"):
            err_console.print(f"job {pr.job.job_id} failed: {pr.summary.get('error', status)}")

    with progress:
        task = progress.add_task("", total=len(p.tasks))
        try:
            with executor:
                summary = compare.run_compare(spec, folder, executor, on_job, argv=sys.argv, resumed=resume is not None)
        except KeyboardInterrupt as exc:
            progress.stop()
            if str(exc):  # why, when it was not Ctrl-C (e.g. the Dask scheduler went away)
                err_console.print(str(exc), soft_wrap=True)
            err_console.print(f"interrupted: finished jobs are kept; to finish: frnn compare --resume {folder}",
                              soft_wrap=True)
            raise

    sweeps = {r.name: json.loads((compare.recipe_dir(folder, r.name) / "summary.json").read_text()) for r in spec.recipes}
    names = [r.name for r in spec.recipes]
    print_table(console, compare_table(names, spec.T, summary, sweeps))
    jobs = summary["jobs"]
    console.print(f"{jobs['run']} of {jobs['all']} jobs run, {jobs['skipped']} skipped ({summary['saved_by_skip']:.0%} "
                  f"saved by the skip rule); wall time {summary['seconds']:.0f} s", highlight=False)
    console.print(f"results: {folder}/compare.csv, summary.json; plots in {folder}/plots/; one sweep per recipe in "
                  f"{folder}/recipes/", highlight=False)
    failed = sum(v["jobs_failed"] for v in summary["recipes"].values())
    if failed:
        raise ExperimentFailed(f"{failed} jobs failed; see the summary.json of each recipe in {folder}/recipes/")
