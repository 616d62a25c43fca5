"""``frnn export``: copy a train, sweep or compare run folder into an MLflow tracking store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from frnn_cli.cli.common import console, err_console


def export_cmd(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A train, sweep or compare run folder.")],
    mlflow: Annotated[
        str,
        typer.Option("--mlflow", metavar="URI", help="MLflow tracking URI: sqlite:///mlflow.db (a file, created if "
                     "missing), the address of an MLflow server, http://host:5000, or a database, "
                     "postgresql://USER@HOST/DB (needs its driver)."),
    ],
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", metavar="NAME", help="MLflow experiment, created if missing. (default: frnn-<kind>)"),
    ] = None,
) -> None:
    r"""Export a run folder into MLflow, to filter, compare and plot runs in its web UI.

    A train run becomes one MLflow run; a sweep a parent run with one child per job; a compare a parent run with one sweep run per recipe and that recipe's jobs below it. Params are the resolved config, metrics every row of metrics.csv (and the sweep's per-T results), tags the status, verdict, max_T, frnn version, git commit and folder, artifacts the plots, summary.json and config files. Exporting again adds only what is new (a resumed sweep's jobs) and skips what is there. Jobs that did not finish are skipped with a note; a train, sweep or compare folder that did not finish itself is exported as it stands, with a note. Needs the optional extra: pip install 'frnn\[mlflow]'. MLflow's telemetry is switched off for the export.

    Example: frnn export runs/<sweep folder> --mlflow sqlite:///mlflow.db, then: mlflow ui --backend-store-uri sqlite:///mlflow.db
    """
    from frnn_cli.export.mlflow_store import export_folder  # MLflow is imported only when the command runs

    interactive = err_console.is_terminal
    progress = Progress(TextColumn("[bold]export"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                        TimeElapsedColumn(), console=err_console, disable=not interactive)
    task = progress.add_task("", total=None)

    def on_run(done: int, total: int, run_id: str, action: str) -> None:
        progress.update(task, completed=done, total=total, description=f"{action}: {run_id.rsplit('/', 1)[-1]}")

    with progress:
        report = export_folder(run_dir, mlflow, experiment, callback=on_run)

    for run_id, reason in report.skipped:
        err_console.print(f"skipped {run_id}: {reason}", soft_wrap=True, markup=False)
    for note in report.notes:
        err_console.print(f"note: {note}", soft_wrap=True, markup=False)
    console.print(
        f"exported {run_dir} to experiment [bold]{report.experiment_name}[/] (id {report.experiment_id}) "
        f"of {report.uri} in {report.seconds:.1f} s: {len(report.created)} runs created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped",
        soft_wrap=True,
    )
    console.print(f"MLflow run id: {report.root_run_id}", soft_wrap=True)
    if report.uri.startswith(("sqlite:", "postgresql", "mysql", "mssql")):
        console.print(f"to look: mlflow ui --backend-store-uri {report.uri}", soft_wrap=True, markup=False)
