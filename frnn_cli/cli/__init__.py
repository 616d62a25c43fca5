"""The ``frnn`` command line (Typer app).

Each command lives in its own module (``cmd_*.py``): it parses its arguments, calls one
library function and shows the result with Rich. Exit codes, for every command:
0 success, 1 the experiment failed, 2 bad usage or bad input (one line on stderr, no
traceback), 130 interrupted.

This module imports nothing heavy, so that Ctrl-C while NumPy, SciPy and Typer are still
loading (the first second or so) also ends with exit 130 and one line, not a traceback.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    """Console-script entry point ``frnn``."""
    try:
        from frnn_cli.cli.root import main as run
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    run()


def __getattr__(name: str) -> Any:
    if name == "app":  # the Typer app, for typer.testing.CliRunner
        from frnn_cli.cli.root import app

        return app
    raise AttributeError(name)


__all__ = ["app", "main"]
