"""Helpers shared by the command modules: consoles, seeds, number formatting."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from frnn_cli.errors import BadInput
from frnn_cli.runs import create_run_dir

#: Results go to stdout; progress and notes to stderr so stdout stays parseable.
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def parse_seed(text: str, flag: str = "--seed") -> int:
    """A seed from decimal or hex text ("42", "0xDEADBEEF"); a non-negative integer.

    Raises
    ------
    BadInput
        If the text is not a non-negative integer in decimal or 0x-hex.
    """
    try:
        value = int(str(text).strip(), 0)
    except ValueError:
        value = -1
    if value < 0:
        raise BadInput(f"{flag}: expected a non-negative integer (decimal or 0x-hex), got {text!r}")
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


def new_run_dir(runs_dir: Path, kind: str) -> Path:
    """A new run folder under ``--runs-dir``, or :class:`BadInput` naming the flag.

    Raises
    ------
    BadInput
        If ``runs_dir`` is empty, or the folder cannot be created there (permissions, a
        file in the way, a read-only file system).
    """
    if not str(runs_dir).strip():
        raise BadInput("--runs-dir: expected a folder name, got an empty string")
    try:
        return create_run_dir(runs_dir, kind)
    except OSError as exc:
        raise BadInput(f"--runs-dir: cannot create a run folder in {str(runs_dir)!r}: {exc.strerror or exc}") from None
