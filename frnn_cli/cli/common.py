"""Helpers shared by the command modules: consoles, seeds, number formatting."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from frnn_cli.cli import streams
from frnn_cli.errors import BadInput
from frnn_cli.runs import create_run_dir

def _console(stderr: bool) -> Console:
    """A Console that wraps to the terminal, but never hard-wraps lines written to a log or pipe.

    Rich assumes 80 columns when the stream is not a terminal and would break paths and
    long lines there; a log should keep each line whole (tables still get room up to
    $COLUMNS, or 200 columns).
    """
    c = Console(stderr=stderr, highlight=False)
    if not c.is_terminal:
        c.soft_wrap = True
        c.width = int(os.environ.get("COLUMNS", "0") or 0) or 200
    return c


#: Results go to stdout; progress and notes to stderr so stdout stays parseable.
console = _console(stderr=False)
err_console = _console(stderr=True)


def parse_seed(text: str, flag: str = "--seed") -> int:
    """A seed from decimal, hex or octal text ("42", "010", "0xDEADBEEF", "0o17"); a non-negative integer.

    Read by the same YAML 1.2 rules as ``seed: ...`` in a config file, so ``--seed 010`` and
    ``seed: 010`` are both the decimal 10.

    Raises
    ------
    BadInput
        If the text is not a non-negative integer in decimal, 0x-hex or 0o-octal.
    """
    from frnn_cli.config import parse_scalar

    value = parse_scalar(str(text).strip())
    if isinstance(value, bool) or not isinstance(value, int):
        value = -1
    if value < 0:
        raise BadInput(f"{flag}: expected a non-negative integer (decimal, 0x-hex or 0o-octal), got {text!r}")
    return value


def positive(value: float) -> float:
    """Typer callback: the option's value must be a finite number > 0.

    Raises
    ------
    typer.BadParameter
        If the value is <= 0, infinite or NaN.
    """
    if not (value == value and 0 < value < float("inf")):
        raise typer.BadParameter(f"expected a finite number > 0, got {value:g}")
    return value


def folder_name(value: str | None) -> str | None:
    """Typer callback of ``--runs-dir``: refuse an empty name at once, before any plan is printed.

    Raises
    ------
    typer.BadParameter
        If the value is empty or blank (``Path("")`` would be the current folder).
    """
    if value is not None and not str(value).strip():
        raise typer.BadParameter("expected a folder name, got an empty string")
    return value


def new_run_dir(runs_dir: str | Path, kind: str) -> Path:
    """A new run folder under ``--runs-dir``, or :class:`BadInput` naming the flag.

    Raises
    ------
    BadInput
        If ``runs_dir`` is empty, or the folder cannot be created there (permissions, a
        file in the way, a read-only file system).
    """
    if not str(runs_dir).strip():  # Path("") would be "." -- the current folder, surely not meant
        raise BadInput("--runs-dir: expected a folder name, got an empty string")
    try:
        folder = create_run_dir(runs_dir, kind)
    except OSError as exc:
        raise BadInput(f"--runs-dir: cannot create a run folder in {str(runs_dir)!r}: {exc.strerror or exc}") from None
    streams.mark_run_active()
    return folder


#: Help of the --executor and --scheduler options (frnn sweep, frnn compare).
EXECUTOR_HELP = ("Where jobs run: local (a process pool on this machine) or dask (a Dask cluster: the one at "
                 "--scheduler, or else a local one of --workers processes; needs pip install 'frnn\\[cluster]').")
SCHEDULER_HELP = ("With --executor dask: the address of a running Dask scheduler, e.g. tcp://head:8786; its workers "
                  "must see the runs folder at the same path (a shared file system). (default: a local Dask cluster)")
