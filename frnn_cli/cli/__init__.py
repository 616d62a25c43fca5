"""The ``frnn`` command line (Typer app).

Each command lives in its own module (``cmd_*.py``): it parses its arguments, calls one
library function and shows the result with Rich. Exit codes, for every command:
0 success, 1 the experiment failed, 2 bad usage or bad input (one line on stderr, no
traceback), 130 interrupted.
"""

from frnn_cli.cli.app import app, main

__all__ = ["app", "main"]
